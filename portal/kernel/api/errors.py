"""Domain errors on the staff REST API: one place maps their categories to status codes and a ``{code, detail}``
body (``detail`` names the offending ``details["ids"]`` when there are any, else the message). It knows no app:
every app's errors are ``portal.kernel.errors.DomainError``s."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler

from portal.kernel.errors import Category, DomainError

STATUS = {
    Category.NOT_FOUND: 404,
    Category.CONFLICT: 409,
    Category.INVALID: 400,
    Category.DENIED: 403,
    Category.UNAVAILABLE: 503,
}


def rest_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return Response({"code": exc.code, "detail": _detail(exc)}, status=STATUS[exc.category])
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(detail, status=400)
    return exception_handler(exc, context)


def _detail(exc: DomainError) -> str:
    ids = exc.details.get("ids")
    return f"{exc.code}: {', '.join(map(str, ids[:100]))}" if ids else str(exc)
