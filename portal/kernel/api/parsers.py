"""What the staff REST API reads from a request, refused at the door when no field could ever store it.

One layer for the whole dialect instead of a check per field: the parser classes for bodies (JSON and forms) and
the filter backend for query strings (``portal.kernel.api.pagination`` runs the same check on lists without filters).
Refused, with a 400 in DRF's validation-error body (``{"<field>": ["<message>"]}``, the messages DRF and Django
themselves use) and before any view code runs, so nothing is written:

- NUL characters, in keys or values: PostgreSQL text cannot hold them;
- lone surrogates (``"\\ud800"`` is legal JSON): there is no UTF-8 for them, so no driver can send them;
- JSON integers outside 64 bits and floats that overflow to infinity: no column takes them;
- JSON nested deeper than Python's parser can follow (DRF lets that ``RecursionError`` through as a 500).

The walk over decoded JSON is iterative, so depth cannot exhaust the stack here either.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.settings import api_settings

if TYPE_CHECKING:
    from django.db.models import QuerySet
    from django.http import QueryDict
    from django.http.request import _ImmutableQueryDict  # what the stubs say FormParser.parse returns
    from rest_framework.request import Request
    from rest_framework.views import APIView

MAX_INT = 2**63 - 1
NUL = "Null characters are not allowed."
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _text_problem(text: str) -> str | None:
    found = UNSTORABLE.search(text)
    if found is None:
        return None
    return NUL if found.group() == "\x00" else f"Surrogate characters are not allowed: U+{ord(found.group()):X}."


def _scalar_problem(value: Any) -> str | None:
    if isinstance(value, str):
        return _text_problem(value)
    if isinstance(value, int) and not isinstance(value, bool) and not -MAX_INT - 1 <= value <= MAX_INT:
        return f"Ensure this value is between {-MAX_INT - 1} and {MAX_INT}."
    if isinstance(value, float) and not math.isfinite(value):
        return "A valid number is required."
    return None


def _problem(value: Any) -> str | None:
    """The first thing in ``value`` (any decoded JSON) that no field can store, as a message; else None."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                if problem := _text_problem(key):
                    return problem
                pending.append(inner)
        elif isinstance(item, list):
            pending.extend(item)
        elif problem := _scalar_problem(item):
            return problem
    return None


def check_data(data: Any) -> None:
    """Raise DRF's ValidationError, keyed by the top-level field that holds the problem."""
    fields = data.items() if isinstance(data, dict) else [(api_settings.NON_FIELD_ERRORS_KEY, data)]
    for name, value in fields:
        if _text_problem(name):
            raise ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [f"Field names: {_text_problem(name)}"]})
        if problem := _problem(value):
            raise ValidationError({name: [problem]})


def check_query(params: QueryDict) -> None:
    """Query parameters (a QueryDict): every name and every value."""
    check_data({name: params.getlist(name) for name in params})


class SafeJSONParser(JSONParser):
    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply") from exc
        check_data(data)
        return data


class SafeFormParser(FormParser):
    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> _ImmutableQueryDict:
        data = super().parse(stream, media_type, parser_context)
        check_query(data)
        return data


class SafeFilterBackend(DjangoFilterBackend):
    """django-filter's backend, after the query string's text check (filters run on lists and on detail lookups)."""

    # django-filter's stubs say HttpRequest; DRF hands its filter backends a DRF Request (query_params).
    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: APIView) -> QuerySet[Any]:  # type: ignore[override]
        check_query(request.query_params)
        return super().filter_queryset(request, queryset, view)
