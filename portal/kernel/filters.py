"""Filters every app's FilterSets share, and the one way a FilterSet is applied outside the REST API.

An invalid filter value is an error everywhere, never a filter silently left out: the REST API's filter backend
answers 400 (django-filter's ``raise_exception``), and the selectors apply their FilterSet through ``filtered``,
which raises Django's ``ValidationError`` (the REST error handler renders it in the same ``{"<filter>": [...]}``
body).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import django_filters as filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from portal.lib import dates


class WindowedDateTimeField(forms.Field):
    """A date filter's value, parsed as every date the dialects accept (``portal.lib.dates``): strict, in UTC, inside
    the accepted window; anything else is a validation error (the filter's 400), never a database error (PostgreSQL
    refuses offsets past ±15:59, psycopg cannot read years past 9999)."""

    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        try:
            return dates.parse(value, now=timezone.now(), default_zone=timezone.get_current_timezone())
        except dates.DateError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from exc


class WindowedDateTimeFilter(filters.Filter):
    field_class = WindowedDateTimeField


class IdField(forms.IntegerField):
    """The id of an existing row (NetBox's ``<fk>_id``): not a whole number, or naming no row, is invalid, so that a
    mistyped id is an error rather than an empty list that looks like an answer."""

    default_error_messages = {
        "invalid": "Enter a number.",
        "invalid_choice": "Select a valid choice. %(value)s is not one of the available choices.",
    }

    def __init__(self, *, queryset: QuerySet, **kwargs: Any) -> None:
        self.queryset = queryset
        super().__init__(**kwargs)

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value is not None and not self.queryset.filter(pk=value).exists():
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice", params={"value": value})


class IdFilter(filters.NumberFilter):
    """``<fk>_id=<id>``: exact match on an id that must exist (``queryset`` says where)."""

    field_class = IdField  # type: ignore[assignment]  # types-django-filter pin NumberFilter to DecimalField


class StrictNullBooleanField(forms.NullBooleanField):
    """Django's NullBooleanField (and its select widget) read anything but true/false/1/0 as "no filter"; here it is
    an error."""

    widget = forms.TextInput

    def clean(self, value: Any) -> bool | None:
        cleaned = super().clean(value)
        if cleaned is None and value not in self.empty_values:
            raise ValidationError("Enter true or false.", code="invalid")
        return cleaned


class BooleanFilter(filters.BooleanFilter):
    """``true``/``false`` (or ``1``/``0``); any other value is a 400, not the filter left out."""

    field_class = StrictNullBooleanField


def filtered(filterset_class: type[filters.FilterSet], data: dict | None, queryset: QuerySet) -> QuerySet:
    """``queryset`` narrowed by ``filterset_class`` over ``data``; an invalid value raises ``ValidationError``
    (``{filter: [messages]}``) instead of being dropped, as django-filter's ``qs`` alone would."""
    filterset = filterset_class(data=data or {}, queryset=queryset)
    if not filterset.is_valid():
        raise ValidationError(filterset.form.errors.as_data())
    return filterset.qs
