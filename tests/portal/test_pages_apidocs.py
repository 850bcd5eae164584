"""The API docs: Redoc beside Swagger UI, from our own static files, under the one CSP with exactly the relaxation
Redoc needs (portal.pages.REDOC_CSP), and linked from every page."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_redoc_renders_from_our_static_files(client):
    response = client.get("/api/redoc/")

    html = response.content.decode()
    assert response.status_code == 200
    assert '<script src="/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"></script>' in html
    assert '<redoc spec-url="/api/schema/"></redoc>' in html
    assert "googleapis" not in html and "cdn." not in html and "unpkg" not in html and "jsdelivr" not in html
    assert "<script>" not in html  # no inline script


def test_redoc_alone_relaxes_styles_and_workers(client):
    redoc = client.get("/api/redoc/")["Content-Security-Policy"]
    swagger = client.get("/api/docs/")["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in redoc.split("; ")}

    assert directives["style-src"] == ["'self'", "'unsafe-inline'"]
    assert directives["worker-src"] == ["'self'", "blob:"]
    assert directives["script-src"][0] == "'self'" and directives["script-src"][1].startswith("'nonce-")
    assert "unsafe-inline" not in swagger and "blob:" not in swagger


def test_the_bundle_is_served(client):
    from django.contrib.staticfiles import finders

    assert finders.find("drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js")


@pytest.mark.parametrize("path", ["/login/", "/password-reset/"], ids=str)
def test_the_pages_link_to_both_api_docs(client, path):
    html = client.get(path).content.decode()

    assert '<a href="/api/docs/">Swagger UI</a>' in html and '<a href="/api/redoc/">Redoc</a>' in html
