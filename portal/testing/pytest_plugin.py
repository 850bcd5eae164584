"""Chooses the test services before Django reads its settings (loaded with ``-p`` from pyproject's addopts).

- PostgreSQL: ``DATABASE_URL`` if set, else the usual local address. Reachable → the suite runs on it.
  Unreachable → the embedded SQLite database, and tests marked ``postgres`` are skipped with the reason.
- Redis: ``REDIS_URL`` for tests marked ``redis`` (the rest run with the in-memory channel layer and cache,
  as unit tests should). Unreachable → those tests are skipped with the reason. Under pytest-xdist (``make
  test`` runs two workers) each worker runs its own redis-server on a spare port, so that no two share a database.
- Chromium: tests marked ``browser`` drive ``/usr/bin/chromium`` (Debian's) with Playwright. Missing → skipped.
- ``CI=true``: nothing may be skipped for a missing service; the run stops at once instead.
"""

from __future__ import annotations

import os
import socket
import tempfile
from urllib.parse import urlsplit

import pytest

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _reachable(url: str, default_port: int) -> str | None:
    """None when a TCP connection to the URL's host and port succeeds, else the reason it did not."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=2):
            return None
    except OSError as exc:
        return f"{host}:{port} not reachable ({exc.strerror or exc})"


def _choose_database() -> tuple[str, str | None]:
    url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    if not url.startswith(("postgres://", "postgresql://", "pgsql://")):
        return url, f"DATABASE_URL is not PostgreSQL ({url.split(':', 1)[0]})"
    problem = _reachable(url, 5432)
    if problem is None:
        os.environ["DATABASE_URL"] = url
        return url, None
    os.environ.pop("DATABASE_URL", None)
    return "embedded SQLite", f"PostgreSQL {problem}"


def _choose_redis() -> tuple[str, str | None]:
    url = os.environ.get("PORTAL_TEST_REDIS_URL") or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    # Unit tests use the in-memory layer and cache; tests marked `redis` read PORTAL_TEST_REDIS_URL.
    os.environ.pop("REDIS_URL", None)
    problem = _reachable(url, 6379)
    if problem is None and os.environ.get("PYTEST_XDIST_WORKER"):
        url, problem = _private_redis(url)
    os.environ["PORTAL_TEST_REDIS_URL"] = url
    return url, problem


def _private_redis(url: str) -> tuple[str, str | None]:
    """Under pytest-xdist, each worker gets its own redis-server on a spare port (the machine's binary, nothing
    kept on disk), same database number: tests flush their databases (11, 13, 14, …), and two workers on one
    server would empty each other's. It stops with the worker (atexit, and the kernel's parent-death signal)."""
    import atexit
    import shutil
    import signal
    import subprocess
    import time

    binary = shutil.which("redis-server")
    if binary is None:
        return url, "redis-server is not installed: parallel workers (pytest -n) need a private Redis each"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    def die_with_parent() -> None:
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass

    workdir = tempfile.mkdtemp(prefix="portal-test-redis-")
    proc = subprocess.Popen(  # noqa: S603 (the machine's redis-server, fixed arguments)
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    atexit.register(lambda: (proc.kill(), proc.wait()))
    private = f"redis://127.0.0.1:{port}/{urlsplit(url).path.lstrip('/') or '0'}"
    deadline = time.monotonic() + 10
    while (problem := _reachable(private, port)) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    return private, problem


os.environ.pop("DJANGO_ENV", None)
# Broker folder, secret key and fallback database of the test run live outside the working tree.
os.environ["PORTAL_VAR_DIR"] = tempfile.mkdtemp(prefix="portal-test-")
# Persistent connections opened by worker threads (async consumers) would outlive the test database.
os.environ["DATABASE_CONN_MAX_AGE"] = "0"
DATABASE, DATABASE_PROBLEM = _choose_database()
REDIS, REDIS_PROBLEM = _choose_redis()
CHROMIUM = os.environ.get("PORTAL_TEST_CHROMIUM", "/usr/bin/chromium")


def _browser_problem() -> str | None:
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} not installed (apt-get install chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    return None


MISSING = {"postgres": DATABASE_PROBLEM, "redis": REDIS_PROBLEM, "browser": _browser_problem()}


def pytest_configure(config: pytest.Config) -> None:
    missing = {name: why for name, why in MISSING.items() if why}
    if CI and missing:
        reasons = "; ".join(f"{name}: {why}" for name, why in missing.items())
        pytest.exit(f"CI=true refuses to skip tests for missing services: {reasons}", returncode=3)


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = [f"database: {DATABASE if not DATABASE_PROBLEM else 'embedded SQLite'}", f"redis: {REDIS}"]
    lines += [f"SKIPPING tests marked {name}: {why}" for name, why in MISSING.items() if why]
    return lines


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for name, why in MISSING.items():
        if not why:
            continue
        marker = pytest.mark.skip(reason=f"needs {name}: {why}")
        for item in items:
            if name in item.keywords:
                item.add_marker(marker)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    for name, why in MISSING.items():
        if why:
            count = sum(1 for report in skipped if f"needs {name}:" in str(report.longrepr))
            terminalreporter.write_line(f"skipped {count} test(s) that need {name}: {why}", yellow=True)
