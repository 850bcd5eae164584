from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from tests.factories import CustomerFactory, StaffFactory
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def staff_user(db):
    return StaffFactory(username="staff")


@pytest.fixture
def customer_user(db):
    return CustomerFactory(username="carol")


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def staff_api(api_client, staff_user) -> APIClient:
    """An API client holding a staff REST API token of a support-group user."""
    from portal.kernel import services
    from portal.kernel.choices import TokenPurpose

    token = services.token_issue(user=staff_user, purpose=TokenPurpose.STAFF_API).raw
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return api_client


@pytest.fixture
def redis_url() -> str:
    """The real Redis of this machine (tests using it carry the `redis` mark)."""
    return os.environ["PORTAL_TEST_REDIS_URL"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def subprocess_database_url() -> str:
    """The test database, for server and worker processes a test starts (the test must commit: transactional).
    On the embedded SQLite fallback the test database lives in this process's memory, where no other process can
    open it: the test is skipped as one that needs PostgreSQL (the plugin's summary counts it)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("needs postgres: a server or worker process cannot open this run's in-memory SQLite database")
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a newcomer's shell: none of the portal's variables, plus ``extra``."""
    portal_vars = {
        "DATABASE_URL",
        "REDIS_URL",
        "DJANGO_ENV",
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "DEBUG",
        "CELERY_BROKER_URL",
        "CELERY_RESULT_BACKEND",
        "PORTAL_VAR_DIR",
        "DJANGO_SETTINGS_MODULE",
        "PORTAL_TEST_REDIS_URL",
        # the settings export it (prometheus-client reads it from the environment): inherited, a server started by a
        # test counted in the test process's folder and, starting, emptied it of the test process's own files
        "PROMETHEUS_MULTIPROC_DIR",
    }
    env = {key: value for key, value in os.environ.items() if key not in portal_vars}
    env.update(extra)
    return env


@pytest.fixture(autouse=True)
def _fresh_webhook_endpoints():
    """The per-process copy of the webhook endpoints outlives a test's rolled-back rows: every test re-reads them."""
    from webhooks.services import endpoints_forget

    endpoints_forget()
    yield
    endpoints_forget()


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Local-memory rate-limit counters live in the process; every test starts with none."""
    from portal.kernel.ratelimit import _counters

    _counters.cache_clear()
    yield
    _counters.cache_clear()


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """PBKDF2 at production strength costs ~0.3 s per user; tests create many users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def portal_server(tmp_path):
    """Start the production HTTP server (gunicorn, 4 processes with 8 threads) on the test database; the test must
    use ``django_db(transaction=True)`` so that the server sees its data. Returns the base URL."""
    procs = []

    def start(**env_overrides: str) -> str:
        base, proc = start_gunicorn(tmp_path, **env_overrides)
        procs.append(proc)
        return base

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=20)


def server_env(var_dir, **overrides: str) -> dict[str, str]:
    """A server process's environment: a newcomer's shell on the test database, plus ``overrides``."""
    env = {"PORTAL_VAR_DIR": str(var_dir), "DATABASE_URL": subprocess_database_url(), "DATABASE_CONN_MAX_AGE": "0"}
    return clean_env(**(env | overrides))


def start_embedded_server(var_dir, **env_overrides: str):
    """The embedded default's web server exactly as ``make run`` starts it (``serve.web_command``: uvicorn on a
    socket bound by the parent) on the test database. Returns (base URL, process)."""
    import subprocess

    from portal.management.commands.serve import listening, web_command

    sock = listening("127.0.0.1", 0)
    env = server_env(var_dir, **env_overrides)
    proc = subprocess.Popen(
        web_command(sock.fileno()),
        cwd=REPO,
        env=env,
        pass_fds=(sock.fileno(),),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    wait_serving(base, proc)
    return base, proc


@pytest.fixture(scope="module", params=["gunicorn", "uvicorn"])
def device_server(request, django_db_setup, django_db_blocker, tmp_path_factory):
    """One server per module and topology the project ships (production's gunicorn, the embedded default's
    uvicorn) on the test database; tests using it must be ``django_db(transaction=True)``. The base URL."""
    var_dir = tmp_path_factory.mktemp(request.param)
    with django_db_blocker.unblock():
        if request.param == "uvicorn":
            base, proc = start_embedded_server(var_dir)
        else:
            base, proc = start_gunicorn(var_dir)
    yield base
    proc.terminate()
    proc.wait(timeout=20)


def start_gunicorn(var_dir, **env_overrides: str):
    """The production HTTP server (gunicorn, 4 processes with 8 threads) on the test database: (base, process)."""
    import subprocess
    import sys

    port = free_port()
    env = server_env(var_dir, **env_overrides)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "python:portal.gunicorn_conf",
            "portal.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "4",
            "--threads",
            "8",
            "--worker-class",
            "gthread",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    wait_serving(base, proc)
    return base, proc


def start_worker(var_dir, broker: str, queues: str, concurrency: int = 4, **env: str):
    """A real Celery worker process on ``broker`` and the test database, in its own process group (``kill_worker``
    SIGKILLs the group: the parent and its pool children, as a crash would)."""
    import subprocess
    import sys

    environment = clean_env(
        PORTAL_VAR_DIR=str(var_dir),
        DATABASE_URL=subprocess_database_url(),
        CELERY_BROKER_URL=broker,
        DATABASE_CONN_MAX_AGE="0",
        **env,
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "-Q",
            queues,
            "-c",
            str(concurrency),
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "WARNING",
        ],
        cwd=REPO,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def kill_worker(worker) -> None:
    import signal

    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)


def wait_serving(base: str, proc, timeout: float = 30) -> None:
    """Until the server process started at ``base`` answers ``/healthz`` (it must not exit meanwhile)."""
    import httpx

    def answers() -> bool:
        assert proc.poll() is None, "server did not start: it exited"
        httpx.get(f"{base}/healthz", timeout=1)
        return True

    wait_for(answers, timeout=timeout, interval=0.2, ignore=(httpx.TransportError,), message="server did not start")
