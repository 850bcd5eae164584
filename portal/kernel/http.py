"""The HTTP edge, the same on every server the project runs (gunicorn for WSGI, uvicorn for ASGI).

- Device endpoints answer for any Host (``PortalWSGIHandler`` / ``PortalASGIHandler`` use request classes whose
  ``get_host()`` skips ``ALLOWED_HOSTS`` on a dialect marked ``any_host``): devices hard-code their vendor's host
  name. Every other path keeps Django's host validation, and a refused Host gets its dialect's error
  (``portal.errors``), never Django's HTML page.
- Bodies over the dialect's limit are refused, declared (``BodyLimitMiddleware``, any server) or streamed
  (``AsgiEdge``: Django's ASGI handler would otherwise spool a chunked body of any size to disk before a view runs;
  gunicorn gives a WSGI app no body without a Content-Length, so the middleware reads a chunked one, bounded).
  Dialects whose views check their own limit (activation, ``/jsonrpc``: they answer and log "too large" in their
  own words) get at most ``limit + 1`` bytes and refuse them themselves.
- ``AsgiEdge`` also sends canonical header names and the ``Date`` header: uvicorn runs with ``--http h11``, which
  keeps the application's header case (its httptools parser lower-cases every name, and Exosite's C library looks
  for ``Content-Length: `` case-sensitively), and with ``--no-date-header --no-server-header``, whose own headers
  it would send in lower case.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Any

from django.core.handlers.asgi import ASGIHandler, ASGIRequest
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port

from portal.kernel import dialects

# Canonical spellings that title case alone does not give.
SPECIAL_NAMES = {b"etag": b"ETag", b"www-authenticate": b"WWW-Authenticate", b"x-xss-protection": b"X-XSS-Protection"}

# ASGI, as loosely as the servers and Django's handler use it (asgiref.typing's unions would need a cast per use).
Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _host_any(request: HttpRequest) -> str:
    """The Host a device sent, unvalidated (device views never build URLs from it), or ``invalid``."""
    raw = request._get_raw_host()  # type: ignore[attr-defined]  # private Django API, absent from django-stubs
    domain, _ = split_domain_port(raw)
    return raw if domain else "invalid"


class _DialectHostMixin(HttpRequest):
    """Placed before ``WSGIRequest`` / ``ASGIRequest`` (subclasses of ``HttpRequest``): the MRO is unchanged."""

    def get_host(self) -> str:
        dialect = dialects.dialect_for(self.path)
        if dialect is not None and dialect.any_host:
            return _host_any(self)
        return super().get_host()


class PortalWSGIRequest(_DialectHostMixin, WSGIRequest):
    pass


class PortalASGIRequest(_DialectHostMixin, ASGIRequest):
    pass


class PortalWSGIHandler(WSGIHandler):
    request_class = PortalWSGIRequest


class PortalASGIHandler(ASGIHandler):
    request_class = PortalASGIRequest


def declared_length(value: str | None) -> int | None:
    """A Content-Length as a number: None when absent, -1 when it is not a non-negative integer."""
    if value is None or value == "":
        return None
    return int(value) if value.isascii() and value.isdigit() else -1


def too_large(path: str) -> HttpResponse:
    dialect = dialects.dialect_for(path)
    if dialect is not None:
        return dialect.render(dialects.TOO_LARGE)
    return HttpResponse("Request body too large.", status=413, content_type="text/plain; charset=utf-8")


def bad_length(path: str) -> HttpResponse:
    dialect = dialects.dialect_for(path)
    if dialect is not None:
        return dialect.render(dialects.BAD_REQUEST)
    return HttpResponse("Bad Content-Length.", status=400, content_type="text/plain; charset=utf-8")


class BodyLimitMiddleware:
    """A declared body over the dialect's limit is refused before anything reads it. Under WSGI a chunked body
    (no Content-Length: Django would read it as empty) is read here up to the limit, and refused past it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        length = declared_length(request.META.get("CONTENT_LENGTH"))
        limit = dialects.body_limit(request.path)
        if length == -1:
            return bad_length(request.path)
        dialect = dialects.dialect_for(request.path)
        self_limiting = dialect is not None and dialect.view_checks_limit
        if length is not None and length > limit and not self_limiting:
            return too_large(request.path)
        if length is None and _chunked_wsgi(request) and not _read_chunked(request, limit, truncate=self_limiting):
            return too_large(request.path)
        return self.get_response(request)


