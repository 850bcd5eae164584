"""Settings, read only from the environment (every variable is listed with its default in .env.example).

Two profiles:
- ``embedded`` (the default): works with no variables at all. SQLite under ``var/``, a Celery worker on
  ``portalfs://`` (kombu's filesystem transport made safe for concurrent processes, portal/kernel/broker.py; no server),
  in-memory channel layer, local-memory cache.
- ``production`` (``DJANGO_ENV=production``): PostgreSQL, Redis / RabbitMQ, channels-redis. Refuses to start
  with weak or missing settings (DEBUG on, SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL, TLS, the head-end).
"""

from __future__ import annotations

import itertools
import math
import os
import secrets
import warnings
import zlib
from collections import Counter
from datetime import timedelta
from pathlib import Path

import csp.constants as csp
import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from portal.kernel import headers as portal_headers
from portal.kernel import queues

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
DJANGO_ENV = env.str("DJANGO_ENV", default="embedded")
if DJANGO_ENV not in ("embedded", "production"):
    raise ImproperlyConfigured(f"DJANGO_ENV must be 'embedded' or 'production', not {DJANGO_ENV!r}")
PRODUCTION = DJANGO_ENV == "production"

VAR_DIR = Path(env.str("PORTAL_VAR_DIR", default=str(BASE_DIR / "var")))


def _embedded_secret_key() -> str:
    """One random key per embedded install, kept under var/ so sessions survive restarts."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY_MIN_BITS = 128


def _deflate_bits(data: bytes) -> int:
    """Bits DEFLATE needs for ``data`` beyond an empty stream (raw DEFLATE, level 9: an empty stream is 2 bytes)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return (len(packer.compress(data) + packer.flush()) - 2) * 8


def _secret_key_bits(key: str) -> float:
    """A conservative estimate of the key's entropy in bits, the smallest of three:
    its characters' Shannon entropy times its length (a small alphabet: ``"abcde" * 10`` → 116 bits), its DEFLATE size
    (repetition: ``"changeme" * 7`` → 88) and the DEFLATE size of the steps between neighbouring characters (runs:
    ``"abcdef…"`` → 88). A random key scores near its true entropy (``secrets.token_urlsafe(50)``: ≈ 350)."""
    if not key:
        return 0.0
    counts = Counter(key).values()
    shannon = -sum(n / len(key) * math.log2(n / len(key)) for n in counts) * len(key)
    steps = bytes((ord(b) - ord(a)) % 256 for a, b in itertools.pairwise(key))
    return min(shannon, _deflate_bits(key.encode()), _deflate_bits(steps))


def _weak_secret_key(key: str) -> str | None:
    """Why the key is weak, or None: Django's security.W009 rule, then the entropy estimate above."""
    if len(key) < 50 or len(set(key)) < 5 or key.startswith("django-insecure-"):
        return "use at least 50 random characters"
    bits = _secret_key_bits(key)
    if bits < SECRET_KEY_MIN_BITS:
        return f"an estimated {bits:.0f} bits of entropy, at least {SECRET_KEY_MIN_BITS} needed (use random characters)"
    return None


DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="") or ("" if PRODUCTION else _embedded_secret_key())
ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Rotating SECRET_KEY: the previous keys, newest first; sessions, signed links and encrypted CA PINs written under
# them stay readable while they are listed (docs/operations.md#rotating-secret_key).
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}

if PRODUCTION:
    # Refused here, at settings load, so that every process (web, worker, beat, manage.py) refuses alike.
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off in production")
    _why = _weak_secret_key(SECRET_KEY) if SECRET_KEY else "it is not set"
    if _why:
        raise ImproperlyConfigured(
            f"SECRET_KEY is missing or weak: {_why}; e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must name the hosts the portal serves")
    if "*" in ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must name the hosts the portal serves, not '*'")
    _db_url = env.str("DATABASE_URL", default="")
    _db_engine = environ.Env.db_url_config(_db_url).get("ENGINE", "") if _db_url else ""
    if _db_url and _db_engine not in ("django.db.backends.postgresql", "django.contrib.gis.db.backends.postgis"):
        # The URL itself is not repeated: it carries the password.
        _db_kind = _db_engine.rsplit(".", 1)[-1]
        raise ImproperlyConfigured(
            f"DATABASE_URL must be PostgreSQL in production (postgres://user:pass@host:5432/name), not {_db_kind}"
        )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "auditlog",
    "axes",
    "channels",
    "devices",
    "provisioning",
    "conax",
    "components",
    "webhooks",
    # Campaigns over filtered fleets (docs/campaigns.md): above provisioning and conax, whose services it calls.
    "campaigns",
    # The project shell (management commands; no models).
    "portal",
    # Last: the kernel's post_migrate hook gives the support group the permissions the apps above created.
    "portal.kernel",
]

