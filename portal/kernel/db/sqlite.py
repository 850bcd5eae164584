"""SQLite connections batch as far as the SQLite library allows.

Django 5.2 assumes SQLite's old compile-time default of 999 variables a statement (``max_query_params``), so a
``bulk_create``, ``bulk_update`` or ``in_bulk`` of a few hundred rows splits into many statements on the embedded
default where PostgreSQL runs one: the bulk paths' "a few queries per batch" did not hold. Each new connection
reads the library's own limit (``SQLITE_LIMIT_VARIABLE_NUMBER``: 32766 since SQLite 3.32, 250000 in Debian's
build). A signal rather than a backend of our own: tools that recognise SQLite by its engine name (pytest-django's
per-worker test databases) keep working.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper


def use_library_limit(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    if connection.vendor == "sqlite":
        limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        connection.features.max_query_params = max(limit, 999)  # this connection's features, not the class
