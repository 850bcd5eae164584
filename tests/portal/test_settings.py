"""The two settings profiles, checked the way operators start the portal: a fresh process per environment."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys

import pytest
from django.core.management.utils import get_random_secret_key

from portal.settings import SECRET_KEY_MIN_BITS, _secret_key_bits
from tests.conftest import REPO, clean_env

STRONG_KEY = "k3J9-vQx7_Lp2Zr8Tb5Nw1Yd6Hc4Mf0Gs-Ua3Ee7Ri9Oo2Pl5Kj8Hg1Fd4Sa6Qw"
PRODUCTION = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": STRONG_KEY,
    "ALLOWED_HOSTS": "portal.example.net",
    "DATABASE_URL": "postgres://portal:secret@db.example.net:5432/portal",
    "REDIS_URL": "redis://cache.example.net:6379/0",
    "CAS_GATEWAY_URL": "https://cas-adapter.example.net:8765",
}
SETUP = "import django; django.setup()"


def manage(*args: str, tmp_path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=clean_env(PORTAL_VAR_DIR=str(tmp_path), **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_embedded_default_needs_no_variables(tmp_path):
    result = manage("check", tmp_path=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def setup(tmp_path, **env: str) -> subprocess.CompletedProcess:
    """What every process does first (web server, Celery worker, beat): load the settings and the apps."""
    return subprocess.run(
        [sys.executable, "-c", SETUP],
        cwd=REPO,
        env=clean_env(PORTAL_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="portal.settings", **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_profile_passes_check_deploy_at_warning_level(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", tmp_path=tmp_path, **PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


WEAK_KEY = "SECRET_KEY is missing or weak"
LOW_ENTROPY = f"bits of entropy, at least {SECRET_KEY_MIN_BITS} needed"
REFUSED = [
    pytest.param({"DEBUG": "true"}, "DEBUG must be off in production", id="debug-on"),
    pytest.param({"SECRET_KEY": ""}, WEAK_KEY, id="secret-missing"),
    pytest.param({"SECRET_KEY": "short-key"}, WEAK_KEY, id="secret-short"),
    pytest.param({"SECRET_KEY": "a" * 60}, WEAK_KEY, id="secret-repetitive"),
    pytest.param({"SECRET_KEY": "django-insecure-" + STRONG_KEY}, WEAK_KEY, id="secret-insecure"),
    # 50 and 56 characters with 5 and 7 distinct ones: Django's own W009 rule lets both through.
    pytest.param({"SECRET_KEY": "abcde" * 10}, f"{WEAK_KEY}: an estimated 64 {LOW_ENTROPY}", id="secret-abcde"),
    pytest.param({"SECRET_KEY": "changeme" * 7}, f"{WEAK_KEY}: an estimated 88 {LOW_ENTROPY}", id="secret-changeme"),
    pytest.param({"SECRET_KEY": "password1234" * 5}, f"{WEAK_KEY}: an estimated 120 {LOW_ENTROPY}", id="secret-word"),
    pytest.param({"SECRET_KEY": "".join(map(chr, range(48, 123)))}, LOW_ENTROPY, id="secret-alphabet-run"),
    pytest.param({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS must name the hosts", id="hosts-empty"),
    pytest.param({"ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS must name the hosts the portal serves, not '*'", id="hosts-*"),
    pytest.param({"ALLOWED_HOSTS": "portal.example.net,*"}, "not '*'", id="hosts-named-and-*"),
    pytest.param({"DATABASE_URL": ""}, "DATABASE_URL is required in production", id="database-missing"),
    pytest.param(
        {"DATABASE_URL": "sqlite:////var/lib/portal/portal.sqlite3"},
        "DATABASE_URL must be PostgreSQL in production (postgres://user:pass@host:5432/name), not sqlite3",
        id="database-sqlite",
    ),
    pytest.param(
        {"DATABASE_URL": "mysql://portal:hunter2-db-secret@db.example.net/portal"},
        "DATABASE_URL must be PostgreSQL in production",
        id="database-mysql",
    ),
    pytest.param({"SECURE_SSL_REDIRECT": "false"}, "SECURE_SSL_REDIRECT must be on in production", id="ssl-off"),
    pytest.param(
        {"SECURE_HSTS_SECONDS": "0"},
        "SECURE_HSTS_SECONDS must be at least 31536000 in production with SECURE_HSTS_PRELOAD on, not 0",
        id="hsts-0",
    ),
    pytest.param(
        {"SECURE_HSTS_SECONDS": "3600", "SECURE_HSTS_PRELOAD": "false"},
        "SECURE_HSTS_SECONDS must be at least 86400 in production, not 3600",
        id="hsts-1h-no-preload",
    ),
    pytest.param(
        {"CAS_GATEWAY_URL": ""},
        "CAS_GATEWAY_URL is required in production: the head-end adapter's http(s)://host:port",
        id="head-end-missing",
    ),
]


@pytest.mark.parametrize(("override", "message"), REFUSED)
def test_production_profile_refuses_insecure_settings(tmp_path, override, message):
    result = manage("check", tmp_path=tmp_path, **{**PRODUCTION, **override})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr
    assert "hunter2" not in result.stderr  # the URL's password
    assert override.get("SECRET_KEY") in (None, "") or override["SECRET_KEY"] not in result.stderr


@pytest.mark.parametrize(("override", "message"), REFUSED)
def test_every_process_refuses_at_settings_load(tmp_path, override, message):
    result = setup(tmp_path, **{**PRODUCTION, **override})

    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize(
    "override",
    [
        pytest.param({}, id="as-given"),
        pytest.param({"CAS_GATEWAY_URL": "inprocess:"}, id="simulator-named-explicitly"),
        pytest.param({"SECURE_HSTS_SECONDS": "86400", "SECURE_HSTS_PRELOAD": "false"}, id="hsts-1d-no-preload"),
        pytest.param({"ALLOWED_HOSTS": ".example.net"}, id="subdomain-wildcard"),
        pytest.param({"SECRET_KEY": get_random_secret_key()}, id="django-random-key"),
        pytest.param({"DATABASE_URL": "postgresql://portal@db.example.net/portal"}, id="postgresql-scheme"),
        # Benchmarks and tests run production on loopback, where no certificate can exist: plain HTTP is allowed.
        pytest.param({"ALLOWED_HOSTS": "127.0.0.1,localhost", "SECURE_SSL_REDIRECT": "false"}, id="loopback-http"),
    ],
)
def test_a_good_production_environment_starts(tmp_path, override):
    result = setup(tmp_path, **{**PRODUCTION, **override})

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_production_workers_take_the_express_queue_first(tmp_path):
    script = f"{SETUP}; from django.conf import settings; print(settings.CELERY_BROKER_TRANSPORT_OPTIONS)"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=clean_env(PORTAL_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="portal.settings", **PRODUCTION),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert "'queue_order_strategy': 'sorted'" in result.stdout


def test_the_head_end_default_stays_the_simulator_in_the_embedded_profile(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", f"{SETUP}; from django.conf import settings; print(settings.CAS_GATEWAY_URL)"],
        cwd=REPO,
        env=clean_env(PORTAL_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="portal.settings"),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "inprocess:\n"


@pytest.mark.parametrize(
    "make_key",
    [
        pytest.param(get_random_secret_key, id="django"),
        pytest.param(lambda: secrets.token_urlsafe(50), id="token_urlsafe-50"),
        pytest.param(lambda: secrets.token_hex(25), id="token_hex-25"),
    ],
)
def test_the_entropy_estimate_passes_random_keys(make_key):
    lowest = min(_secret_key_bits(make_key()) for _ in range(2000))

    assert lowest >= SECRET_KEY_MIN_BITS + 30  # a margin: the smallest seen here was 166 (50 hex digits, 200 bits)


def test_unknown_profile_is_refused(tmp_path):
    result = manage("check", tmp_path=tmp_path, DJANGO_ENV="staging")

    assert result.returncode != 0
    assert "DJANGO_ENV must be 'embedded' or 'production'" in result.stderr


def test_demo_data_is_refused_in_production(tmp_path):
    result = manage("demo_load", tmp_path=tmp_path, **PRODUCTION)

    assert result.returncode != 0
    assert "demo data is for the embedded default only" in result.stderr


def test_every_variable_the_settings_read_is_listed_in_env_example():
    source = (REPO / "portal" / "settings.py").read_text()
    read = set(re.findall(r'env\.(?:str|bool|int|float|list|db_url)\(\s*"([A-Z_]+)"', source))
    listed = set(re.findall(r"^([A-Z_]+)=", (REPO / ".env.example").read_text(), flags=re.MULTILINE))

    assert len(read) > 20
    assert read - listed == set()
