"""The CRM.COM ``list`` of provisioning requests rendered from plain rows (``conax.selectors.request_page``).

The same answer, key for key and byte for byte, as ``conax.api.crm.request_data`` gives for each request (the tests
compare the two), without a model instance per request and its users and units: at 50 rows a page that was most of
the list's CPU. The current time zone is looked up once per page, not once per date.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

from django.utils import timezone

from conax.api.crmparams import REQUEST_FIELDS

DATE = "%Y-%m-%dT%H:%M:%S"
Row = dict[str, Any]


def _person(row: Row, who: str) -> dict | None:
    if row[f"{who}_user_id"] is None:
        return None
    first, last = row[f"{who}_user__first_name"], row[f"{who}_user__last_name"]
    username = row[f"{who}_user__username"]
    return {
        "person_name": f"{first} {last}".strip() or username,  # User.get_full_name() or the username
        "username": username,
        "id": str(row[f"{who}_user_id"]),
        "email": row[f"{who}_user__email"] or None,
    }


def _unit(row: Row, who: str) -> dict:
    unit = f"{who}_unit__"
    return {
        "community_name": row[unit + "community_name"] or None,
        "group_name": row[unit + "group_name"] or None,
        "name": row[unit + "name"],
        "id": row[unit + "id"],
        "description": row[unit + "description"] or None,
        "alternative_code": row[unit + "alternative_code"],
    }


def _log(row: Row, date: Callable[[datetime | None], str | None]) -> dict:
    log: dict[str, Any] = {"updated_date": date(row["updated_date"])}
    if row["created_by_unit_id"] is not None:
        log["created_by_unit"] = _unit(row, "created_by")
    log["created_date"] = date(row["created_date"])
    if row["updated_by_unit_id"] is not None:
        log["updated_by_unit"] = _unit(row, "updated_by")
    log["created_by_user"] = _person(row, "created_by")
    log["updated_by_user"] = _person(row, "updated_by")
    return log


def _dater(zone: tzinfo) -> Callable[[datetime | None], str | None]:
    def date(value: datetime | None) -> str | None:
        return value.astimezone(zone).strftime(DATE) if value else None  # timezone.localtime, the zone looked up once

    return date


FIELD_VALUES: dict[str, Callable[[Row, Callable[[datetime | None], str | None]], Any]] = {
    "scheduled_date": lambda row, date: date(row["scheduled_date"]),
    "number": lambda row, date: str(row["number"]),
    "process_immediately": lambda row, date: (
        None if row["process_immediately"] is None else int(row["process_immediately"])
    ),
    "log_information": _log,
    "id": lambda row, date: row["uid"],
    "executed_date": lambda row, date: date(row["executed_date"]),
}
PLAIN = frozenset(REQUEST_FIELDS) - FIELD_VALUES.keys()  # the column's value as it is


def list_data(rows: list[Row], names: tuple[str, ...] = REQUEST_FIELDS) -> list[dict]:
    """Each row as ``request_data`` renders its request, with the fields ``names`` in their order."""
    date = _dater(timezone.get_current_timezone())
    plain = [(name, name in PLAIN) for name in names]
    return [
        {name: row[name] if is_plain else FIELD_VALUES[name](row, date) for name, is_plain in plain} for row in rows
    ]
