"""The repository's ``docs/*.md`` served by the portal itself at ``/docs/<name>/``: the dialects the OpenAPI schema
cannot describe, the getting-started walk-through, the operator's notes. Public, like ``/api/schema/``.

Rendered with markdown-it-py (CommonMark, the executablebooks project; pure Python, already in the dependency tree
through rich): raw HTML in a page is escaped, never passed through (``html: False``), and its link check drops
``javascript:`` and ``data:`` URLs, so a page is only markup the portal's CSP allows: no inline script, no inline
style, one stylesheet from ``'self'``. A link to another page (``docs/exosite.md``, ``exosite.md#…``) becomes its
``/docs/<name>/`` address; headings get GitHub's anchors so the links between pages keep working.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import mark_safe
from markdown_it import MarkdownIt

DOCS_DIR = Path(settings.BASE_DIR) / "docs"
# The pages served, in the order of the side menu: (name, menu label). A docs/*.md not listed is not served.
PAGES: tuple[tuple[str, str], ...] = (
    ("getting-started", "Getting started"),
    ("dialects", "Device-facing and legacy APIs"),
    ("devices", "Devices and activation"),
    ("exosite", "Exosite fleet management API"),
    ("provisioning", "Set-top boxes (Thunder JSON-RPC)"),
    ("components", "Provisioning components (/v1/)"),
    ("conax", "Conditional access (CRM.COM)"),
    ("webhooks", "Outbound webhooks"),
    ("live", "Live status pages"),
    ("console", "The operator console"),
    ("operations", "Operations"),
)
TITLES = dict(PAGES)
LINK = re.compile(r"^(?:\.?/?docs/|\./)?(?P<name>[a-z0-9-]+)\.md(?P<anchor>#[^ ]*)?$")


def _slug(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
        ["table", "strikethrough"]
    )

    def heading_open(self, tokens, idx, options, env):
        inline = tokens[idx + 1]
        slug = _slug("".join(child.content for child in inline.children or [] if child.type in ("text", "code_inline")))
        seen = env.setdefault("slugs", {})
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        tokens[idx].attrSet("id", slug if count == 0 else f"{slug}-{count}")
        return self.renderToken(tokens, idx, options, env)

    def link_open(self, tokens, idx, options, env):
        href = tokens[idx].attrGet("href") or ""
        if (match := LINK.match(str(href))) and match["name"] in TITLES:
            tokens[idx].attrSet("href", reverse("docs-page", args=[match["name"]]) + (match["anchor"] or ""))
        return self.renderToken(tokens, idx, options, env)

    def table_open(self, tokens, idx, options, env):
        return '<div class="table-scroll">' + self.renderToken(tokens, idx, options, env)

    def table_close(self, tokens, idx, options, env):
        return self.renderToken(tokens, idx, options, env) + "</div>"

    md.add_render_rule("heading_open", heading_open)
    md.add_render_rule("link_open", link_open)
    md.add_render_rule("table_open", table_open)
    md.add_render_rule("table_close", table_close)
    return md


@lru_cache(maxsize=64)
def _render(path: Path, mtime_ns: int) -> str:
    """The page's HTML, once per version of the file (the mtime is part of the key)."""
    return _markdown().render(path.read_text(encoding="utf-8"))


def render_page(name: str) -> str:
    path = DOCS_DIR / f"{name}.md"
    return _render(path, path.stat().st_mtime_ns)


def docs_index(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/docs/index.html", {"pages": PAGES})


def docs_page(request: HttpRequest, name: str) -> HttpResponse:
    if name not in TITLES or not (DOCS_DIR / f"{name}.md").is_file():
        raise Http404("No such page.")
    body = mark_safe(render_page(name))  # noqa: S308 (markdown-it with html off: raw HTML in the page is escaped)
    return render(request, "portal/docs/page.html", {"pages": PAGES, "name": name, "title": TITLES[name], "body": body})
