"""The WebSocket Origin check compares full origins (scheme, host, port), through the real ASGI application.

An anonymous handshake that passes the Origin check reaches the consumer, which closes it with 4401; one refused by
the check is closed before any consumer runs (1000): neither touches the database. A logged-in user is accepted
only through an allowed origin.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings

from portal.asgi import application
from portal.kernel.origin import Origin

PASSED, REFUSED = 4401, 1000


async def handshake(origin: str | None, host: str | None = "localhost:8000", scheme: str = "ws", *extra) -> int:
    headers = [(b"host", host.encode())] if host is not None else []
    headers += [(b"origin", origin.encode())] if origin is not None else []
    ws = WebsocketCommunicator(application, "/ws/ping/", headers=[*headers, *extra])
    ws.scope["scheme"] = scheme
    connected, code = await ws.connect()
    assert connected is False
    return code


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        pytest.param("http://localhost:8000", "localhost:8000", id="same-origin"),
        pytest.param("http://127.0.0.1:8000", "localhost:8000", id="another-allowed-host-same-port"),
        pytest.param("http://localhost", "localhost", id="default-port-omitted"),
        pytest.param("http://localhost:80", "localhost", id="default-port-written"),
        pytest.param("HTTP://LOCALHOST:8000", "localhost:8000", id="upper-case"),
        pytest.param("http://[::1]:8000", "[::1]:8000", id="ipv6"),
    ],
)
async def test_origins_of_the_server_itself_pass(origin, host):
    assert await handshake(origin, host) == PASSED


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        pytest.param("http://localhost:9999", "localhost:8000", id="other-port-the-audit-case"),
        pytest.param("http://127.0.0.1:9999", "localhost:8000", id="allowed-host-other-port"),
        pytest.param("https://localhost:8000", "localhost:8000", id="other-scheme"),
        pytest.param("http://localhost", "localhost:8000", id="default-port-is-not-8000"),
        pytest.param("http://evil.example.com", "localhost:8000", id="foreign-host"),
        pytest.param("http://localhost.evil.example.com:8000", "localhost:8000", id="suffix-trick"),
        pytest.param("null", "localhost:8000", id="null"),
        pytest.param(None, "localhost:8000", id="missing"),
        pytest.param("", "localhost:8000", id="empty"),
        pytest.param("http://localhost:8000/page", "localhost:8000", id="with-path"),
        pytest.param("http://user@localhost:8000", "localhost:8000", id="with-user"),
        pytest.param("ftp://localhost:8000", "localhost:8000", id="other-protocol"),
        pytest.param("http://localhost:port", "localhost:8000", id="bad-port"),
        pytest.param("http://localhost:99999", "localhost:8000", id="port-out-of-range"),
        pytest.param("http://evil.example.com:8000", "evil.example.com:8000", id="host-not-allowed"),
        pytest.param("http://127.0.0.1:8000", None, id="no-host-header"),
    ],
)
async def test_other_origins_are_refused(origin, host):
    assert await handshake(origin, host) == REFUSED


async def test_wss_pages_are_https_origins():
    assert await handshake("https://localhost:8443", "localhost:8443", "wss") == PASSED
    assert await handshake("http://localhost:8443", "localhost:8443", "wss") == REFUSED


async def test_behind_a_tls_proxy_the_configured_header_gives_the_scheme(settings):
    settings.ALLOWED_HOSTS = ["portal.example.com"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    proto = (b"x-forwarded-proto", b"https")

    assert await handshake("https://portal.example.com", "portal.example.com", "ws", proto) == PASSED
    assert await handshake("http://portal.example.com", "portal.example.com", "ws", proto) == REFUSED
    assert await handshake("http://portal.example.com", "portal.example.com") == PASSED


async def test_the_forwarded_proto_header_means_nothing_unless_configured():
    proto = (b"x-forwarded-proto", b"https")

    assert await handshake("https://localhost:8000", "localhost:8000", "ws", proto) == REFUSED


@pytest.mark.parametrize(
    ("trusted", "origin", "expected"),
    [
        pytest.param("https://portal.example.com", "https://portal.example.com", PASSED, id="exact"),
        pytest.param("https://portal.example.com", "https://portal.example.com:443", PASSED, id="exact-default-port"),
        pytest.param("https://portal.example.com", "http://portal.example.com", REFUSED, id="exact-other-scheme"),
        pytest.param("https://portal.example.com", "https://portal.example.com:8443", REFUSED, id="exact-other-port"),
        pytest.param("https://*.example.com", "https://live.example.com", PASSED, id="wildcard"),
        pytest.param("https://*.example.com", "http://live.example.com", REFUSED, id="wildcard-other-scheme"),
        pytest.param("https://*.example.com", "https://live.example.com:8443", REFUSED, id="wildcard-other-port"),
        pytest.param("https://*.example.com:8443", "https://live.example.com:8443", PASSED, id="wildcard-port"),
        pytest.param("https://*.example.com", "https://example.com.evil.org", REFUSED, id="wildcard-suffix-trick"),
    ],
)
async def test_csrf_trusted_origins_are_trusted_with_their_scheme_and_port(settings, trusted, origin, expected):
    settings.CSRF_TRUSTED_ORIGINS = [trusted]

    # The proxy forwards to the portal on a loopback port: the page's origin is only known from the trusted list.
    assert await handshake(origin, "127.0.0.1:8001") == expected


async def test_a_wildcard_allowed_hosts_trusts_only_the_own_origin(settings):
    settings.ALLOWED_HOSTS = ["*"]

    assert await handshake("http://portal.example.com:8000", "portal.example.com:8000") == PASSED
    assert await handshake("http://evil.example.com:8000", "portal.example.com:8000") == REFUSED


async def test_a_subdomain_pattern_in_allowed_hosts_matches_its_subdomains(settings):
    settings.ALLOWED_HOSTS = [".example.com"]

    assert await handshake("https://a.example.com", "b.example.com", "wss") == PASSED
    assert await handshake("https://a.example.org", "b.example.com", "wss") == REFUSED


@pytest.mark.django_db(transaction=True)
async def test_a_logged_in_user_is_accepted_only_from_an_allowed_origin(client, staff_user):
    await sync_to_async(client.force_login)(staff_user)
    name = django_settings.SESSION_COOKIE_NAME
    cookie = (b"cookie", f"{name}={client.cookies[name].value}".encode())
    headers = [(b"host", b"localhost:8000"), cookie]

    good = WebsocketCommunicator(application, "/ws/ping/", headers=[*headers, (b"origin", b"http://localhost:8000")])
    bad = WebsocketCommunicator(application, "/ws/ping/", headers=[*headers, (b"origin", b"http://localhost:9999")])

    assert (await good.connect())[0] is True
    assert await bad.connect() == (False, REFUSED)
    await good.disconnect()


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        pytest.param("https://Portal.Example.com", Origin("https", "portal.example.com", 443), id="https"),
        pytest.param("http://[::1]:8000", Origin("http", "[::1]", 8000), id="ipv6"),
        pytest.param("http://localhost:8000/", Origin("http", "localhost", 8000), id="trailing-slash"),
        pytest.param("http://localhost:8000?x=1", None, id="query"),
        pytest.param("http://", None, id="no-host"),
        pytest.param("localhost:8000", None, id="no-scheme"),
    ],
)
def test_origin_parsing(text, parsed):
    assert Origin.parse(text) == parsed
