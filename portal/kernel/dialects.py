"""The wire dialects the portal speaks, by path, and how each one says "that went wrong" outside its views.

A view answers its own dialect. But some answers are given before or around a view: an unknown path, a refused
Host header, a body over the dialect's size limit, a database that is down, an uncaught error. Django would
answer those with HTML pages; a device library or a CRM client that JSON-decodes every answer breaks on them. The
project's error handlers (``handler400``/``403``/``404``/``500`` in ``portal.urls``), the body limit and the
database guard all ask this module for the dialect of a path and render its error.

Each dialect knows:
- ``any_host``: devices hard-code their vendor's host name (Exosite's C library sends ``Host: m2.exosite.com``), so
  the device endpoints answer for any Host; integrations and people keep Django's host validation.
- ``body_limit``: the largest request body it accepts, refused while streaming (``portal.kernel.http``).
- ``render(kind)``: its error answer for ``bad_request``, ``forbidden``, ``not_found``, ``too_large``,
  ``unavailable`` (503 + ``Retry-After``: the database does not answer) and ``internal``.

Pure wire formats only: this module imports no app (the views of each app render the same formats).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpResponse

BAD_REQUEST, FORBIDDEN, NOT_FOUND, TOO_LARGE = "bad_request", "forbidden", "not_found", "too_large"
UNAVAILABLE, INTERNAL = "unavailable", "internal"
STATUS = {BAD_REQUEST: 400, FORBIDDEN: 403, NOT_FOUND: 404, TOO_LARGE: 413, UNAVAILABLE: 503, INTERNAL: 500}
MB = 1024 * 1024


def _finish(response: HttpResponse, kind: str) -> HttpResponse:
    # Rendered where CommonMiddleware may not run (a refused Host is raised inside it): the length is set here.
    response["Content-Length"] = str(len(response.content))
    if kind == UNAVAILABLE:
        response["Retry-After"] = str(settings.DATABASE_RETRY_AFTER)
    return response


def _json(body: object, status: int) -> HttpResponse:
    return HttpResponse(json.dumps(body), status=status, content_type="application/json")


# --- the dialects' error formats --------------------------------------------------------------------------------

TEXT = {
    BAD_REQUEST: "bad request",
    FORBIDDEN: "forbidden",
    NOT_FOUND: "not found",
    TOO_LARGE: "body too large",
    UNAVAILABLE: "service unavailable",
    INTERNAL: "internal error",
}


def _activation(kind: str) -> HttpResponse:
    """Exosite activation: short plain text, the status code carries the meaning (too large: 400, as its view)."""
    status = 400 if kind == TOO_LARGE else STATUS[kind]
    return HttpResponse(TEXT[kind], status=status, content_type="text/plain; charset=utf-8")


def _exosite_manage(kind: str) -> HttpResponse:
    """Exosite fleet management: short plain text, as activation, but a body over the limit is a 413."""
    return HttpResponse(TEXT[kind], status=STATUS[kind], content_type="text/plain; charset=utf-8")


JSONRPC = {
    BAD_REQUEST: (-32600, "Invalid Request"),
    FORBIDDEN: (-32600, "Invalid Request"),
    NOT_FOUND: (-32601, "Unknown method."),
    TOO_LARGE: (-32600, "Invalid Request: body too large"),
    # Thunder's "back off" (DESIGN.md): ERROR_UNAVAILABLE, code 2.
    UNAVAILABLE: (2, "ERROR_UNAVAILABLE"),
    INTERNAL: (-32603, "Internal error"),
}


def _jsonrpc(kind: str) -> HttpResponse:
    """Thunder JSON-RPC: a JSON-RPC 2.0 error with a null id (the request could not be read)."""
    code, message = JSONRPC[kind]
    status = 202 if kind in (BAD_REQUEST, TOO_LARGE) else STATUS[kind]  # Thunder's errors travel on 202
    return _json({"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}, status)


CRM = {
    BAD_REQUEST: ("INVALID_REQUEST", "the request could not be read"),
    FORBIDDEN: ("ACCESS_DENIED", "the request was refused"),
    NOT_FOUND: ("UNKNOWN_METHOD", "no such resource or method"),
    TOO_LARGE: ("INVALID_REQUEST", "the body is too large"),
    UNAVAILABLE: ("SERVICE_UNAVAILABLE", "the service is temporarily unavailable, retry later"),
    INTERNAL: ("INTERNAL_ERROR", "the request failed; nothing was changed"),
}


def _crm(kind: str) -> HttpResponse:
    """CRM.COM: the envelope, errors included."""
    code, message = CRM[kind]
    return _json({"status": {"message": message, "description": None, "code": code}, "data": None}, STATUS[kind])


V1 = {
    BAD_REQUEST: "INVALID_REQUEST_PRAM",
    FORBIDDEN: "INVALID_TOKEN",
    NOT_FOUND: "INVALID_REQUEST_PRAM",
    TOO_LARGE: "INVALID_REQUEST_PRAM",
    UNAVAILABLE: "SERVICE_UNAVAILABLE",
    INTERNAL: "INTERNAL_ERROR",
}


def _v1(kind: str) -> HttpResponse:
    """The /v1/ components API: ``{"error": CODE}`` with HTTP 200, as the original service answers; only
    "unavailable" keeps its 503 so that load balancers and retrying clients see it."""
    return _json({"error": V1[kind]}, 503 if kind == UNAVAILABLE else 200)


def v1_login_failure(code: str, *, username: str = "", content_type: str = "") -> dict:
    """The original /v1/Login/'s failure answer: its seven fields, in its order (components/api/login.py)."""
    return {
        "token": "ERROR",
        "userid": "",
        "userrole": "",
        "status": "FAILURE",
        "error": code,
        "username": username,
        "CONTENT_TYPE": content_type,
    }


