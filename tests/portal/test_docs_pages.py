"""The repository's docs served at /docs/<name>/: every listed page renders under the portal's CSP (no inline script
or style, raw HTML escaped), links between pages lead to pages and anchors that exist, and the schema, the admin and
the customer pages link to them."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from portal.docs_pages import PAGES, _markdown

pytestmark = pytest.mark.django_db


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a":
            self.hrefs.append(attrs.get("href") or "")
        if tag == "style" or (tag == "script" and "src" not in attrs) or "style" in attrs:
            self.inline.append(tag)
        self.inline += [name for name in attrs if name.startswith("on")]


def parsed(client, url: str) -> Page:
    response = client.get(url)
    assert response.status_code == 200, url
    page = Page()
    page.feed(response.content.decode())
    return page


def test_every_page_is_served_without_inline_script_or_style(client):
    for name, label in PAGES:
        response = client.get(f"/docs/{name}/")
        page = Page()
        page.feed(response.content.decode())

        assert response.status_code == 200, name
        assert "'unsafe-inline'" not in response["Content-Security-Policy"]
        assert page.inline == [], name
        assert f"<title>{label} | Provisioning portal</title>" in response.content.decode()


def test_links_between_pages_lead_to_pages_and_anchors_that_exist(client):
    pages = {f"/docs/{name}/": parsed(client, f"/docs/{name}/") for name, _ in PAGES}
    pages["/docs/"] = parsed(client, "/docs/")
    broken = []
    for url, page in pages.items():
        for href in page.hrefs:
            if re.search(r"\.md(#|$)", href):
                broken.append((url, href))  # a link to another page left as the repository's file name
            if not href.startswith(("/docs/", "#")):
                continue
            target, _, anchor = href.partition("#")
            target_page = pages.get(target or url)
            if target_page is None or (anchor and anchor not in target_page.ids):
                broken.append((url, href))

    assert broken == []


def test_raw_html_and_script_urls_in_a_page_are_not_passed_through():
    html = _markdown().render('<script>alert(1)</script>\n\n<b style="color:red">x</b> [y](javascript:alert(1))\n')

    assert "<script" not in html and "<b " not in html and 'href="javascript' not in html
    assert "&lt;script&gt;" in html


def test_a_page_not_listed_is_not_found(client):
    assert client.get("/docs/design/").status_code == 404
    assert client.get("/docs/nothing/").status_code == 404


def test_the_schema_the_admin_and_the_customer_pages_link_to_the_docs(client, admin_client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    linked = set(re.findall(r"\]\((/docs/[a-z-]+/)", schema["info"]["description"]))

    assert {"/docs/getting-started/", "/docs/dialects/", "/docs/devices/", "/docs/exosite/"} <= linked
    assert {"/docs/provisioning/", "/docs/components/", "/docs/conax/"} <= linked
    assert 'href="/docs/"' in client.get("/login/").content.decode()
    assert 'href="/docs/"' in admin_client.get("/admin/activity/").content.decode()
