"""``make prod``: the production shape on one machine, behind Debian's nginx, run by honcho from ``Procfile``.

Refuses to start outside the production profile (``DJANGO_ENV=production``: the settings then refuse a missing or
weak ``SECRET_KEY``, ``ALLOWED_HOSTS``, ``DATABASE_URL``, …, so no embedded default gets this far). Then: migrate,
collect static files, empty the metrics folder (every process counts there afresh), render
``deploy/nginx.conf.template`` for ``HOST``:``PORT`` (nginx listens there; gunicorn and uvicorn on two free loopback
ports behind it), and hand over to honcho with the variables the Procfile reads. Ctrl-C stops everything.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sys
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

REPO = Path(__file__).resolve().parents[3]
TEMPLATE = REPO / "deploy" / "nginx.conf.template"
PROCFILE = REPO / "Procfile"
# The Procfile's process counts, from the environment (defaults for one machine with a few cores).
COUNTS = {
    "WEB_WORKERS": "6",
    "ASGI_WORKERS": "2",
    "WORKER_CONCURRENCY": "4",
    "EXPRESS_CONCURRENCY": "2",
    "DEVICES_CONCURRENCY": "64",
}


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def render_nginx(
    prefix: Path, *, host: str, port: int, web: str, asgi: str, static_root: str = "", body_limit: int = 0
) -> Path:
    """The config for nginx on ``host:port`` in front of gunicorn at ``web`` and uvicorn at ``asgi`` (host:port);
    static files and the body limit from the settings unless given (bench/activation.py runs without them)."""
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    values = {
        "PREFIX": str(prefix),
        "HOST": host if ":" not in host else f"[{host}]",
        "PORT": str(port),
        "WEB_UPSTREAM": web,
        "ASGI_UPSTREAM": asgi,
        "STATIC_ROOT": static_root or str(settings.STATIC_ROOT),
        "BODY_LIMIT": str(max(body_limit or settings.REQUEST_BODY_LIMIT, 32 * 1024 * 1024)),
        "FORWARDED_PROTO": "$scheme",
    }
    text = TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    if leftover := re.findall(r"@[A-Z_]+@", text):
        raise CommandError(f"nginx template: unfilled {leftover}")
    target = prefix / "nginx.conf"
    target.write_text(text)
    return target


class Command(BaseCommand):
    help = "Run the production shape (gunicorn, uvicorn, Celery workers, beat, listener) behind nginx, with honcho."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--no-migrate", action="store_true", help="skip migrate")
        parser.add_argument("--no-collectstatic", action="store_true", help="skip collectstatic")
        parser.add_argument("--print-env", action="store_true", help="print the Procfile's variables and stop")
        parser.add_argument(
            "--nginx-only",
            action="store_true",
            help="render the nginx config for NGINX_WEB_UPSTREAM / NGINX_ASGI_UPSTREAM and run nginx alone (compose)",
        )

    def handle(self, *args, **options) -> None:
        if not settings.PRODUCTION:
            raise CommandError(
                "make prod runs the production shape: set DJANGO_ENV=production and its variables (SECRET_KEY, "
                "ALLOWED_HOSTS, DATABASE_URL, REDIS_URL, CAS_GATEWAY_URL, ...; .env.example); `make run` is the "
                "embedded default"
            )
        for program in ("nginx", "honcho"):
            if shutil.which(program) is None and not (Path(sys.executable).parent / program).exists():
                raise CommandError(f"{program} is not installed (nginx: apt-get install -y nginx; honcho: pip)")
        host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8000"))
        prod_dir = Path(settings.VAR_DIR) / "prod"
        if options["nginx_only"]:
            # The compose file's nginx container: gunicorn and uvicorn are other containers.
            web, asgi = (
                os.environ.get("NGINX_WEB_UPSTREAM", "web:8000"),
                os.environ.get("NGINX_ASGI_UPSTREAM", "ws:8001"),
            )
            conf = render_nginx(prod_dir / "nginx", host=host, port=port, web=web, asgi=asgi)
            nginx = ["nginx", "-p", str(prod_dir / "nginx"), "-c", str(conf), "-e", "stderr", "-g", "daemon off;"]
            os.execvp("nginx", nginx)  # noqa: S606, S607  (Debian's nginx, on PATH)
        web_port, asgi_port = free_loopback_port(), free_loopback_port()
        conf = render_nginx(
            prod_dir / "nginx", host=host, port=port, web=f"127.0.0.1:{web_port}", asgi=f"127.0.0.1:{asgi_port}"
        )
        env = dict(os.environ)
        env.update({name: os.environ.get(name, default) for name, default in COUNTS.items()})
        env |= {"WEB_PORT": str(web_port), "ASGI_PORT": str(asgi_port), "PROD_DIR": str(prod_dir)}
        # nginx is this machine's own proxy: believed for X-Forwarded-For and X-Request-ID unless the operator
        # names the proxies (then nginx must be among them).
        env.setdefault("TRUSTED_PROXIES", "127.0.0.1,::1")
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        if options["print_env"]:
            for name in (*COUNTS, "WEB_PORT", "ASGI_PORT", "PROD_DIR", "TRUSTED_PROXIES"):
                self.stdout.write(f"{name}={env[name]}")
            self.stdout.write(f"nginx: {conf}")
            return
        if not options["no_migrate"]:
            call_command("migrate", interactive=False, verbosity=0)
        if not options["no_collectstatic"]:
            call_command("collectstatic", interactive=False, verbosity=0)
        metrics_dir = Path(settings.PROMETHEUS_MULTIPROC_DIR)
        for stale in metrics_dir.glob("*.db"):
            stale.unlink()
        self.stdout.write(f"prod: nginx on http://{host}:{port}/ (gunicorn :{web_port}, uvicorn :{asgi_port})")
        self.stdout.flush()
        honcho = shutil.which("honcho", path=env["PATH"]) or "honcho"
        os.chdir(settings.BASE_DIR)
        os.execvpe(honcho, [honcho, "-f", str(PROCFILE), "-d", str(settings.BASE_DIR), "start"], env)  # noqa: S606
