"""Filters every app's FilterSets share."""

from __future__ import annotations

import django_filters as filters
from django import forms
from django.utils import timezone

from portal.lib import dates


class WindowedDateTimeField(forms.Field):
    """A date filter's value, parsed as every date the dialects accept (``portal.lib.dates``): strict, in UTC, inside
    the accepted window; anything else is a validation error (the filter's 400), never a database error (PostgreSQL
    refuses offsets past ±15:59, psycopg cannot read years past 9999)."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return dates.parse(value, now=timezone.now(), default_zone=timezone.get_current_timezone())
        except dates.DateError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from exc


class WindowedDateTimeFilter(filters.Filter):
    field_class = WindowedDateTimeField
