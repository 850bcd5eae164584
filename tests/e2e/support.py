"""What the browser tests share: a uvicorn server process, screenshots, logging in, and a watch on the page for
Content-Security-Policy violations and script errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, clean_env, subprocess_database_url, wait_serving
from tests.factories import PASSWORD

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", REPO / "test-artifacts"))
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

# Runs before any page script, outside the page's CSP: every violation the browser reports is kept on window.
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.effectiveDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":"
                    + e.lineNumber + " " + (e.sample || ""));
});
"""


def start_uvicorn(port: int, var_dir, redis_url: str, **settings: str) -> subprocess.Popen:
    """uvicorn serving portal.asgi (HTTP and WebSocket) on the test database, channels-redis as its layer;
    ``settings``: more environment variables for the server."""
    env = clean_env(
        PORTAL_VAR_DIR=str(var_dir),
        DATABASE_URL=subprocess_database_url(),
        DATABASE_CONN_MAX_AGE="0",
        REDIS_URL=redis_url,
        LOG_LEVEL="WARNING",
        **settings,
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "portal.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--lifespan",
            "off",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_serving(f"http://127.0.0.1:{port}", proc)
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=20)


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


class Watched:
    """A page whose CSP violations, console errors and warnings, and uncaught script errors are recorded."""

    def __init__(self, browser, viewport: dict | None = None) -> None:
        self.context = browser.new_context(viewport=viewport or DESKTOP)
        self.context.add_init_script(WATCH_CSP)
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))

    def _console(self, message) -> None:
        if message.type in ("error", "warning"):
            self.console.append(f"{message.type}: {message.text}")

    def problems(self) -> list[str]:
        """Everything the browser objected to on this page so far (the DOM's violation events, the console)."""
        seen = self.page.evaluate("window.__csp || []")
        return seen + [line for line in self.console if not _expected(line)]

    def take(self) -> list[str]:
        """``problems()``, then start afresh (before moving on to the next page, whose document starts a new list)."""
        found = self.problems()
        self.page.evaluate("window.__csp = []")
        self.console.clear()
        return found


def _expected(line: str) -> bool:
    """Console lines that are the page working as designed, not a defect: a WebSocket the test closes on purpose,
    and the 404 a test asks for."""
    return "WebSocket connection to" in line or "the server responded with a status of 404" in line


def log_in(browser, base: str, username: str, path: str = "/login/", viewport: dict | None = None):
    page = browser.new_context(viewport=viewport or {"width": 412, "height": 915}).new_page()  # a phone's viewport
    log_in_page(page, base, username, path)
    return page


def log_in_page(page, base: str, username: str, path: str = "/login/") -> None:
    page.goto(base + path)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state("networkidle")
