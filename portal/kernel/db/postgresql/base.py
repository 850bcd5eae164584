"""Django's PostgreSQL backend with a connection breaker.

A database that refuses connections, or accepts TCP and never answers, would make every request wait for the
connect timeout (``DATABASE_CONNECT_TIMEOUT``) before it fails. After a failed connect the breaker stays open for
``DATABASE_RETRY_AFTER`` seconds: new connections fail at once with ``OperationalError`` (each dialect then answers
its "unavailable", ``portal.errors``), and the first connect after that tries the server again. Per process.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base


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


class DatabaseWrapper(base.DatabaseWrapper):
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
