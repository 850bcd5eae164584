"""The Origin check of every WebSocket handshake: full origins (scheme, host, port), as Django's CSRF check does.

Browsers send cookies with a cross-site WebSocket handshake, so the Origin header is the only thing that tells the
portal's own pages from another site's script. An origin passes when it is, compared as (scheme, host, port) with
default ports filled in (``http://h`` is ``http://h:80``):

1. the handshake's own origin: the scheme of the page (``https`` when the socket is ``wss``, or when
   ``SECURE_PROXY_SSL_HEADER`` names a header the proxy set to its value; ``http`` otherwise) with the ``Host``
   header, whose host must be in ``ALLOWED_HOSTS``;
2. a host of ``ALLOWED_HOSTS`` (exact, or ``.example.com`` for the domain and its subdomains; never ``*``) with
   that same scheme and port: the portal serving several names on one server;
3. one of ``CSRF_TRUSTED_ORIGINS`` (``https://portal.example.com``, ``https://*.example.com``), the list Django
   already trusts for cross-origin form posts: a proxy on another port or scheme is declared there.

Refused: no Origin, ``null``, anything that is not ``http(s)://host[:port]``, a handshake without a valid ``Host``.
A refused handshake is closed before any consumer runs (HTTP 403 on the wire).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

if TYPE_CHECKING:
    from portal.kernel.http import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str  # lower case; IPv6 in brackets, as ALLOWED_HOSTS writes it
    port: int

    @classmethod
    def parse(cls, text: str) -> Origin | None:
        """``scheme://host[:port]`` and nothing more (no path, query, user), or None."""
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            return None
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS or parts.path not in ("", "/") or parts.query or parts.fragment:
            return None
        if parts.username is not None or parts.password is not None:
            return None
        host, _ = split_domain_port(parts.netloc)
        if not host:
            return None
        return cls(scheme, host, port if port is not None else DEFAULT_PORTS[scheme])


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}


def _scheme(scope: Scope, headers: dict[str, str]) -> str:
    if scope.get("scheme") == "wss":
        return "https"
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        name, secure_value = proxy_header
        name = name.removeprefix("HTTP_").replace("_", "-").lower()
        if headers.get(name, "").split(",")[0].strip() == secure_value:
            return "https"
    return "http"


def own_origin(scope: Scope) -> Origin | None:
    """The origin of the page that opened this socket, if its Host is one the portal serves."""
    headers = _headers(scope)
    scheme = _scheme(scope, headers)
    host = headers.get("host", "")
    domain, port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    try:
        number = int(port) if port else DEFAULT_PORTS[scheme]
    except ValueError:
        return None
    return Origin(scheme, domain, number)


def _wildcard(entry: str) -> tuple[Origin, str] | None:
    """``https://*.example.com[:port]`` → (its scheme and port, ``.example.com``), as Django's CSRF check reads it."""
    scheme, _, netloc = entry.partition("://")
    pattern = Origin.parse(f"{scheme}://x{netloc[netloc.index('*') + 1 :]}")
    return (pattern, pattern.host[1:]) if pattern and pattern.host.startswith("x.") else None


def _trusted_entry(origin: Origin, entry: str) -> bool:
    if "*" not in entry:
        return Origin.parse(entry) == origin
    wildcard = _wildcard(entry)
    if wildcard is None or (origin.scheme, origin.port) != (wildcard[0].scheme, wildcard[0].port):
        return False
    return is_same_domain(origin.host, wildcard[1])


def _trusted(origin: Origin) -> bool:
    return any(_trusted_entry(origin, entry) for entry in settings.CSRF_TRUSTED_ORIGINS)


def origin_allowed(scope: Scope) -> bool:
    origin = Origin.parse(_headers(scope).get("origin", ""))
    if origin is None:
        return False
    own = own_origin(scope)
    if own is not None and (origin == own or _same_server(origin, own)):
        return True
    return _trusted(origin)


def _same_server(origin: Origin, own: Origin) -> bool:
    if (origin.scheme, origin.port) != (own.scheme, own.port):
        return False
    allowed = [host for host in settings.ALLOWED_HOSTS if host != "*"]
    return validate_host(origin.host, allowed)


class OriginValidator:
    """ASGI middleware: WebSocket handshakes whose Origin is not allowed (see the module docstring) are refused."""

    def __init__(self, application: ASGIApp) -> None:
        self.application = application

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            log.info("websocket origin refused", extra={"path": scope.get("path", ""), "origin": _origin_of(scope)})
            # channels-stubs want asgiref.typing's TypedDicts; these are the server's own scope and callables.
            return await WebsocketDenier()(scope, receive, send)  # type: ignore[arg-type]
        return await self.application(scope, receive, send)


def _origin_of(scope: Scope) -> str:
    return _headers(scope).get("origin", "-")[:200]
