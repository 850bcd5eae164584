"""Pagination of every staff REST list: DRF's limit/offset, bounded so that no query string reaches the database
as a number it cannot take (``?limit=9223372036854775808`` was a ``bigint out of range`` 500).

Decision: **clamp, never refuse**, as DRF itself treats a ``limit`` above ``max_limit``:

- ``limit``: at most ``MAX_LIMIT`` (1000); larger values give 1000 rows. A value that is not a positive integer
  gives the default page (``PAGE_SIZE``), DRF's rule for a malformed limit.
- ``offset``: at most the number of rows; beyond it the page is empty and ``previous`` leads back into the list
  (DRF's links would otherwise carry the absurd number on). Not a non-negative integer → 0, DRF's rule.
- ``page_size``: not a parameter of this API (it pages by limit/offset); ignored like any unknown parameter.

Why clamp rather than answer 400: a client asking for too much still gets correct, complete data by following
``next``, whose link carries the values actually used; DRF clients already expect these rules; and a list answers
no status its schema does not list. Every number used is checked before any query runs, so none can overflow.

The query string's text is checked here too (``portal.kernel.api.parsers.check_query``), so that a list without a
FilterSet refuses NUL characters like the filtered ones (400, DRF's error body).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework.pagination import LimitOffsetPagination

from portal.kernel.api.parsers import check_query

if TYPE_CHECKING:
    from django.db.models import QuerySet
    from rest_framework.request import Request
    from rest_framework.views import APIView

MAX_LIMIT = 1000


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    max_limit = MAX_LIMIT

    def paginate_queryset(
        self, queryset: QuerySet[Any], request: Request, view: APIView | None = None
    ) -> list[Any] | None:
        check_query(request.query_params)
        return super().paginate_queryset(queryset, request, view)

    def get_offset(self, request: Request) -> int:
        # DRF reads the offset after the count; an offset past the end means the end.
        return min(super().get_offset(request), self.count or 0)

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        notes = {
            self.limit_query_param: f" At most {MAX_LIMIT}: a larger limit gives {MAX_LIMIT} rows.",
            self.offset_query_param: " Past the last row: an empty page.",
        }
        for parameter in parameters:
            parameter["description"] += notes.get(parameter["name"], "")
        return parameters