def _v1_login(kind: str) -> HttpResponse:
    return _json(v1_login_failure(V1[kind]), 503 if kind == UNAVAILABLE else 200)


REST = {
    BAD_REQUEST: "Bad request.",
    FORBIDDEN: "You do not have permission to perform this action.",
    NOT_FOUND: "Not found.",
    TOO_LARGE: "Request body too large.",
    UNAVAILABLE: "Service temporarily unavailable, try again later.",
    INTERNAL: "Internal error; nothing was changed.",
}


def _rest(kind: str) -> HttpResponse:
    """The staff REST API: DRF's ``{"detail": …}``."""
    return _json({"detail": REST[kind]}, STATUS[kind])


@dataclass(frozen=True)
class Dialect:
    name: str
    prefixes: tuple[str, ...]
    render_error: Callable[[str], HttpResponse]
    body_limit: int
    any_host: bool = False
    exact: bool = False
    # Its views read at most body_limit + 1 bytes and refuse more in their own words (kernel.http passes them on).
    view_checks_limit: bool = False
    # A setting that overrides body_limit, read at each request (a size operators configure).
    limit_setting: str = ""

    def matches(self, path: str) -> bool:
        return path in self.prefixes if self.exact else path.startswith(self.prefixes)

    def render(self, kind: str) -> HttpResponse:
        return _finish(self.render_error(kind), kind)


DIALECTS = (
    # --- Exosite fleet management API (docs/exosite.md): before activation, whose prefix it shares ---
    Dialect(
        "exosite-manage",
        ("/provision/manage/", "/provision/register", "/provision/download", "/provision/admin/"),
        _exosite_manage,
        body_limit=64 * MB,
        any_host=True,
        limit_setting="EXOSITE_CONTENT_MAX_BYTES",
    ),
    Dialect("activation", ("/provision/",), _activation, body_limit=4096, any_host=True, view_checks_limit=True),
    Dialect(
        "jsonrpc", ("/jsonrpc",), _jsonrpc, body_limit=16 * 1024, any_host=True, exact=True, view_checks_limit=True
    ),
    Dialect("crm", ("/crmapi/",), _crm, body_limit=MB),
    Dialect("v1-login", ("/v1/Login/",), _v1_login, body_limit=16 * 1024, exact=True),
    Dialect("v1", ("/v1/",), _v1, body_limit=4 * MB),
    Dialect("rest", ("/api/",), _rest, body_limit=32 * MB),
)


def dialect_for(path: str) -> Dialect | None:
    """The dialect that serves ``path``; None for the pages and the admin (Django's own answers)."""
    return next((dialect for dialect in DIALECTS if dialect.matches(path)), None)


def body_limit(path: str) -> int:
    dialect = dialect_for(path)
    if dialect is not None and dialect.limit_setting:
        return getattr(settings, dialect.limit_setting, dialect.body_limit)
    return dialect.body_limit if dialect is not None else settings.REQUEST_BODY_LIMIT
