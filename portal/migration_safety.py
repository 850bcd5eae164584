"""Migrations that are safe to run while the old version serves: a check over the SQL each migration would run
(``sqlmigrate``'s, from Django's own schema editor on PostgreSQL), flagging what rewrites or long-locks a big table,
and what breaks the old code still serving.

Run by ``manage.py check`` (tag ``migrations``: ``portal.E100``) and by tests/portal/test_migration_safety.py.
Migrations up to ``BASELINE`` (those of the first releases, run before anyone served) are not checked. A migration
that does one of these things on purpose, in a maintenance window, says so in ``portal_lock_reviewed = "why"``.

What is flagged, on a table that exists before the migration (a table the migration creates is empty):
- on the big tables (``BIG_TABLES``): a column type change (rewrites the table under an exclusive lock); ``SET NOT
  NULL`` (scans it under an exclusive lock); a constraint added without ``NOT VALID`` (foreign key, check, unique:
  validated under a lock); ``CREATE INDEX`` without ``CONCURRENTLY`` (writes wait for the whole build: use
  ``AddIndexConcurrently`` in a non-atomic migration); a new column whose default is computed per row (a rewrite);
- on any table: dropping or renaming a column or a table (the old version still reads it: drop it a release later).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.checks import Error, register
from django.db import connections
from django.db.migrations.loader import MigrationLoader

BIG_TABLES = frozenset(
    {
        "devices_device",
        "devices_activationattempt",
        "provisioning_command",
        "provisioning_boxevent",
        "conax_provisioningrequest",
        "components_provisioningcomponent",
    }
)
# The last migration of each app that is not checked (everything up to the release that introduced the check).
BASELINE = {
    "devices": "0004_cik_use",
    "provisioning": "0002_labels",
    "conax": "0003_request_type_words",
    "components": "0001_initial",
    "portal": "0004_api_token_name",
}

_TABLE = r'"(?P<table>[^"]+)"'
VOLATILE = "random|gen_random_uuid|uuid_generate_v[14]|clock_timestamp|timeofday|nextval"
RULES: tuple[tuple[str, re.Pattern[str], bool], ...] = (
    # (why, pattern, big tables only)
    ("changes a column's type: rewrites the table", re.compile(rf"ALTER TABLE {_TABLE} .*ALTER COLUMN .* TYPE "), True),
    (
        "sets NOT NULL: scans the table under an exclusive lock",
        re.compile(rf"ALTER TABLE {_TABLE} .*SET NOT NULL"),
        True,
    ),
    (
        "adds a constraint without NOT VALID: validates the table under a lock",
        re.compile(rf"ALTER TABLE {_TABLE} ADD CONSTRAINT (?!.*NOT VALID)"),
        True,
    ),
    (
        "builds an index without CONCURRENTLY: writes wait for the whole build",
        re.compile(rf"CREATE (?:UNIQUE )?INDEX (?!CONCURRENTLY)\S+ ON {_TABLE}"),
        True,
    ),
    (
        "adds a column with a per-row default: rewrites the table",
        # PostgreSQL 11+ stores a constant or stable default (now()) once; a volatile one is computed for every row.
        re.compile(rf"ALTER TABLE {_TABLE} ADD COLUMN .* DEFAULT \(?(?i:{VOLATILE})\("),
        True,
    ),
    (
        "drops or renames a column the old version still reads",
        re.compile(rf"ALTER TABLE {_TABLE} (?:DROP COLUMN|RENAME COLUMN)"),
        False,
    ),
    ("drops a table the old version still reads", re.compile(rf"DROP TABLE {_TABLE}"), False),
    ("renames a table the old version still reads", re.compile(rf"ALTER TABLE {_TABLE} RENAME TO "), False),
)
_CREATED = re.compile(rf"CREATE TABLE {_TABLE}")


@dataclass(frozen=True)
class Finding:
    migration: str
    table: str
    why: str
    statement: str

    def __str__(self) -> str:
        return f"{self.migration}: {self.why} ({self.table}): {self.statement[:160]}"


def findings_in(name: str, statements: Iterable[str]) -> list[Finding]:
    """What the statements of one migration (named ``name``) do that is unsafe while the old version serves."""
    statements = [" ".join(s.split()) for s in statements]
    created = {m["table"] for s in statements if (m := _CREATED.search(s))}
    found = []
    for statement in statements:
        for why, pattern, big_only in RULES:
            match = pattern.search(statement)
            if not match:
                continue
            table = match["table"]
            if table in created or (big_only and table not in BIG_TABLES):
                continue
            found.append(Finding(name, table, why, statement))
            break
    return found


def _after_baseline(app: str, name: str) -> bool:
    baseline = BASELINE.get(app)
    return baseline is None or name > baseline


def unsafe_migrations(using: str = "default") -> list[Finding]:
    """Every finding of every migration after the baseline (the SQL PostgreSQL would run; other databases: none)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return []
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    found: list[Finding] = []
    for (app, name), migration in sorted(loader.disk_migrations.items()):
        if app not in BASELINE or not _after_baseline(app, name) or getattr(migration, "portal_lock_reviewed", ""):
            continue
        node = loader.graph.nodes[(app, name)]
        statements = loader.collect_sql([(node, False)])
        found += findings_in(f"{app}.{name}", statements)
    return found


@register("migrations", deploy=False)
def check_migrations(app_configs: object = None, **kwargs: object) -> list[Error]:
    databases = kwargs.get("databases") or []
    if "default" not in databases:  # only when the check is asked to look at the database (migrate, check --database)
        return []
    return [
        Error(
            str(finding),
            hint="make it safe while the old version serves, or set portal_lock_reviewed (docs/operations.md)",
            id="portal.E100",
        )
        for finding in unsafe_migrations()
    ]