MIDDLEWARE = [
    # First: the request's id (a trusted proxy's X-Request-ID or a new one) for every log line and queued task.
    "portal.kernel.requestid.RequestIdMiddleware",
    "portal.kernel.logging.RequestLogMiddleware",
    # Times and counts the activation dialect's answers (Prometheus, portal/metrics.py).
    "portal.metrics.MetricsMiddleware",
    # Before anything reads a body: a declared length over the dialect's limit is refused (portal/kernel/http.py).
    "portal.kernel.http.BodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before WhiteNoise, so that static files carry them too.
    "csp.middleware.CSPMiddleware",
    "portal.kernel.headers.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
    # Last, as django-axes requires: turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

# --- metrics (portal/kernel/metrics.py, portal/metrics.py, docs/operations.md) -----------------------------------
# Every process of one machine counts into its own files here; the scrape sums them. prometheus-client reads the
# variable when it is first imported, so it is set here, before anything imports it.
PROMETHEUS_MULTIPROC_DIR = Path(env.str("PROMETHEUS_MULTIPROC_DIR", default=str(VAR_DIR / "metrics")))
PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(PROMETHEUS_MULTIPROC_DIR)
# GET /metrics wants "Authorization: Bearer <METRICS_TOKEN>"; unset: open in the embedded default, off in production.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
if PRODUCTION and METRICS_TOKEN and len(METRICS_TOKEN) < 32:
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 32 random characters")

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.pages.live_context",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------------------------


def _prepared_statements() -> dict[str, object]:
    """psycopg 3's server-side binding and automatic prepared statements (docs/operations.md#database-connections).
    Off unless asked for, as Django ships them: PgBouncer in transaction pooling mode before 1.21, or without
    ``max_prepared_statements``, hands one session's prepared statements to another. A threshold alone would do
    nothing (Django's client-side binding cursor never prepares), so it is refused without the binding."""
    binding = env.bool("DATABASE_SERVER_SIDE_BINDING", default=False)
    threshold = env.str("DATABASE_PREPARE_THRESHOLD", default="").strip().lower()
    if threshold and not binding:
        raise ImproperlyConfigured("DATABASE_PREPARE_THRESHOLD needs DATABASE_SERVER_SIDE_BINDING=true")
    if not binding:
        return {}
    if threshold not in ("", "none") and not (threshold.isdigit() and int(threshold) >= 1):
        # 0 would prepare every statement on its first run, a migration's several commands in one too, which
        # PostgreSQL refuses ("cannot insert multiple commands into a prepared statement").
        raise ImproperlyConfigured(f"DATABASE_PREPARE_THRESHOLD must be a whole number ≥ 1 or none, not {threshold!r}")
    # psycopg's own default: a statement is prepared on its sixth execution on a connection (none: never).
    prepare = 5 if threshold == "" else None if threshold == "none" else int(threshold)
    return {"server_side_binding": True, "prepare_threshold": prepare}


_embedded_db = f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"
DATABASES = {"default": env.db_url("DATABASE_URL", default="" if PRODUCTION else _embedded_db)}
if not DATABASES["default"].get("ENGINE"):
    raise ImproperlyConfigured("DATABASE_URL is required in production (postgres://user:pass@host:5432/name)")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # WAL + IMMEDIATE transactions: the web process and the worker share the file without "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # A database that accepts TCP and never answers must not hold a request: libpq's minimum is 2 s.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=2)
    )
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend plus a breaker: after a failed connect, fail at once for DATABASE_RETRY_AFTER seconds.
        DATABASES["default"]["ENGINE"] = "portal.kernel.db.postgresql"
    DATABASES["default"]["OPTIONS"].update(_prepared_statements())
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Seconds a client is told to wait (Retry-After) when the database is unavailable; the breaker stays open as long.
DATABASE_RETRY_AFTER = env.int("DATABASE_RETRY_AFTER", default=5)
# Largest request body of the admin and the pages (the dialects have their own limits: portal/kernel/dialects.py).
REQUEST_BODY_LIMIT = env.int("REQUEST_BODY_LIMIT", default=32 * 1024 * 1024)

