"""Security headers on what a real server process (gunicorn, as production serves HTTP) answers: pages, static files,
the API docs and the JSON APIs carry Content-Security-Policy, Permissions-Policy and X-Frame-Options."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx
import pytest

from portal.kernel.headers import DENIED_FEATURES
from tests.conftest import REPO, clean_env, free_port, subprocess_database_url, wait_serving

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
POLICY = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "img-src": {"'self'", "data:"},
    "font-src": {"'self'"},
    "connect-src": {"'self'"},
    "object-src": {"'none'"},
    "base-uri": {"'none'"},
    "form-action": {"'self'"},
    "frame-ancestors": {"'none'"},
}
EVERYWHERE = [
    "/login/",
    "/static/portal/pages.css",
    "/static/portal/live.js",
    "/static/admin/css/base.css",
    "/admin/login/",
    "/healthz",
    "/api/schema/",
    "/provision/activate",
]


def directives(header: str) -> dict[str, set[str]]:
    """The policy as {directive: sources} (django-csp writes directives and sources in no fixed order)."""
    parsed = [part.split() for part in header.split(";") if part.strip()]
    assert len({name for name, *_ in parsed}) == len(parsed)  # no directive twice
    return {name: set(sources) for name, *sources in parsed}


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    """One gunicorn process for the module (the answers read no data: pages, static files, docs, schema)."""
    with django_db_blocker.unblock():
        database = subprocess_database_url()
    port = free_port()
    var_dir = tmp_path_factory.mktemp("var")
    env = clean_env(PORTAL_VAR_DIR=str(var_dir), DATABASE_URL=database, DATABASE_CONN_MAX_AGE="0")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "portal.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "4",
            "--worker-class",
            "gthread",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_serving(f"http://127.0.0.1:{port}", proc)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=20)


@pytest.mark.parametrize("path", EVERYWHERE)
def test_every_answer_carries_the_security_headers(server, path):
    response = httpx.get(server + path, timeout=10)

    assert response.status_code in (200, 405), response.text[:200]
    assert directives(response.headers["content-security-policy"]) == POLICY
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["permissions-policy"] == ", ".join(f"{name}=()" for name in DENIED_FEATURES)
    assert len(response.headers.get_list("permissions-policy")) == 1


def test_the_permissions_policy_denies_what_the_portal_never_uses(server):
    policy = httpx.get(f"{server}/login/", timeout=10).headers["permissions-policy"]

    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in policy


def test_the_api_docs_run_their_inline_blocks_with_a_fresh_nonce_per_request(server):
    first, second = (httpx.get(f"{server}/api/docs/", timeout=10) for _ in range(2))

    nonces = []
    for response in (first, second):
        policy = directives(response.headers["content-security-policy"])
        (nonce,) = re.findall(r"'nonce-([A-Za-z0-9+/=]+)'", response.headers["content-security-policy"])[:1]
        assert policy["script-src"] == policy["style-src"] == {"'self'", f"'nonce-{nonce}'"}
        assert response.text.count(f'nonce="{nonce}"') == 2  # the <style> and the start-up <script>
        assert re.findall(r"<(?:script|style)(?![^>]*\b(?:src|nonce)=)[^>]*>", response.text) == []
        nonces.append(nonce)
    assert nonces[0] != nonces[1]


def test_pages_without_inline_blocks_get_no_nonce(server):
    assert "nonce" not in httpx.get(f"{server}/login/", timeout=10).headers["content-security-policy"]
