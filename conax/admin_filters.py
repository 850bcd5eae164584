"""The Conax request list's sidebar filters: failing only, created within. Their conditions are the selectors'
(``conax.selectors``), so a count on the dashboard and the list its link opens are the same rows."""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.http import HttpRequest

from conax import selectors
from devices.admin_filters import CreatedWithinFilter, StrictChoiceFilter


class RequestFailingFilter(StrictChoiceFilter):
    title = "failing only"
    parameter_name = "failing"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("rejected", "Rejected"), ("retried", "Still pending after an attempt")]

    def condition(self, value: str) -> Q:
        return selectors.request_failing_q(value)


class RequestCreatedFilter(CreatedWithinFilter):
    field = "created_date"