# --- redis, cache, channels -----------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0" if PRODUCTION else "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [env.str("CHANNELS_REDIS_URL", default=REDIS_URL)]},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- auth -----------------------------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
# Customers land on "My devices" after logging in on the portal's own login page (/login/).
LOGIN_REDIRECT_URL = "pages-my-devices"

# Lock-outs (portal/kernel/authentication.py): failures of one username from one address, and of one username from all
# addresses together (0 = off; higher, so that a guesser cannot trivially lock a user out), within the cool-off.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_USERNAME_FAILURE_LIMIT = env.int("AXES_USERNAME_FAILURE_LIMIT", default=30)
AXES_HANDLER = "portal.kernel.authentication.PortalAxesHandler"
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "portal.kernel.remote.client_ip"
AXES_LOCKOUT_CALLABLE = "portal.kernel.authentication.lockout_response"
AXES_SENSITIVE_PARAMETERS = ["password", "token", "ca_pin", "cik"]

# Password reset (the pages' "Forgot your password?", Django's own views): the email goes through EMAIL_BACKEND, the
# console in the embedded default (the link is printed in the server's output); each address and each client address
# may ask PASSWORD_RESET_RATE_LIMIT times per window ("count/seconds", 0 = no limit).
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Provisioning portal <noreply@localhost>")
PASSWORD_RESET_TIMEOUT = 3 * 3600  # the pages and the email say "3 hours"
PASSWORD_RESET_RATE_LIMIT = env.str("PASSWORD_RESET_RATE_LIMIT", default="5/3600")
# How often the pages re-read their live panel besides the WebSocket's events (seconds; 0 = only on events, except
# with the in-memory channel layer, where the pages poll every 5 s: see portal.pages.poll_seconds).
LIVE_POLL_SECONDS = env.int("LIVE_POLL_SECONDS", default=0)

# Addresses of reverse proxies whose X-Forwarded-For is believed (see portal/lib/net.py).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])

# One token store for every API login (portal/kernel/services.py): lifetimes in seconds.
TOKEN_ABSOLUTE_TTL = env.int("TOKEN_ABSOLUTE_TTL", default=12 * 3600)
TOKEN_IDLE_TTL = env.int("TOKEN_IDLE_TTL", default=2 * 3600)

# Devices: how long an enabled serial may activate (seconds; the original: 24 h).
ACTIVATION_WINDOW = env.int("ACTIVATION_WINDOW", default=24 * 3600)
# Seconds after activation in which a device whose CIK was never used may activate again and get a fresh CIK (the
# old one revoked), for device libraries that lost the answer; 0 = off. Trade-off: docs/devices.md.
ACTIVATION_RETRY_WINDOW = env.int("ACTIVATION_RETRY_WINDOW", default=0)
# Set-top boxes: seconds a Thunder JSON-RPC call may take (connect, send, answer).
THUNDER_TIMEOUT = env.float("THUNDER_TIMEOUT", default=5.0)
# Send versioned designators (callsign.N.method, N = the API version that introduced the method), as ThunderJS does.
THUNDER_VERSIONED_DESIGNATORS = env.bool("THUNDER_VERSIONED_DESIGNATORS", default=False)
# A command left SENT this long by a worker that died is queued again by the periodic sweep.
COMMAND_STALE_SECONDS = env.int("COMMAND_STALE_SECONDS", default=300)
# A QUEUED command overdue this long lost its broker message (or a dead worker held it): the sweep sends it again.
COMMAND_SWEEP_GRACE_SECONDS = env.int("COMMAND_SWEEP_GRACE_SECONDS", default=120)
# Commands one task claims, sends concurrently and records at once, and the threads per worker process that make the
# box calls (the work waits on sockets). docs/campaigns.md has the measurements behind the defaults.
COMMAND_BATCH_SIZE = env.int("COMMAND_BATCH_SIZE", default=50)
COMMAND_BATCH_THREADS = env.int("COMMAND_BATCH_THREADS", default=25)
# Conax head-end: where the CAS gateway sends provisioning requests ("inprocess:" = the built-in simulator in the
# worker process; "http://host:port" = a head-end adapter speaking the simulator's HTTP protocol), and the seconds
# one call may take. CAS_SIMULATOR_LATENCY_MS slows the in-process simulator down (demo, benchmarks).
# The organisation name CRM.COM clients send at login (authentication/token).
CRM_ORGANISATION = env.str("CRM_ORGANISATION", default="portal")
# Production names its head-end explicitly: a per-worker simulator is never a silent default there ("inprocess:",
# given explicitly, is accepted for staging).
CAS_GATEWAY_URL = env.str("CAS_GATEWAY_URL", default="" if PRODUCTION else "inprocess:")
if not CAS_GATEWAY_URL:
    raise ImproperlyConfigured(
        "CAS_GATEWAY_URL is required in production: the head-end adapter's http(s)://host:port "
        "('inprocess:' for the built-in simulator, staging only)"
    )
