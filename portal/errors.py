"""The project's error handlers (``handler400``/``403``/``404``/``500``): each dialect answers in its own format.

A database that does not answer (refused, timed out, or the connection breaker in ``portal.kernel.db`` open) is not an
internal error: every dialect answers its "unavailable" (503 with ``Retry-After``), the pages a short 503 page.
"""

from __future__ import annotations

import sys

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.views import defaults

from portal import pages
from portal.kernel import dialects


def _dialect_or(request: HttpRequest, kind: str, default):
    dialect = dialects.dialect_for(request.path)
    return dialect.render(kind) if dialect is not None else default()


def bad_request(request: HttpRequest, exception=None) -> HttpResponse:
    return _dialect_or(request, dialects.BAD_REQUEST, lambda: defaults.bad_request(request, exception))


def permission_denied(request: HttpRequest, exception=None) -> HttpResponse:
    return _dialect_or(request, dialects.FORBIDDEN, lambda: defaults.permission_denied(request, exception))


def page_not_found(request: HttpRequest, exception=None) -> HttpResponse:
    return _dialect_or(request, dialects.NOT_FOUND, lambda: _pages_not_found(request, exception))


def _pages_not_found(request: HttpRequest, exception) -> HttpResponse:
    """The pages' own 404 (their look, plain words, the way back); the admin keeps Django's."""
    if request.path.startswith("/admin/"):
        return defaults.page_not_found(request, exception)
    return pages.not_found(request)


def database_down(exc: BaseException | None) -> bool:
    return isinstance(exc, OperationalError | InterfaceError)


def _unavailable_page() -> HttpResponse:
    response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = str(settings.DATABASE_RETRY_AFTER)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    # Django calls the handler inside its ``except`` block: the exception being handled is the cause.
    if database_down(sys.exc_info()[1]):
        return _dialect_or(request, dialects.UNAVAILABLE, _unavailable_page)
    return _dialect_or(request, dialects.INTERNAL, lambda: defaults.server_error(request))
