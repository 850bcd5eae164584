"""Bulk upsert of smartcards and subscriptions (conax.services.*_upsert) and its staff API endpoints."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType

from conax import services
from conax.importing import rows_from_list
from conax.models import Smartcard, Subscription
from tests.conax.factories import ServiceFactory, SmartcardFactory, SubscriptionFactory
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
CARDS = "/api/v1/conax/smartcards/import/"
SUBS = "/api/v1/conax/subscriptions/import/"


def cards() -> list[tuple]:
    return list(
        Smartcard.objects.order_by("serial_number").values_list("serial_number", "ca_id", "subscription__number")
    )


def test_cards_are_created_then_changed_then_left_alone(staff_api):
    SubscriptionFactory(number="S-1")
    rows = [{"serial_number": f"SC-{n}", "ca_id": f"CA-{n}", "subscription": "S-1"} for n in range(3)]

    first = staff_api.post(CARDS, {"rows": rows}, format="json").json()
    rows[0]["ca_id"] = "CA-NEW"
    second = staff_api.post(CARDS, {"rows": rows}, format="json").json()
    third = staff_api.post(CARDS, {"rows": rows}, format="json").json()

    assert first == {"created": 3, "updated": 0, "unchanged": 0, "invalid": [], "dry_run": False}
    assert (second["created"], second["updated"], second["unchanged"]) == (0, 1, 2)
    assert (third["created"], third["updated"], third["unchanged"]) == (0, 0, 3)
    assert cards() == [("SC-0", "CA-NEW", "S-1"), ("SC-1", "CA-1", "S-1"), ("SC-2", "CA-2", "S-1")]


def test_csv_names_its_columns_and_an_absent_column_is_left_alone(staff_api):
    SmartcardFactory(serial_number="SC-1", ca_id="CA-1", subscription__number="S-1")

    response = staff_api.post(CARDS, {"csv": "ca_id,serial_number\nCA-9,SC-1\nCA-2,SC-2\n"}, format="json")

    assert response.json()["created"] == 1 and response.json()["updated"] == 1
    assert cards() == [("SC-1", "CA-9", "S-1"), ("SC-2", "CA-2", None)]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        pytest.param(
            {"serial_number": "SC-X", "ca_id": "HELD"}, "ca_id HELD is held by smartcard SC-HOLDER", id="held"
        ),
        pytest.param(
            {"serial_number": "SC-X", "ca_id": "C", "subscription": "S-?"}, "no subscription with number S-?", id="sub"
        ),
        pytest.param({"serial_number": "SC-X"}, "ca_id is missing", id="missing"),
        pytest.param({"serial_number": " SC-X", "ca_id": "C"}, "serial_number must be a non-empty string", id="space"),
        pytest.param({"serial_number": "SC-X", "ca_id": "C", "pin": "1234"}, "unknown field pin", id="unknown"),
        pytest.param({"serial_number": "SC-X", "ca_id": 5}, "ca_id must be a non-empty string", id="number"),
        pytest.param("text", "a row must be an object", id="not-object"),
    ],
)
def test_bad_rows_are_reported_with_their_line_and_the_others_written(staff_api, row, reason):
    SmartcardFactory(serial_number="SC-HOLDER", ca_id="HELD")
    rows = [{"serial_number": "SC-OK", "ca_id": "CA-OK"}, row]

    result = staff_api.post(CARDS, {"rows": rows}, format="json").json()

    [invalid] = result["invalid"]
    assert invalid["line"] == 2 and invalid["reason"].startswith(reason)
    assert result["created"] == 1
    assert [sn for sn, _, _ in cards()] == ["SC-HOLDER", "SC-OK"]


def test_a_repeated_serial_or_ca_id_names_the_first_line():
    rows = [
        {"serial_number": "A", "ca_id": "1"},
        {"serial_number": "A", "ca_id": "2"},
        {"serial_number": "B", "ca_id": "1"},
    ]

    result = services.smartcards_upsert(rows=rows_from_list(rows))

    assert [(line, reason) for line, _, reason in result.invalid] == [(2, "repeats line 1"), (3, "repeats line 1")]
    assert cards() == [("A", "1", None)]


@pytest.mark.parametrize(
    "body",
    [{}, {"rows": [], "csv": "serial_number,ca_id"}, {"rows": {"a": 1}}, {"csv": "pin,serial_number\n1,2"}],
    ids=["none", "both", "not-list", "bad-header"],
)
def test_bad_sources_are_400_and_write_nothing(staff_api, body):
    response = staff_api.post(CARDS, body, format="json")

    assert response.status_code == 400
    assert not Smartcard.objects.exists()


def test_dry_run_counts_without_writing(staff_api):
    result = staff_api.post(CARDS, {"rows": [{"serial_number": "A", "ca_id": "1"}], "dry_run": True}, format="json")

    assert result.json()["created"] == 1 and result.json()["dry_run"] is True
    assert not Smartcard.objects.exists()


def test_each_card_written_is_audited_with_the_token_user(staff_api, staff_user):
    staff_api.post(CARDS, {"rows": [{"serial_number": "A", "ca_id": "1"}]}, format="json")
    staff_api.post(CARDS, {"rows": [{"serial_number": "A", "ca_id": "2"}]}, format="json")

    entries = LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(Smartcard)).order_by("pk")
    assert [(e.action, e.actor, e.object_repr) for e in entries] == [
        (LogEntry.Action.CREATE, staff_user, "A (1)"),
        (LogEntry.Action.UPDATE, staff_user, "A (2)"),
    ]
    assert entries[1].changes_dict == {"ca_id": ["1", "2"]}


def test_queries_grow_with_batches_not_rows(django_assert_max_num_queries, monkeypatch):
    monkeypatch.setattr(services, "UPSERT_BATCH", 500)
    SubscriptionFactory(number="S-1")
    rows = [{"serial_number": f"SC-{n:05d}", "ca_id": f"CA-{n}", "subscription": "S-1"} for n in range(2000)]

    with django_assert_max_num_queries(4 * 12):  # per batch: savepoints, lock, holders, subscriptions, writes, audit
        result = services.smartcards_upsert(rows=rows_from_list(rows))
    with django_assert_max_num_queries(4 * 6):  # nothing to write: the reads only
        again = services.smartcards_upsert(rows=rows_from_list(rows))

    assert (result.created, again.unchanged) == (2000, 2000)


def test_subscriptions_get_customers_and_exactly_the_services_named(staff_api):
    a, _b, c = (ServiceFactory(code=code) for code in "ABC")
    CustomerFactory(username="dora")
    SubscriptionFactory(number="S-1", services=[a, c])
    rows = [{"number": "S-1", "services": ["A", "B"]}, {"number": "S-2", "customer": "dora", "services": ["C"]}]

    first = staff_api.post(SUBS, {"rows": rows}, format="json").json()
    again = staff_api.post(SUBS, {"rows": rows}, format="json").json()

    assert (first["created"], first["updated"], first["invalid"]) == (1, 1, [])
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 2)
    got = {
        s.number: (s.customer and s.customer.username, sorted(x.code for x in s.services.all()))
        for s in Subscription.objects.all()
    }
    assert got == {"S-1": (None, ["A", "B"]), "S-2": ("dora", ["C"])}


def test_subscription_csv_and_bad_rows(staff_api):
    ServiceFactory(code="A")

    result = staff_api.post(SUBS, {"csv": "number,services,customer\nS-1,A,\nS-2,A Z,\nS-3,,nobody\n"}, format="json")

    assert result.json()["created"] == 1
    assert [(r["line"], r["reason"]) for r in result.json()["invalid"]] == [
        (3, "no service with code Z"),
        (4, "no user nobody"),
    ]
    assert list(Subscription.objects.values_list("number", flat=True)) == ["S-1"]