CAS_TIMEOUT = env.float("CAS_TIMEOUT", default=5.0)
CAS_SIMULATOR_LATENCY_MS = env.float("CAS_SIMULATOR_LATENCY_MS", default=0.0)
# What "inprocess:" runs, by dotted path: a class or factory taking auto_register and latency_ms whose objects have
# send/lookup (conax/gateway.py). A code choice, not an operator's: not read from the environment.
CAS_INPROCESS_BACKEND = "conax.simulator.CasSimulator"
# The periodic run that sends due scheduled requests and re-sends any due request whose message was lost (seconds
# between runs), and how long a queued request may wait for a worker before that run queues it again.
CAS_DISPATCH_INTERVAL = env.int("CAS_DISPATCH_INTERVAL", default=10)
CAS_DISPATCH_GRACE_SECONDS = env.int("CAS_DISPATCH_GRACE_SECONDS", default=120)
# Conax requests one task claims, sends concurrently and records at once, and the sending threads per worker process.
CAS_BATCH_SIZE = env.int("CAS_BATCH_SIZE", default=50)
CAS_BATCH_THREADS = env.int("CAS_BATCH_THREADS", default=25)
# A message with room in its batch also takes due requests of its priority whose own messages have waited in the queue
# longer than this (seconds; 0: never): one-number messages behind a backlog fill a batch each (docs/conax.md).
CAS_BATCH_TOP_UP_AFTER = env.float("CAS_BATCH_TOP_UP_AFTER", default=1.0)

# --- outbound webhooks (webhooks/, docs/webhooks.md) ---------------------------------------------------------------
WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", default=5.0)  # seconds a receiver may take to answer
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=10)  # then the delivery is DEAD
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=10.0)  # doubled after each failure
WEBHOOK_RETRY_MAX_SECONDS = env.float("WEBHOOK_RETRY_MAX_SECONDS", default=3600.0)
WEBHOOK_SWEEP_INTERVAL = env.int("WEBHOOK_SWEEP_INTERVAL", default=15)  # seconds between sweeps of due deliveries
WEBHOOK_BATCH_SIZE = env.int("WEBHOOK_BATCH_SIZE", default=50)  # deliveries one task claims and sends at once
WEBHOOK_BATCH_THREADS = env.int("WEBHOOK_BATCH_THREADS", default=25)  # concurrent POSTs per worker process
# Activation rate limits, "count/seconds" ("0" turns one off): per client address and per serial number.
ACTIVATION_RATE_LIMIT_IP = env.str("ACTIVATION_RATE_LIMIT_IP", default="300/60")
ACTIVATION_RATE_LIMIT_SERIAL = env.str("ACTIVATION_RATE_LIMIT_SERIAL", default="10/60")

