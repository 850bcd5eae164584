"""The CRM.COM ``list`` read path (issue 18, the read side at scale): rows rendered from plain values are the bytes
the model renderer gives, fields_set trims and orders, pages partition the list under ties, an offset past the end
is an empty page, the one-filter rule holds, and on PostgreSQL the page is found through the filter's index."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conax import selectors
from conax.api.crm import request_data
from conax.api.crmlist import list_data
from conax.api.crmparams import REQUEST_FIELDS
from conax.models import ProvisioningRequest
from tests.conax.factories import ProvisioningRequestFactory, UnitFactory
from tests.conax.support import ADD, Crm
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db
LOG_RELATIONS = ("created_by_user", "updated_by_user", "created_by_unit", "updated_by_unit")
FIELD_SETS = [
    pytest.param(REQUEST_FIELDS, id="all"),
    pytest.param(("log_information",), id="log-only"),
    pytest.param(("executed_date", "id", "number", "process_immediately"), id="computed"),
    pytest.param(("type", "number", "scheduled_date"), id="reordered"),
]


def _requests() -> list[ProvisioningRequest]:
    """Requests that cover every rendering branch: units present or not, users with and without a full name or
    email, terminal and pending dates, process_immediately null/true/false, JSON parameters."""
    unit = UnitFactory(community_name="", group_name="G", description="", alternative_code=None)
    named = StaffFactory(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    bare = StaffFactory(first_name="", last_name="", email="")
    now = timezone.now().replace(microsecond=123456)
    return [
        ProvisioningRequestFactory(
            created_by_user=named,
            updated_by_user=bare,
            created_by_unit=unit,
            process_immediately=True,
            parameters_set=[{"id": "1", "service_ca_id": "P1"}],
            life_cycle_state="COMPLETED",
            executed_date=now,
            reference_number="REF-1",
            response="OK",
        ),
        ProvisioningRequestFactory(updated_by_unit=unit, process_immediately=False, sequence_number=3),
        ProvisioningRequestFactory(created_by_user=bare, process_immediately=None, name="n", process_name="MANUAL"),
        ProvisioningRequestFactory(
            life_cycle_state="REJECTED", executed_date=now + timedelta(hours=7), error_code="E", provider_error_code="P"
        ),
    ]


@pytest.mark.parametrize("names", FIELD_SETS)
@pytest.mark.parametrize("zone", ["UTC", "Europe/Nicosia"])
def test_rows_render_to_the_bytes_the_model_renderer_gives(names, zone, settings):
    settings.TIME_ZONE = zone
    requests = _requests()
    instances = ProvisioningRequest.objects.select_related(*LOG_RELATIONS).order_by("number")

    page = selectors.request_page(filters={"type": "ADD_SUBSCRIPTIONS"}, offset=0, count=50, fields=names)

    assert json.dumps(list_data(page, names)) == json.dumps([request_data(r, names) for r in instances])
    assert len(page.rows) == len(requests)


def test_fields_set_trims_the_list_to_those_fields_in_that_order(crm):
    crm.post("add_subscriptions", ADD)

    answer = crm.get("list", type="ADD_SUBSCRIPTIONS", fields_set="type,number , life_cycle_state,type")

    assert [list(row) for row in answer["data"]] == [["type", "number", "life_cycle_state"]]
    assert answer["data"][0]["type"] == "ADD_SUBSCRIPTIONS"


def test_an_offset_past_the_end_is_an_empty_page(crm):
    for _ in range(3):
        crm.post("add_subscriptions", ADD)

    answer = crm.get("list", type="ADD_SUBSCRIPTIONS", offset=3)
    far = crm.get("list", type="ADD_SUBSCRIPTIONS", offset=10**9)

    assert answer == far == {"status": {"message": None, "description": None, "code": "OK"}, "data": []}


def test_pages_partition_the_list_in_number_order_even_when_every_date_ties():
    at = timezone.now()
    made = [ProvisioningRequestFactory(scheduled_date=at, created_date=at).number for _ in range(7)]
    ProvisioningRequestFactory(type="DISPLAY_FINGERPRINT", scheduled_date=at)

    pages = [
        selectors.request_page(filters={"type": "ADD_SUBSCRIPTIONS"}, offset=offset, count=3, fields=("number",))
        for offset in (0, 3, 6, 9)
    ]

    assert [[row["number"] for row in page.rows] for page in pages] == [made[:3], made[3:6], made[6:], []]


def test_the_list_takes_exactly_one_filter_and_the_selector_combines_them():
    """The wire contract refuses two filters (test_crm_api.test_list_errors); the selector, shared with the pages,
    applies every filter it is given."""
    pending = ProvisioningRequestFactory(type="DISPLAY_FINGERPRINT")
    ProvisioningRequestFactory(type="DISPLAY_FINGERPRINT", life_cycle_state="COMPLETED", executed_date=timezone.now())
    ProvisioningRequestFactory(type="ADD_SUBSCRIPTIONS")

    page = selectors.request_page(
        filters={"type": "DISPLAY_FINGERPRINT", "life_cycle_state": "PENDING"}, offset=0, count=10, fields=("id",)
    )

    assert page.rows == [{"uid": pending.uid}]


def _list_queries(crm: Crm, fields: str) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        answer = crm.get("list", type="ADD_SUBSCRIPTIONS", number_of_results=1000, fields_set=fields)
    assert answer["status"]["code"] == "OK"
    return [query["sql"] for query in queries.captured_queries]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param("number", 2, id="no-log"),  # the token (with its user and their support group), the page
        pytest.param(",".join(REQUEST_FIELDS), 4, id="all"),  # and the log's users, then its units, each by id
    ],
)
def test_a_list_call_runs_the_same_few_queries_for_one_row_and_for_a_thousand(client, world, fields, expected):
    crm = Crm.login(client, unit="Admin Unit")
    crm.post("add_subscriptions", ADD)
    one = _list_queries(crm, fields)
    units, people = UnitFactory.create_batch(3), StaffFactory.create_batch(3)
    for n in range(999):
        ProvisioningRequestFactory(created_by_user=people[n % 3], updated_by_unit=units[n % 3])

    thousand = _list_queries(crm, fields)

    assert len(one) == len(thousand) == expected, thousand
    assert sum("conax_provisioningrequest" in sql for sql in thousand) == 1, thousand


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the plan is PostgreSQL's")
def test_the_page_is_found_through_the_type_index_not_by_walking_the_primary_key(crm):
    """Enough rows, one type rare and at the end of the table, statistics fresh: the plan must read the page's numbers
    from request_type_number (a walk of the primary key filtering by type would read nearly every row)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO conax_provisioningrequest (uid, type, life_cycle_state, priority, scheduled_date,"
            " process_immediately, parameters_set, ca_pin_encrypted, created_date, updated_date, attempts)"
            " SELECT md5('r' || n), CASE WHEN n > 19900 THEN 'DISPLAY_FINGERPRINT' ELSE 'ADD_SUBSCRIPTIONS' END,"
            " 'PENDING', 'REGULAR', now(), false, '[]', '', now(), now(), 0 FROM generate_series(1, 20000) n"
        )
        cursor.execute("ANALYZE conax_provisioningrequest")
    with CaptureQueriesContext(connection) as queries:
        answer = crm.get("list", type="DISPLAY_FINGERPRINT", number_of_results=50, offset=20, fields_set="number")
    sql = next(q["sql"] for q in queries.captured_queries if "conax_provisioningrequest" in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
        plan = json.dumps(cursor.fetchone()[0])

    assert len(answer["data"]) == 50
    assert '"Index Name": "request_type_number"' in plan
    assert '"Index Name": "conax_provisioningrequest_pkey"' in plan  # the 50 rows by primary key, nothing walked
    assert '"Rows Removed by Filter"' not in plan


def test_a_unit_login_shows_in_the_log_of_the_list(client, world, staff_user):
    crm = Crm.login(client, unit="Admin Unit")
    crm.post("add_subscriptions", ADD)

    log = crm.get("list", type="ADD_SUBSCRIPTIONS", fields_set="log_information")["data"][0]["log_information"]

    request = ProvisioningRequest.objects.select_related(*LOG_RELATIONS).get()
    assert log == request_data(request, ("log_information",))["log_information"]
    assert log["created_by_unit"]["name"] == "Admin Unit" and log["created_by_user"]["username"] == "staff"
