"""Django's SQLite backend, batching as far as the SQLite library allows.

Django 5.2 assumes SQLite's old compile-time default of 999 variables a statement (``max_query_params``), so a
``bulk_create``, ``bulk_update`` or ``in_bulk`` of a few hundred rows splits into many statements on the embedded
default where PostgreSQL runs one: the bulk paths' "a few queries per batch" did not hold. The library's own limit
(``SQLITE_LIMIT_VARIABLE_NUMBER``: 32766 since SQLite 3.32, 250000 in Debian's build) is read from the connection.
"""

from __future__ import annotations

import sqlite3

from django.db.backends.sqlite3 import base, features
from django.utils.functional import cached_property


class DatabaseFeatures(features.DatabaseFeatures):
    @cached_property
    def max_query_params(self) -> int:  # type: ignore[override]  # a class attribute in Django's backend
        self.connection.ensure_connection()
        return self.connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