# --- i18n / static --------------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
# One date-time format everywhere (ISO-like, 24-hour, with the zone): portal/formats/en/formats.py.
FORMAT_MODULE_PATH = ["portal.formats"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
# Background exports' files (portal/kernel/adminexport.py): the web process that serves them and the workers that
# write them must share this directory.
ADMIN_EXPORT_ROOT = Path(env.str("ADMIN_EXPORT_ROOT", default="") or VAR_DIR / "exports")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "exports": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": ADMIN_EXPORT_ROOT}},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION

# --- Exosite fleet management API (docs/exosite.md) ---------------------------------------------------------------
EXOSITE_CONTENT_MAX_BYTES = env.int("EXOSITE_CONTENT_MAX_BYTES", default=64 * 1024 * 1024)  # one content blob
EXOSITE_FORM_MAX_BYTES = env.int("EXOSITE_FORM_MAX_BYTES", default=8 * 1024 * 1024)  # form, CSV and JSON bodies
EXOSITE_RANGE_MAX = env.int("EXOSITE_RANGE_MAX", default=100_000)  # serials one range request may add or remove
_content_backend = env.str("EXOSITE_CONTENT_STORAGE", default="django.core.files.storage.FileSystemStorage")
STORAGES["exosite_content"] = {
    "BACKEND": _content_backend,
    "OPTIONS": {"location": env.str("EXOSITE_CONTENT_ROOT", default=str(VAR_DIR / "content"))}
    if _content_backend.endswith("FileSystemStorage")
    else {},
}
# --- end Exosite fleet management API ------------------------------------------------------------------------------
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns at every start when it is missing
# WhiteNoise streams files through a sync iterator; under ASGI Django warns on each one. The files are served.
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous iterators")

# --- security -------------------------------------------------------------------------------------------------
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Content-Security-Policy (django-csp), one policy for every page, the admin and the API docs: scripts, styles,
# images, fonts and connections (fetch, WebSocket) from the portal's own origin only; the few inline blocks that
# third-party templates carry (Swagger UI's start-up, django-celery-beat's crontab help) run with the request's
# nonce (templates/ overrides add it). No 'unsafe-inline', no 'unsafe-eval'. SVG icons of the admin are data: URIs.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF, csp.NONCE],
        "style-src": [csp.SELF, csp.NONCE],
        "img-src": [csp.SELF, "data:"],
        "font-src": [csp.SELF],
        "connect-src": [csp.SELF],
        "object-src": [csp.NONE],
        "base-uri": [csp.NONE],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    }
}
PERMISSIONS_POLICY = portal_headers.PERMISSIONS_POLICY
WHITENOISE_ADD_HEADERS_FUNCTION = portal_headers.static_headers
SESSION_COOKIE_HTTPONLY = True
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Load balancers probe health over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    # Plain HTTP is refused at start, not only by `check --deploy`; the one exception is a portal that serves
    # loopback names only (benchmarks, tests), where no certificate can exist.
    if not set(ALLOWED_HOSTS) <= LOOPBACK_HOSTS:
        if not SECURE_SSL_REDIRECT:
            raise ImproperlyConfigured(
                "SECURE_SSL_REDIRECT must be on in production (terminate TLS in front and set SECURE_PROXY_SSL_HEADER)"
            )
        # The preload list takes no max-age below a year; without preload, a day at least.
        _hsts_min = 31536000 if SECURE_HSTS_PRELOAD else 86400
        if _hsts_min > SECURE_HSTS_SECONDS:
            raise ImproperlyConfigured(
                f"SECURE_HSTS_SECONDS must be at least {_hsts_min} in production"
                f"{' with SECURE_HSTS_PRELOAD on' if SECURE_HSTS_PRELOAD else ''}, not {SECURE_HSTS_SECONDS}"
            )
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- REST framework / OpenAPI ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.kernel.authentication.PortalTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["portal.kernel.permissions.IsSupportStaff"],
    # Bodies and query strings pass one input check (kernel.api.parsers); pages are bounded (kernel.api.pagination).
    "DEFAULT_FILTER_BACKENDS": ["portal.kernel.api.parsers.SafeFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "portal.kernel.api.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["portal.kernel.api.parsers.SafeJSONParser", "portal.kernel.api.parsers.SafeFormParser"],
    "EXCEPTION_HANDLER": "portal.kernel.api.errors.rest_exception_handler",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

SPECTACULAR_SETTINGS = {
    "TITLE": "Provisioning portal API",
    "DESCRIPTION": (
        "The staff REST API of the provisioning portal (`Authorization: Token …`, from `POST /api/v1/auth/token/`) "
        "and the CRM.COM Conax API. Start with the [getting-started page](/docs/getting-started/). Errors: the staff "
        'API answers DRF\'s body, `{"detail": …}` or `{"code": …, "detail": …}` for a named domain error '
        "(schema `Error`), and field messages on a 400 (schema `ValidationError`); the CRM.COM API always answers "
        "HTTP 200 with the outcome in `status.code`.\n\n"
        "The interfaces devices and older systems speak are documented on pages the portal serves: "
        "[device activation](/docs/devices/) (`POST /provision/activate`), "
        "[Exosite fleet management](/docs/exosite/) (`/provision/manage/…`), "
        "[set-top-box events](/docs/provisioning/) (`POST /jsonrpc`), "
        "[provisioning components](/docs/components/) (`/v1/Login/`, `/v1/DeviceProvisioningComponents/`), "
        "[CRM.COM envelope](/docs/conax/), "
        "[health checks](/docs/dialects/#health-checks) (`/healthz`, `/readyz`, also in this schema); "
        "an overview of all of them: [/docs/dialects/](/docs/dialects/)."
    ),
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Every PATCH view validates its whole input serializer (none passes partial=True): document that, not a copy
    # with every field optional.
    "COMPONENT_SPLIT_PATCH": False,
    # One name for a choice set that several fields use.
    "ENUM_NAME_OVERRIDES": {
        "WebhookEventTypeEnum": "webhooks.choices.EventType",
        "CampaignStateEnum": "campaigns.choices.CampaignState",  # campaigns console (docs/campaigns-console.md)
    },
    # The error answers of every operation, by path prefix (kernel.api.openapi): last, so that it sees every path.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "conax.api.openapi.crm_paths",
        "portal.health.schema_paths",  # /healthz, /readyz
        "portal.kernel.api.openapi.error_responses",
        "portal.kernel.api.openapi.area_tags",  # a tag per area (inventory, activation, …, webhooks, auth)
        "portal.kernel.api.openapi.operation_texts",  # a summary and description on every operation
        "portal.kernel.api.openapi.operation_examples",  # request and response examples (kernel.api.examples)
    ],
}

