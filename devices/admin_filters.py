"""Sidebar filters the admins share: choices rather than free text, and a value not offered is refused.

``FilterSetChoices`` lists choices whose links set a parameter of the app's FilterSet (the staff API's name, e.g.
``?vendor_id=3``), for admins with ``FilterSetAdminMixin``: the FilterSet filters and refuses a wrong value (400).
``StrictChoiceFilter`` filters by itself; the mixin refuses a value it does not offer with a 400, and on an admin
without the mixin the value is refused the admin's own way (the list with ``?e=1``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from devices import selectors


class FilterSetChoices(admin.ListFilter):
    parameter_name: str

    def __init__(self, request: HttpRequest, params: dict, model: Any, model_admin: Any) -> None:
        super().__init__(request, params, model, model_admin)
        self.value = request.GET.get(self.parameter_name)
        self.lookup_choices = list(self.lookups(request))

    def lookups(self, request: HttpRequest) -> list[tuple[Any, str]]:
        raise NotImplementedError

    def has_output(self) -> bool:
        return bool(self.lookup_choices)

    def expected_parameters(self) -> list[str]:
        return [self.parameter_name]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset  # the FilterSet (FilterSetAdminMixin) applies the parameter

    def choices(self, changelist: Any) -> Iterator[dict[str, Any]]:
        yield {
            "selected": self.value is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "All",
        }
        for key, label in self.lookup_choices:
            yield {
                "selected": self.value == str(key),
                "query_string": changelist.get_query_string({self.parameter_name: key}),
                "display": label,
            }


def chosen_id(request: HttpRequest, name: str) -> int | None:
    """A whole-number id in the query string, or None (a malformed one is the filter's own error to report)."""
    value = request.GET.get(name, "")
    return int(value) if value.isascii() and value.isdigit() and len(value) < 10 else None


class VendorChoices(FilterSetChoices):
    title = "vendor"
    parameter_name = "vendor_id"

    def lookups(self, request: HttpRequest) -> list[tuple[Any, str]]:
        return selectors.vendor_choices()


class DeviceModelChoices(FilterSetChoices):
    """The models of the chosen vendor (all of them when none is chosen)."""

    title = "device model"
    parameter_name = "model_id"

    def lookups(self, request: HttpRequest) -> list[tuple[Any, str]]:
        return selectors.device_model_choices(vendor_id=chosen_id(request, "vendor_id"))


class StrictChoiceFilter(admin.SimpleListFilter):
    """A choice filter whose choices are conditions (``condition(value)``); a value it does not offer is refused."""

    def condition(self, value: str) -> Q:
        raise NotImplementedError

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value is None:
            return queryset
        if value not in {str(key) for key, _ in self.lookup_choices}:
            raise IncorrectLookupParameters(f"{self.parameter_name}: {value!r} is not one of the choices")
        return queryset.filter(self.condition(value))


class CreatedWithinFilter(StrictChoiceFilter):
    """Rows created in the last hour, day or week (relative, so that a shared link keeps meaning "recent")."""

    title = "created"
    parameter_name = "created"
    field: str = "created_at"
    WITHIN = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("1h", "In the last hour"), ("24h", "In the last 24 hours"), ("7d", "In the last 7 days")]

    def condition(self, value: str) -> Q:
        return Q(**{f"{self.field}__gte": timezone.now() - self.WITHIN[value]})
