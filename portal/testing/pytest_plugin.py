"""Chooses the test services before Django reads its settings (loaded with ``-p`` from pyproject's addopts).

- PostgreSQL: ``DATABASE_URL`` if set, else the usual local address. Reachable → the suite runs on it.
  Unreachable → the embedded SQLite database, and tests marked ``postgres`` are skipped with the reason.
- Redis: ``REDIS_URL`` for tests marked ``redis`` (the rest run with the in-memory channel layer and cache,
  as unit tests should). Unreachable → those tests are skipped with the reason.
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
    os.environ["PORTAL_TEST_REDIS_URL"] = url
    return url, _reachable(url, 6379)


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