# --- audit ----------------------------------------------------------------------------------------------------
AUDITLOG_MASK_CALLABLE = "portal.kernel.audit.mask_secret"
AUDITLOG_STORE_JSON_CHANGES = True

# --- celery ---------------------------------------------------------------------------------------------------
_broker_dir = VAR_DIR / "broker"
# Embedded: kernel/broker.py's ``portalfs://`` (kombu's filesystem transport with atomic publish and claim-until-ack;
# the stock ``filesystem://`` loses messages and stops the worker under concurrent producers, docs/broker.md).
CELERY_BROKER_URL = env.str(
    "CELERY_BROKER_URL", default=(REDIS_URL or "redis://127.0.0.1:6379/0") if PRODUCTION else "portalfs://localhost//"
)
if CELERY_BROKER_URL.startswith(("portalfs://", "filesystem://")):
    for sub in ("queue", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "polling_interval": 0.2,
    }
    # The filesystem transport has no fan-out for remote control; the embedded worker does not need it.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
else:
    # Unacknowledged tasks come back after this long when a worker dies; every countdown stays below it. A worker of
    # several queues takes them in name order at every fetch: express before regular (kernel/queues.py ORDER).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=1800),
        "queue_order_strategy": queues.ORDER,
    }
if CELERY_BROKER_URL.startswith("redis://"):
    # kombu's Redis transport with the guard that keeps a prefork worker alive across Redis restarts (kernel/broker.py).
    CELERY_BROKER_TRANSPORT = "portalredis"
CELERY_BROKER_CONNECTION_TIMEOUT = 5
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A broker outage never ends a worker or beat: they retry for as long as it lasts (the default gives up after 100).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = queues.REGULAR
CELERY_TASK_ROUTES = {
    "provisioning.tasks.run_command": {"queue": queues.DEVICES},
    "provisioning.tasks.run_commands": {"queue": queues.DEVICES},
}
CELERY_TASK_QUEUES = tuple(Queue(name, Exchange(name), routing_key=name) for name in queues.ALL)
CELERY_TASK_ALWAYS_EAGER = False

