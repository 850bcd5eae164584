"""Counts over time for the dashboard's charts: one GROUP BY per series, whichever model it counts."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.db.models import Count, Model, QuerySet
from django.db.models.functions import Trunc

Period = Literal["hour", "day"]
Series = list[tuple[datetime, str, int]]


def time_series(rows: QuerySet[Model], *, at: str, by: str, since: datetime, unit: Period) -> Series:
    """``(bucket, value of by, count)`` for the rows whose ``at`` is at or after ``since``, per ``unit`` truncated in
    the current time zone, ordered by bucket then value."""
    counted = (
        rows.filter(**{f"{at}__gte": since})
        .annotate(bucket=Trunc(at, unit))
        .values_list("bucket", by)
        .annotate(n=Count("pk"))
        .order_by("bucket", by)
    )
    return [(bucket, value, n) for bucket, value, n in counted]
