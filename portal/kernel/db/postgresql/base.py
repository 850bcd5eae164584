"""Django's PostgreSQL backend with a connection breaker.

A database that refuses connections, or accepts TCP and never answers, would make every request wait for the
connect timeout (``DATABASE_CONNECT_TIMEOUT``) before it fails. After a failed connect the breaker stays open for
``DATABASE_RETRY_AFTER`` seconds: new connections fail at once with ``OperationalError`` (each dialect then answers
its "unavailable", ``portal.errors``), and the first connect after that tries the server again. Per process.

With server-side binding (``DATABASE_SERVER_SIDE_BINDING``, docs/operations.md#database-connections) a statement can
carry at most 65 535 parameters (the protocol counts them in 16 bits), a limit Django 5.2 does not know of there (its
ticket #36822): the features and operations below tell ``bulk_create``, ``bulk_update``, ``in_bulk`` and the deletion
collector to split their statements under it, as they do on SQLite. Client-side binding has no such limit.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base, features, operations
from django.utils.functional import cached_property

MAX_PARAMETERS = 65_535


class Breaker:
    def __init__(self) -> None:
        self._open_until = 0.0
        self._lock = threading.Lock()

    def check(self) -> None:
        if time.monotonic() < self._open_until:
            raise psycopg.OperationalError("database unavailable: a recent connection attempt failed")

    def trip(self) -> None:
        with self._lock:
            self._open_until = time.monotonic() + settings.DATABASE_RETRY_AFTER

    def reset(self) -> None:
        with self._lock:
            self._open_until = 0.0


BREAKERS: dict[str, Breaker] = {}


class DatabaseFeatures(features.DatabaseFeatures):
    @cached_property
    def max_query_params(self) -> int | None:  # type: ignore[override]
        return MAX_PARAMETERS if self.connection.settings_dict["OPTIONS"].get("server_side_binding") is True else None


class DatabaseOperations(operations.DatabaseOperations):
    def bulk_batch_size(self, fields: list, objs: list) -> int:
        """As SQLite's: as many rows as fit under the parameter limit, when there is one."""
        limit = self.connection.features.max_query_params
        if limit is None or not fields:
            return super().bulk_batch_size(fields, objs)
        return max(1, limit // len(fields))


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
    ops_class = DatabaseOperations

    def get_new_connection(self, conn_params: dict[str, Any]) -> psycopg.Connection[Any]:
        breaker = BREAKERS.setdefault(self.alias, Breaker())
        breaker.check()
        try:
            connection = super().get_new_connection(conn_params)
        except psycopg.OperationalError:
            breaker.trip()
            raise
        breaker.reset()
        return connection
