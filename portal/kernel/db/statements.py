"""Reads in SQL written once, for the few hot paths where building the ORM query took more CPU than the database
took to run it: the token check of every API call, the CRM.COM list (issue 18: half of a list call's CPU was
Django compiling its three queries).

A statement names model tables and columns taken from ``_meta``, quoted (never a value: every value is a parameter),
in SQL that SQLite and PostgreSQL both run. Each column is read through the converters the ORM applies to it, so a
value read here is the value an instance or a ``values()`` row would hold, on SQLite (text datetimes and JSON,
integer booleans and durations) as on PostgreSQL (JSON as text); instances are built by ``Model.from_db`` as the
ORM builds them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from django.db import connection
from django.db.models import Field, Model
from django.db.models.expressions import Col

M = TypeVar("M", bound=Model)
Converter = Callable[[Any, Any, Any], Any]


@dataclass(frozen=True)
class Columns(Generic[M]):
    """Some columns of one model (attribute names ``names``), as a select list under a table alias."""

    model: type[M]
    names: tuple[str, ...]
    sql: str
    converting: tuple[tuple[int, Col, tuple[Converter, ...]], ...]  # (position, column, converters), if any

    def values(self, row: Sequence[Any], start: int = 0) -> list[Any]:
        """This model's values of a result row whose columns from ``start`` on are these, converted."""
        values = list(row[start : start + len(self.names)])
        for index, col, converters in self.converting:
            for convert in converters:
                values[index] = convert(values[index], col, connection)
        return values

    def as_dict(self, row: Sequence[Any], start: int = 0) -> dict[str, Any]:
        return dict(zip(self.names, self.values(row, start), strict=True))

    def instance(self, row: Sequence[Any], start: int = 0) -> M:
        return self.model.from_db(connection.alias, list(self.names), self.values(row, start))


def quote(name: str) -> str:
    return connection.ops.quote_name(name)


def table(model: type[Model]) -> str:
    return quote(model._meta.db_table)


def column(model: type[Model], name: str) -> str:
    """The quoted column of ``model``'s field ``name`` (``pk``: its primary key)."""
    return quote((model._meta.pk if name == "pk" else _field(model, name)).column)


def _field(model: type[Model], name: str) -> Field:
    field = model._meta.get_field(name)
    if not isinstance(field, Field):  # a reverse relation or a generic foreign key has no column
        raise TypeError(f"{model.__name__}.{name} is not a column")
    return field


@functools.cache
def columns(model: type[M], names: tuple[str, ...] | None = None, alias: str | None = None) -> Columns[M]:
    """``names`` (attribute names; all concrete fields, in ``from_db`` order, when None) of ``model``, qualified by
    ``alias`` (the table's name when None)."""
    names = names or tuple(field.attname for field in model._meta.concrete_fields)
    fields = [_field(model, name) for name in names]
    prefix = quote(alias or model._meta.db_table)
    cols = [field.get_col(alias or model._meta.db_table) for field in fields]
    converting = []
    for index, col in enumerate(cols):
        converters = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if converters:
            converting.append((index, col, tuple(_faster(converter) for converter in converters)))
    sql = ", ".join(f"{prefix}.{quote(field.column)}" for field in fields)
    return Columns(model, names, sql, tuple(converting))


def _faster(converter: Converter) -> Converter:
    """On SQLite in UTC, Django's datetime converter is ``_sqlite_utc``'s work done slower; any other one as is.
    Decided once, when the columns are first built, as the converters themselves are."""
    if connection.vendor != "sqlite" or connection.timezone is not UTC:
        return converter
    return _sqlite_utc if converter == getattr(connection.ops, "convert_datetimefield_value", None) else converter


def _sqlite_utc(value: Any, expression: Any, conn: Any) -> Any:
    """SQLite's cursor already gives a naive datetime (Django registers the column type's parser), and Django's
    converter then only makes it aware in the connection's zone, UTC, after looking up the settings and checking
    awareness twice (1.3 µs a value; this 0.75 µs, most of it ``datetime.replace``)."""
    if type(value) is datetime and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return conn.ops.convert_datetimefield_value(value, expression, conn)


def fetch(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        _fast_timestamps(cursor.cursor)
        cursor.execute(sql, params)
        return cursor.fetchall()


@functools.cache
def _c_timestamptz_loader() -> type | None:
    """psycopg's own loader of timestamptz text when it is the C one (psycopg[binary] or [c]), else None."""
    import psycopg
    from psycopg.postgres import types

    loader = psycopg.adapters.get_loader(types["timestamptz"].oid, psycopg.pq.Format.TEXT)
    return loader if loader is not None and psycopg.pq.__impl__ in ("c", "binary") else None


def _fast_timestamps(cursor: Any) -> None:
    """Django reads every timestamptz through a loader of its own written in Python (3 µs a value: a fifth of the
    CRM list's CPU, 200 dates a page), which only pins the datetime's tzinfo to the session's zone. With the session
    in UTC, as Django keeps it under USE_TZ, psycopg's C loader gives the same datetime, tzinfo ``timezone.utc``
    included, six times faster; this cursor reads with that one."""
    if connection.vendor != "postgresql" or connection.timezone is not UTC:
        return
    loader = _c_timestamptz_loader()
    if loader is not None:
        cursor.adapters.register_loader("timestamptz", loader)


def placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)
