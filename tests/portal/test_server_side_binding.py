"""PostgreSQL with server-side binding and automatic prepared statements (``DATABASE_SERVER_SIDE_BINDING``,
``DATABASE_PREPARE_THRESHOLD``: docs/operations.md#database-connections): each test opens a new connection with the
options on, as a process started with the variables does, so CI covers the setting while the rest of the suite runs
with Django's default (client-side binding). The CRM list answers byte for byte what it answers by default, what a
call repeats is prepared, and the ORM's bulk operations split their statements under the protocol's parameter limit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connections
from django.test import Client
from django.utils import timezone

from conax.models import ProvisioningRequest
from conax.selectors import request_series
from portal.kernel.db.postgresql.base import MAX_PARAMETERS
from tests.conax.factories import ProvisioningRequestFactory
from tests.conax.support import Crm, world_load
from tests.conftest import REPO, clean_env

DATABASE = pytest.mark.django_db(transaction=True)
BINDING = {"server_side_binding": True, "prepare_threshold": 1}  # prepared on its second run on the connection
PAST_THE_LIMIT = MAX_PARAMETERS + 1000
VARIABLES = ("DATABASE_SERVER_SIDE_BINDING", "DATABASE_PREPARE_THRESHOLD")
PRINT_OPTIONS = (
    "import json, django; django.setup(); from django.conf import settings; "
    "print(json.dumps(settings.DATABASES['default']['OPTIONS']))"
)


def _options(tmp_path, **env: str) -> subprocess.CompletedProcess:
    """The database options a process started with ``env`` (on a PostgreSQL URL, never connected to) gets."""
    ambient = {k: v for k, v in clean_env().items() if k not in VARIABLES}  # the suite may run with the binding on
    return subprocess.run(
        [sys.executable, "-c", PRINT_OPTIONS],
        cwd=REPO,
        env=ambient
        | dict(
            PORTAL_VAR_DIR=str(tmp_path),
            DJANGO_SETTINGS_MODULE="portal.settings",
            DATABASE_URL="postgres://portal@db.example.net:5432/portal",
            **env,
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({}, {"connect_timeout": 2}, id="default-off"),
        pytest.param(
            {"DATABASE_SERVER_SIDE_BINDING": "true"},
            {"connect_timeout": 2, "server_side_binding": True, "prepare_threshold": 5},
            id="binding-psycopg-threshold",
        ),
        pytest.param(
            {"DATABASE_SERVER_SIDE_BINDING": "true", "DATABASE_PREPARE_THRESHOLD": "1"},
            {"connect_timeout": 2, "server_side_binding": True, "prepare_threshold": 1},
            id="prepare-on-the-second-run",
        ),
        pytest.param(
            {"DATABASE_SERVER_SIDE_BINDING": "true", "DATABASE_PREPARE_THRESHOLD": "none"},
            {"connect_timeout": 2, "server_side_binding": True, "prepare_threshold": None},
            id="binding-never-prepare",
        ),
    ],
)
def test_the_variables_set_the_psycopg_options(tmp_path, env, expected):
    result = _options(tmp_path, **env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param(
            {"DATABASE_PREPARE_THRESHOLD": "5"},
            "DATABASE_PREPARE_THRESHOLD needs DATABASE_SERVER_SIDE_BINDING=true",
            id="threshold-without-binding",
        ),
        pytest.param(
            {"DATABASE_SERVER_SIDE_BINDING": "true", "DATABASE_PREPARE_THRESHOLD": "0"},
            "DATABASE_PREPARE_THRESHOLD must be a whole number ≥ 1 or none, not '0'",
            id="prepare-at-once-breaks-migrations",
        ),
        pytest.param(
            {"DATABASE_SERVER_SIDE_BINDING": "true", "DATABASE_PREPARE_THRESHOLD": "-1"},
            "DATABASE_PREPARE_THRESHOLD must be a whole number ≥ 1 or none, not '-1'",
            id="negative-threshold",
        ),
    ],
)
def test_a_threshold_that_would_do_nothing_or_is_not_a_count_is_refused(tmp_path, env, message):
    result = _options(tmp_path, **env)

    assert result.returncode != 0
    assert f"ImproperlyConfigured: {message}" in result.stderr


@contextmanager
def connection_with(**options: object) -> Iterator[None]:
    """The default alias as a new connection with these psycopg options (and without the binding's unless given,
    whatever the suite runs with); the usual connection again after it."""
    default = connections["default"]
    if default.vendor != "postgresql":
        pytest.skip("PostgreSQL's server-side binding")
    base = {k: v for k, v in default.settings_dict["OPTIONS"].items() if k not in BINDING}
    connections["default"] = default.__class__({**default.settings_dict, "OPTIONS": {**base, **options}})
    try:
        yield
    finally:
        connections["default"].close()
        connections["default"] = default


@pytest.fixture
def server_side() -> Iterator[None]:
    with connection_with(**BINDING):
        yield


def _list(client: Client) -> bytes:
    crm = Crm.login(client)
    response = client.get(
        "/crmapi/rest/v2/conax_web_services/provisioning_requests/list",
        {"token": crm.token, "type": "ADD_SUBSCRIPTIONS", "number_of_results": 3, "offset": 1},
    )
    assert response.status_code == 200
    return response.content


def _requests() -> None:
    world = world_load()
    now = timezone.now()
    for hours in range(5):
        ProvisioningRequestFactory(
            subscription=world.subscription, executed_date=now - timedelta(hours=hours), life_cycle_state="COMPLETED"
        )


@pytest.mark.postgres
@DATABASE
def test_the_connection_binds_on_the_server_and_prepares_the_statements_a_call_sends(server_side, client, staff_user):
    _requests()

    _list(client)
    _list(client)

    connection = connections["default"]
    assert connection.features.uses_server_side_binding
    assert connection.connection.cursor_factory.__name__ == "ServerBindingCursor"
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("conax_provisioningrequest" in statement and "$1" in statement for statement in prepared)
    assert any("portal_apitoken" in statement for statement in prepared)


@pytest.mark.postgres
@DATABASE
def test_the_crm_list_answers_the_bytes_it_answers_with_client_side_binding(client, staff_user):
    _requests()
    with connection_with():
        assert not connections["default"].features.uses_server_side_binding
        by_default = _list(client)

    with connection_with(**BINDING):
        bound = _list(client)

    assert bound == by_default and by_default.count(b'"number"') == 3


@pytest.mark.postgres
@DATABASE
def test_the_fleet_series_groups_by_its_bucket_with_the_zone_as_a_parameter(server_side):
    """A GROUP BY of an expression with parameters (the time zone of the truncation) is where server-side binding
    is known to break Django (its ticket #34255): the same expression must be recognised in SELECT and GROUP BY."""
    _requests()

    series = request_series(since=timezone.now() - timedelta(days=1), unit="hour")

    assert sum(count for _, _, count in series) == ProvisioningRequest.objects.count() == 5


@pytest.mark.postgres
@DATABASE
def test_bulk_create_in_bulk_and_delete_split_their_statements_under_the_parameter_limit(server_side):
    Group.objects.bulk_create(Group(name=f"bulk-{n}") for n in range(PAST_THE_LIMIT))
    ids = list(Group.objects.filter(name__startswith="bulk-").values_list("pk", flat=True))

    found = Group.objects.in_bulk(ids)
    deleted, _ = Group.objects.filter(pk__in=Group.objects.filter(name__startswith="bulk-").values("pk")).delete()

    assert len(ids) == len(found) == deleted == PAST_THE_LIMIT
    assert not Group.objects.filter(name__startswith="bulk-").exists()