def _chunked_wsgi(request: HttpRequest) -> bool:
    return "wsgi.input" in request.META and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()


def _read_chunked(request: HttpRequest, limit: int, *, truncate: bool) -> bool:
    """Read a chunked WSGI body (the server decodes the chunks) into the request; False past ``limit``, unless
    the dialect's views check the limit themselves: they get the first ``limit + 1`` bytes."""
    body = request.META["wsgi.input"].read(limit + 1)
    if len(body) > limit and not truncate:
        return False
    request._stream = io.BytesIO(body)  # what Django's handlers give a request: a stream of the body
    request.META["CONTENT_LENGTH"] = str(len(body))
    return True


def canonical(name: bytes) -> bytes:
    if name != name.lower():
        return name  # the application spelled it; Django's names are canonical already
    return SPECIAL_NAMES.get(name) or b"-".join(part[:1].upper() + part[1:] for part in name.split(b"-"))


async def _send_response(send: Send, response: HttpResponse) -> None:
    headers = [(canonical(k.encode("latin-1")), v.encode("latin-1")) for k, v in response.items()]
    headers += [(b"Content-Length", str(len(response.content)).encode()), (b"Connection", b"close")]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})


class AsgiEdge:
    """ASGI wrapper of the HTTP app: streamed-body limit, canonical header names, Date."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        header = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        length = declared_length(header.decode("latin-1") if header is not None else None)
        dialect = dialects.dialect_for(path)
        self_limiting = dialect is not None and dialect.view_checks_limit
        if length == -1:
            return await _send_response(_dated(send), bad_length(path))
        if length is not None and length > dialects.body_limit(path) and not self_limiting:
            return await _send_response(_dated(send), too_large(path))
        body = _LimitedBody(receive, dialects.body_limit(path), truncate=self_limiting)
        await self.app(scope, body.receive, body.sending(_dated(send)))
        if body.exceeded and not body.started:
            await _send_response(_dated(send), too_large(path))


class _LimitedBody:
    """One request's body, passed on up to its limit. Past it, a dialect whose views check the limit gets the
    first ``limit + 1`` bytes as the whole body (its view refuses them in its own words, and logs them); for any
    other the edge answers ``too large`` itself (Django's handler stops on a disconnect and answers nothing)."""

    def __init__(self, receive: Receive, limit: int, *, truncate: bool) -> None:
        self._receive, self.limit, self.truncate = receive, limit, truncate
        self.received = 0
        self.exceeded = self.started = self.closed = False

    async def receive(self) -> Message:
        if self.exceeded:
            # Nothing more is read from the client; the answer closes the connection.
            await asyncio.Event().wait()
        message = await self._receive()
        if message["type"] != "http.request":
            return message
        chunk = message.get("body", b"")
        self.received += len(chunk)
        if self.received <= self.limit:
            return message
        self.exceeded = True
        if not self.truncate:
            return {"type": "http.disconnect"}
        keep = len(chunk) - (self.received - self.limit - 1)
        return {"type": "http.request", "body": chunk[:keep], "more_body": False}

    def sending(self, send: Send) -> Send:
        async def edge_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.started = True
                if self.exceeded:
                    message = {**message, "headers": [*message.get("headers", []), (b"Connection", b"close")]}
            await send(message)

        return edge_send


def _dated(send: Send) -> Send:
    async def send_canonical(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(canonical(name), value) for name, value in message.get("headers", [])]
            if not any(name.lower() == b"date" for name, _ in headers):
                headers.insert(0, (b"Date", formatdate(usegmt=True).encode()))
            message = {**message, "headers": headers}
        await send(message)

    return send_canonical
