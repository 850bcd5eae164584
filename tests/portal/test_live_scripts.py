"""The live pages' scripts share one WebSocket client (portal/static/portal/socket.js): only it opens a socket, and
every template that loads a live script loads it first (plain deferred scripts run in document order)."""

from __future__ import annotations

import re

from tests.conftest import REPO

STATIC = REPO / "portal" / "static" / "portal"
LIVE_SCRIPTS = ("live.js", "fleet.js", "livelist.js")
SCRIPT = re.compile(r"<script src=\"\{% static 'portal/([a-z]+\.js)' %\}\"")


def test_only_the_socket_module_opens_a_websocket():
    opening = sorted(path.name for path in STATIC.glob("*.js") if "new WebSocket(" in path.read_text())

    assert opening == ["socket.js"]
    for name in LIVE_SCRIPTS:
        assert "window.portalSocket.follow(" in (STATIC / name).read_text(), name


def test_a_live_script_comes_after_the_socket_module():
    loading = {}
    for template in sorted((REPO / "templates").rglob("*.html")):
        scripts = SCRIPT.findall(template.read_text())
        if any(name in LIVE_SCRIPTS for name in scripts):
            loading[str(template.relative_to(REPO))] = scripts

    assert len(loading) >= 7  # the pages, the dashboard, the live lists, the device, request and job pages
    for name, scripts in loading.items():
        live = next(script for script in scripts if script in LIVE_SCRIPTS)
        assert "socket.js" in scripts and scripts.index("socket.js") < scripts.index(live), (name, scripts)
