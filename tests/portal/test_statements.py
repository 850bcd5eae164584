"""SQL written once (portal.kernel.db.statements): what a statement reads is what the ORM reads, on SQLite and on
PostgreSQL, whose timestamps it reads through psycopg's C loader."""

from __future__ import annotations

from datetime import UTC, timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone
from psycopg.postgres import types

from portal.kernel import services
from portal.kernel.choices import TokenPurpose
from portal.kernel.db import statements
from portal.kernel.models import ApiToken
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
EVERY_TOKEN = "SELECT {columns} FROM {table} t"


def _token() -> ApiToken:
    issued = services.token_issue(
        user=UserFactory(), purpose=TokenPurpose.CRM, idle_ttl=90, metadata={"unit": None, "n": [1, 2.5]}
    )
    ApiToken.objects.filter(pk=issued.token.pk).update(revoked_at=timezone.now() - timedelta(microseconds=7))
    return ApiToken.objects.get(pk=issued.token.pk)


def test_a_row_read_by_a_statement_holds_the_values_and_types_the_orm_gives():
    stored = _token()
    read = statements.columns(ApiToken, alias="t")

    (row,) = statements.fetch(EVERY_TOKEN.format(columns=read.sql, table=statements.table(ApiToken)), [])

    values = read.as_dict(row)
    expected = {field.attname: getattr(stored, field.attname) for field in ApiToken._meta.concrete_fields}
    assert values == expected
    assert [type(value) for value in values.values()] == [type(value) for value in expected.values()]
    assert values["revoked_at"].tzinfo is UTC and values["idle_timeout"] == timedelta(seconds=90)


def test_an_instance_built_from_a_statement_is_a_saved_instance():
    stored = _token()
    read = statements.columns(ApiToken, alias="t")

    (row,) = statements.fetch(EVERY_TOKEN.format(columns=read.sql, table=statements.table(ApiToken)), [])
    token = read.instance(row)

    assert token == stored and token.metadata == stored.metadata and token.metadata["n"] == [1, 2.5]
    assert not token._state.adding and token._state.db == stored._state.db


@pytest.mark.skipif(connection.vendor != "postgresql", reason="psycopg's loaders")
@pytest.mark.skipif(psycopg.pq.__impl__ == "python", reason="psycopg without its C implementation")
def test_on_postgresql_a_statement_reads_timestamps_with_psycopgs_c_loader():
    oid = types["timestamptz"].oid
    with connection.cursor() as cursor:
        django_loader = cursor.cursor.adapters.get_loader(oid, psycopg.pq.Format.TEXT)
        statements._fast_timestamps(cursor.cursor)
        loader = cursor.cursor.adapters.get_loader(oid, psycopg.pq.Format.TEXT)

    assert loader is psycopg.adapters.get_loader(oid, psycopg.pq.Format.TEXT)
    assert loader.__module__.startswith("psycopg_binary") or loader.__module__.startswith("psycopg_c")
    assert django_loader.__module__.startswith("django")
