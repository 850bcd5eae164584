"""portal/migration_safety.py: the SQL Django's PostgreSQL schema editor writes for an operation on a big table is
flagged when it would rewrite or long-lock the table, or break the old version still serving; the tree's own
migrations pass."""

from __future__ import annotations

import pytest
from django.contrib.postgres.functions import RandomUUID
from django.db import connection, models
from django.db.migrations import operations as ops
from django.db.migrations.loader import MigrationLoader
from django.db.models.functions import Now

from portal.migration_safety import findings_in, unsafe_migrations

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def sql_of(*operations, app: str = "devices") -> list[str]:
    """The statements PostgreSQL would run for ``operations`` on the current project state (as sqlmigrate)."""
    state = MigrationLoader(connection).project_state()
    with connection.schema_editor(collect_sql=True, atomic=False) as editor:
        for operation in operations:
            new = state.clone()
            operation.state_forwards(app, new)
            operation.database_forwards(app, editor, state, new)
            state = new
    return editor.collected_sql


def whys(*operations, app: str = "devices") -> list[str]:
    return [finding.why for finding in findings_in("test", sql_of(*operations, app=app))]


def test_the_trees_migrations_are_safe_while_the_old_version_serves():
    assert [str(finding) for finding in unsafe_migrations()] == []


@pytest.mark.parametrize(
    ("operation", "why"),
    [
        (
            ops.AlterField("device", "serial_number", models.TextField()),
            "changes a column's type: rewrites the table",
        ),
        (
            ops.AddIndex("device", models.Index(fields=["created_at"], name="device_created_idx")),
            "builds an index without CONCURRENTLY: writes wait for the whole build",
        ),
        (
            ops.AddField("activationattempt", "uid", models.UUIDField(db_default=RandomUUID())),
            "adds a column with a per-row default: rewrites the table",
        ),
        (
            ops.AddConstraint(
                "device", models.CheckConstraint(condition=models.Q(serial_number__gt=""), name="serial_set")
            ),
            "adds a constraint without NOT VALID: validates the table under a lock",
        ),
        (ops.RemoveField("device", "created_at"), "drops or renames a column the old version still reads"),
        (ops.RenameField("vendor", "name", "title"), "drops or renames a column the old version still reads"),
    ],
    ids=["type-change", "index", "volatile-default", "check-constraint", "drop-column", "rename-column"],
)
def test_an_operation_that_locks_or_breaks_is_flagged(operation, why):
    assert why in whys(operation)


@pytest.mark.parametrize(
    "operation",
    [
        ops.AddField("device", "label", models.CharField(max_length=20, blank=True, default="")),  # constant default
        ops.AddField("device", "label2", models.CharField(max_length=20, null=True)),
        ops.AddField("activationattempt", "seen", models.DateTimeField(db_default=Now())),  # stable: stored once
        ops.AddIndex("vendor", models.Index(fields=["created_at"], name="vendor_created_idx")),  # a small table
    ],
    ids=["constant-default", "nullable", "concurrent-index", "small-table-index"],
)
def test_what_is_quick_on_a_big_table_passes(operation):
    assert whys(operation) == []


def test_a_concurrent_index_passes():
    statement = 'CREATE INDEX CONCURRENTLY "device_created_idx" ON "devices_device" ("created_at");'

    assert findings_in("test", [statement]) == []
    assert findings_in("test", [statement.replace(" CONCURRENTLY", "")]) != []


def test_a_table_the_migration_creates_is_not_a_big_table_yet():
    create = ops.CreateModel("Scratch", [("id", models.BigAutoField(primary_key=True)), ("x", models.IntegerField())])
    index = ops.AddIndex("scratch", models.Index(fields=["x"], name="scratch_x_idx"))

    assert whys(create, index) == []