# The admin's bulk actions (portal/kernel/jobs.py): selections up to ADMIN_BULK_INLINE_MAX objects run in the
# request; larger ones become a background job processed BULK_JOB_CHUNK objects per transaction.
ADMIN_BULK_INLINE_MAX = env.int("ADMIN_BULK_INLINE_MAX", default=20)
BULK_JOB_CHUNK = env.int("BULK_JOB_CHUNK", default=100)
# A serial import of more rows than this (admin, Devices -> Import) runs in the background with live progress.
ADMIN_IMPORT_INLINE_ROWS = env.int("ADMIN_IMPORT_INLINE_ROWS", default=5000)
# A list export (CSV or XLSX) of more rows than this runs as a background job; its file is kept this many hours.
ADMIN_EXPORT_INLINE_ROWS = env.int("ADMIN_EXPORT_INLINE_ROWS", default=5000)
ADMIN_EXPORT_RETENTION_HOURS = env.int("ADMIN_EXPORT_RETENTION_HOURS", default=24)
# Keep worker database connections between tasks (portal/celery.py closes them per CONN_MAX_AGE instead).
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
COMMAND_SWEEP_INTERVAL = env.int("COMMAND_SWEEP_INTERVAL", default=60)  # seconds between two commands sweeps
_sweep_every = float(COMMAND_SWEEP_INTERVAL)
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {"task": "portal.kernel.tasks.heartbeat", "schedule": 30.0},
    "tokens-purge": {"task": "portal.kernel.tasks.tokens_purge", "schedule": 3600.0},
    "exports-purge": {"task": "portal.kernel.tasks.exports_purge", "schedule": 900.0},
    "devices-expire-windows": {"task": "devices.tasks.expire_windows", "schedule": 60.0},
    "provisioning-commands-sweep": {"task": "provisioning.tasks.commands_sweep", "schedule": _sweep_every},
    "conax-requests-dispatch": {"task": "conax.tasks.requests_dispatch", "schedule": float(CAS_DISPATCH_INTERVAL)},
    "webhooks-sweep": {"task": "webhooks.tasks.deliveries_sweep", "schedule": float(WEBHOOK_SWEEP_INTERVAL)},
}
# Campaigns (docs/campaigns.md): seconds between two engine ticks (release, outcome sync, wave judgement); also the
# token buckets' burst (a rate limit never releases more than rate x this at once).
CAMPAIGN_TICK_SECONDS = env.float("CAMPAIGN_TICK_SECONDS", default=1.0)
CELERY_BEAT_SCHEDULE["campaigns-tick"] = {"task": "campaigns.tasks.tick", "schedule": CAMPAIGN_TICK_SECONDS}

# --- logging: one key=value line per request and per task, never a secret -------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# "kv" (key=value, the default) or "json" (one object per line); the same fields, the same secret filter.
LOG_FORMAT = env.str("LOG_FORMAT", default="kv")
if LOG_FORMAT not in ("kv", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'kv' or 'json', not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "kv": {"()": "portal.kernel.logging.KeyValueFormatter"},
        "json": {"()": "portal.kernel.logging.JsonFormatter"},
    },
    # On the handler, so that it sees the records of every logger (portal/kernel/logging.py: what it masks and how);
    # request_id: the id of the request or task the line belongs to (portal/kernel/requestid.py).
    "filters": {
        "secrets": {"()": "portal.kernel.logging.SecretFilter"},
        "request_id": {"()": "portal.kernel.requestid.RequestIdFilter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id", "secrets"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Celery's own success line carries the task's return value; portal.kernel.tasks logs its own line instead.
        "celery.app.trace": {"level": "WARNING"},
        # Its "received" line prints task arguments.
        "celery.worker.strategy": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
        "axes": {"level": "WARNING"},
        # The servers' own loggers (gunicorn logs "Error handling request <uri with its query>") go through the
        # portal's handler and its secret filter instead of their own handlers.
        **{name: {"handlers": [], "propagate": True} for name in ("gunicorn.error", "uvicorn.error")},
    },
}
