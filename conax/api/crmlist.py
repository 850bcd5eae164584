"""The CRM.COM ``list`` of provisioning requests rendered from plain rows (``conax.selectors.request_page``).

The same answer, key for key and byte for byte, as ``conax.api.crm.request_data`` gives for each request (the tests
compare the two), without a model instance per request and its users and units: at 50 rows a page that was most of
the list's CPU. The current time zone is looked up once per page, not once per date; each user and unit the log
names is rendered once per page (a page's rows nearly all share them).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

from django.utils import timezone

from conax.api.crmparams import REQUEST_FIELDS, parameters_set
from conax.selectors import RequestPage

DATE = "%Y-%m-%dT%H:%M:%S"
Row = dict[str, Any]
Dater = Callable[[datetime | None], str | None]


def _person(row: Row) -> dict:
    first, last, username = row["first_name"], row["last_name"], row["username"]
    return {
        "person_name": f"{first} {last}".strip() or username,  # User.get_full_name() or the username
        "username": username,
        "id": str(row["id"]),
        "email": row["email"] or None,
    }


def _unit(row: Row) -> dict:
    return {
        "community_name": row["community_name"] or None,
        "group_name": row["group_name"] or None,
        "name": row["name"],
        "id": row["id"],
        "description": row["description"] or None,
        "alternative_code": row["alternative_code"],
    }


def _logger(page: RequestPage, date: Dater) -> Callable[[Row], dict]:
    """The renderer of a row's ``log_information``, with the page's users and units rendered once."""
    people = {pk: _person(row) for pk, row in page.users.items()}
    units = {pk: _unit(row) for pk, row in page.units.items()}

    def log(row: Row) -> dict:
        entry: dict[str, Any] = {"updated_date": date(row["updated_date"])}
        if row["created_by_unit_id"] in units:
            entry["created_by_unit"] = units[row["created_by_unit_id"]]
        entry["created_date"] = date(row["created_date"])
        if row["updated_by_unit_id"] in units:
            entry["updated_by_unit"] = units[row["updated_by_unit_id"]]
        entry["created_by_user"] = people.get(row["created_by_user_id"])
        entry["updated_by_user"] = people.get(row["updated_by_user_id"])
        return entry

    return log


def _dater(zone: tzinfo) -> Dater:
    def date(value: datetime | None) -> str | None:
        return value.astimezone(zone).strftime(DATE) if value else None  # timezone.localtime, the zone looked up once

    return date


def _renderers(page: RequestPage, date: Dater) -> dict[str, Callable[[Row], Any]]:
    """The wire fields that are not their column's value as it is."""
    return {
        "scheduled_date": lambda row: date(row["scheduled_date"]),
        "number": lambda row: str(row["number"]),
        "process_immediately": lambda row: (
            None if row["process_immediately"] is None else int(row["process_immediately"])
        ),
        "log_information": _logger(page, date),
        "id": lambda row: row["uid"],
        "parameters_set": lambda row: parameters_set(row["parameters_set"]),
        "executed_date": lambda row: date(row["executed_date"]),
    }


def list_data(page: RequestPage, names: tuple[str, ...] = REQUEST_FIELDS) -> list[dict]:
    """Each row as ``request_data`` renders its request, with the fields ``names`` in their order."""
    renderers = _renderers(page, _dater(timezone.get_current_timezone()))
    fields = [(name, renderers.get(name)) for name in names]
    return [{name: render(row) if render else row[name] for name, render in fields} for row in page.rows]
