import pytest
import redis

from portal.testing.pytest_plugin import CHROMIUM
from tests.conftest import free_port
from tests.e2e.support import start_uvicorn, stop


@pytest.fixture(autouse=True)
def _fast_password_hasher():
    """The servers these tests start check passwords with the production hashers: keep them for the users too."""


@pytest.fixture
def redis_db(redis_url) -> str:
    """A Redis database of its own for the channel layer (and the broker), emptied before and after: the one
    PORTAL_TEST_REDIS_URL names when it names one (a developer's own), else 11 (never the shared db 0)."""
    base, _, db = redis_url.rpartition("/")
    url = redis_url if db not in ("", "0") else f"{base}/11"
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()


@pytest.fixture
def asgi_server(tmp_path, redis_db):
    port = free_port()
    proc = start_uvicorn(port, tmp_path, redis_db)
    yield f"http://127.0.0.1:{port}"
    stop(proc)


@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread; the test's own ORM calls are still plain
    # synchronous code (Django's documented switch for this case, for the test process only).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()
