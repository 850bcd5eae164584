"""/v1/DeviceProvisioningComponents/ beyond the seed's examples: who sees what, the upsert, all-or-nothing writes,
configuration_version bumps, limits, the token header, and a table of bad inputs that must never give a 500."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from components import selectors
from components.models import DeviceProvisioning, ProvisioningComponent, Sensor
from devices.models import Device
from portal.kernel import services as portal_services
from portal.kernel.choices import TokenPurpose
from tests.components.support import URL, V1, catalog_load, component, snapshot
from tests.factories import CustomerFactory, DeviceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def catalog():
    catalog_load()


@pytest.fixture
def v1(client, staff_user) -> V1:
    return V1.for_user(client, staff_user)


def version(device: Device) -> int:
    return Device.objects.get(pk=device.pk).configuration_version


# --- who sees what -------------------------------------------------------------------------------------------------


def test_a_customer_selects_only_their_own_devices_components(client, customer_user):
    mine, theirs = DeviceFactory(owner=customer_user), DeviceFactory(owner=CustomerFactory())
    own = component(mine, 0, 1).pk
    component(theirs, 0, 1)
    carol = V1.for_user(client, customer_user)

    everything = carol({"action": "select"})

    assert [r["provisioning_component_id"] for r in everything["responses"].values()] == [own]
    assert carol({"action": "select", "provisioning_id": theirs.pk}) == {"error": "NO_DATA"}


def test_staff_select_every_devices_components(v1):
    ids = [component(DeviceFactory(owner=CustomerFactory()), 0, 1).pk, component(DeviceFactory(), 1, 2).pk]

    body = v1({"action": "select"})

    assert [r["provisioning_component_id"] for r in body["responses"].values()] == ids


def test_a_customer_cannot_write_another_customers_device(client, customer_user):
    theirs = DeviceFactory(owner=CustomerFactory())
    row = component(theirs, 0, 1)
    carol = V1.for_user(client, customer_user)
    before = snapshot()

    insert = carol({"action": "insert", "provisioning_id": theirs.pk, "component_type": 0, "component_id": 2})
    by_id = carol({"action": "update", "provisioning_component_id": [row.pk], "active_status": 1})
    by_triple = carol(
        {"action": "update", "provisioning_id": theirs.pk, "component_type": 0, "component_id": 1, "active_status": 1}
    )

    assert insert == by_triple == {"error": "INVALID_PROVISIONING_ID_PRAM"}
    assert by_id == {"error": "INVALID_COMPONENT_ID_PRAM", "error_detail": f"INVALID_IDS_{row.pk}"}
    assert snapshot() == before


def test_a_customer_provisions_their_own_device_and_the_record_is_created_on_first_use(client, customer_user):
    mine = DeviceFactory(owner=customer_user, serial_number="NODE-7")
    carol = V1.for_user(client, customer_user)

    body = carol({"action": "insert", "provisioning_id": mine.pk, "component_type": "sensor", "component_id": 4})

    assert body["error"] == "NO_ERROR" and body["last_modified_by"] == customer_user.pk
    record = DeviceProvisioning.objects.get(pk=mine.pk)
    assert (record.name, record.is_active) == ("NODE-7", True)
    assert list(record.components.values_list("component_type", "component_id", "active_status")) == [(0, 4, 0)]


# --- writes --------------------------------------------------------------------------------------------------------


def test_insert_of_existing_rows_updates_them_and_bumps_the_version_once(v1, staff_user):
    device = DeviceFactory()
    kept = component(device, 0, 1, status=0)

    body = v1(
        {
            "action": "insert",
            "provisioning_id": device.pk,
            "component_type": 0,
            "component_id": [1, 2, 3],
            "active_status": 1,
        }
    )

    assert body["error"] == "NO_ERROR"
    rows = ProvisioningComponent.objects.filter(provisioning_id=device.pk).order_by("component_id")
    assert list(rows.values_list("pk", "component_id", "active_status", "last_modified_by")) == [
        (kept.pk, 1, 1, staff_user.pk),
        (rows[1].pk, 2, 1, staff_user.pk),
        (rows[2].pk, 3, 1, staff_user.pk),
    ]
    assert version(device) == 1


def test_repeated_ids_are_written_once(v1):
    device = DeviceFactory()

    body = v1({"action": "insert", "provisioning_id": device.pk, "component_type": 0, "component_id": [2, 2, 1, 2]})

    assert body["component_id"] == [2, 1]
    assert ProvisioningComponent.objects.count() == 2


def test_every_successful_write_bumps_its_device_once_and_no_other(v1):
    device, other = DeviceFactory(), DeviceFactory()
    rows = [component(device, 0, n).pk for n in (1, 2, 3)]
    component(other, 0, 1)

    v1({"action": "update", "provisioning_component_id": rows, "active_status": 1})
    v1(
        {
            "action": "update",
            "provisioning_id": device.pk,
            "component_type": 0,
            "component_id": [1, 2],
            "active_status": 0,
        }
    )
    v1({"action": "select", "provisioning_id": device.pk})

    assert (version(device), version(other)) == (2, 0)


def test_an_update_naming_one_missing_id_writes_nothing(v1):
    device = DeviceFactory()
    rows = [component(device, 0, n).pk for n in (1, 2, 3)]
    before = snapshot()

    body = v1({"action": "update", "provisioning_component_id": [*rows, rows[-1] + 100], "active_status": 1})

    assert body == {"error": "INVALID_COMPONENT_ID_PRAM", "error_detail": f"INVALID_IDS_{rows[-1] + 100}"}
    assert snapshot() == before


def test_update_by_ids_of_two_provisioning_records_is_refused(v1):
    one, two = DeviceFactory(), DeviceFactory()
    first, second = component(one, 0, 1).pk, component(two, 0, 1).pk
    before = snapshot()

    body = v1({"action": "update", "provisioning_component_id": [first, second], "active_status": 1})

    assert body == {"error": "INVALID_COMPONENT_ID_PRAM", "error_detail": f"INVALID_IDS_{second}"}
    assert snapshot() == before


def test_update_by_ids_echoes_the_ids_and_their_provisioning(v1):
    device = DeviceFactory()
    rows = [component(device, 2, n).pk for n in (1, 2)]

    body = v1({"action": "update", "provisioning_component_id": rows, "active_status": 1})

    assert body == {
        "provisioning_component_id": rows,
        "provisioning_id": device.pk,
        "active_status": 1,
        "error": "NO_ERROR",
    }


def test_ten_thousand_ids_in_one_insert(v1):
    Sensor.objects.bulk_create([Sensor(id=n, name=f"sensor {n}") for n in range(100, 10_100)])
    device = DeviceFactory()

    body = v1(
        {
            "action": "insert",
            "provisioning_id": device.pk,
            "component_type": 0,
            "component_id": list(range(100, 10_100)),
        }
    )

    assert body["error"] == "NO_ERROR" and len(body["component_id"]) == 10_000
    assert ProvisioningComponent.objects.filter(provisioning_id=device.pk).count() == 10_000
    assert version(device) == 1


def test_an_error_detail_names_at_most_a_hundred_ids(v1):
    device = DeviceFactory()

    body = v1(
        {
            "action": "insert",
            "provisioning_id": device.pk,
            "component_type": 0,
            "component_id": list(range(1000, 11_000)),
        }
    )

    assert body["error"] == "INVALID_COMPONENT_SENSOR_ID_PRAM"
    assert body["error_detail"] == "INVALID_IDS_" + ",".join(map(str, range(1000, 1100))) + ",+9900_MORE"
    assert ProvisioningComponent.objects.count() == 0


# --- select --------------------------------------------------------------------------------------------------------


def test_limit_defaults_to_a_thousand_and_can_be_lowered(v1, django_assert_max_num_queries):
    device = DeviceFactory()
    Sensor.objects.bulk_create([Sensor(id=n, name=f"sensor {n}") for n in range(100, 1101)])
    v1({"action": "insert", "provisioning_id": device.pk, "component_type": 0, "component_id": list(range(100, 1101))})

    with django_assert_max_num_queries(3):  # the token, the support-group check, one query with the catalog names
        everything = v1({"action": "select"})
    two = v1({"action": "select", "limit": 2})

    assert len(everything["responses"]) == 1000 and list(everything["responses"])[-1] == "response_999"
    assert everything["responses"]["response_999"]["name"] == "sensor 1099"
    assert [r["component_id"] for r in two["responses"].values()] == [100, 101]
    assert v1({"action": "select", "limit": 0}) == {"error": "NO_DATA"}


def test_select_filters_combine(v1):
    device = DeviceFactory()
    component(device, 0, 1, status=1)
    wanted = component(device, 1, 1, status=1).pk
    component(device, 1, 2, status=0)

    body = v1({"action": "select", "component_type": "PARAMETER", "active_status": 1, "component_id": [1, 2]})

    assert [r["provisioning_component_id"] for r in body["responses"].values()] == [wanted]
    assert body["responses"]["response_0"]["name"] == "Reporting interval"


def test_a_select_answers_the_documented_utc_time_on_sqlite_as_on_postgresql(v1, staff_user, settings):
    # Given a component last modified at 01:30:05.25 Paris time, with the portal's zone not UTC.
    settings.TIME_ZONE = "Europe/Paris"
    row = component(DeviceFactory(), 0, 1)
    moment = datetime(2026, 3, 29, 1, 30, 5, 250000, tzinfo=ZoneInfo("Europe/Paris"))
    ProvisioningComponent.objects.filter(pk=row.pk).update(last_modified_datetime=moment)

    # When it is selected, through the API and through its selector.
    body = v1({"action": "select", "provisioning_component_id": row.pk})
    (selected,) = selectors.component_select(user=staff_user, filters={"provisioning_id": row.provisioning_id}, limit=1)

    # Then the answer is UTC, "YYYY-MM-DD HH:MM:SS" (docs/components.md), and the selector's value is the aware
    # moment, as the ORM reads it (a bare SQLite cursor gives a naive datetime).
    assert body["responses"]["response_0"]["last_modified_datetime"] == "2026-03-29 00:30:05"
    assert selected["last_modified_datetime"].utcoffset() == timedelta(0)
    assert selected["last_modified_datetime"] == moment
    assert selected == ProvisioningComponent.objects.filter(pk=row.pk).values(*selectors.COMPONENT_FIELDS).get() | {
        "name": "Temperature"
    }


# --- the token and the method --------------------------------------------------------------------------------------


def test_the_token_is_read_from_the_token_header_only(client, staff_user, v1):
    component(DeviceFactory(), 0, 1)

    response = client.post(
        URL, json.dumps({"action": "select"}), content_type="application/json", HTTP_AUTHORIZATION=f"Token {v1.token}"
    )

    assert response.json() == {"error": "INVALID_TOKEN"}


@pytest.mark.parametrize("purpose", [TokenPurpose.STAFF_API, TokenPurpose.CRM])
def test_tokens_of_other_dialects_are_refused(v1, staff_user, purpose):
    component(DeviceFactory(), 0, 1)
    raw = portal_services.token_issue(user=staff_user, purpose=purpose).raw

    assert v1.post({"action": "select"}, token=raw).json() == {"error": "INVALID_TOKEN"}


def test_a_released_token_or_an_inactive_user_is_refused(v1, staff_user):
    component(DeviceFactory(), 0, 1)
    assert "responses" in v1({"action": "select"})

    staff_user.is_active = False
    staff_user.save()

    assert v1({"action": "select"}) == {"error": "INVALID_TOKEN"}


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_other_methods_are_refused(client, v1, method):
    response = client.generic(method, URL, "{}", HTTP_TOKEN=v1.token)

    assert (response.status_code, response.json(), response["Allow"]) == (
        405,
        {"error": "INVALID_REQUEST_METHOD"},
        "GET, POST",
    )


# --- bad input of every kind: the documented code, HTTP 200, nothing written ---------------------------------------

BAD = [
    pytest.param(b"not json", "INVALID_REQUEST_PRAM", id="not-json"),
    pytest.param(b"\xff\xfe", "INVALID_REQUEST_PRAM", id="not-utf8"),
    pytest.param(b"", "INVALID_REQUEST_PRAM", id="empty-body"),
    pytest.param(b"[]", "INVALID_REQUEST_PRAM", id="json-array"),
    pytest.param(b'"insert"', "INVALID_REQUEST_PRAM", id="json-string"),
    pytest.param(b"null", "INVALID_REQUEST_PRAM", id="json-null"),
    pytest.param(b"[" * 100_000, "INVALID_REQUEST_PRAM", id="deep-nesting"),
    pytest.param(
        b'{"action": "insert", "provisioning_id": ' + b"9" * 5000 + b"}",
        "INVALID_REQUEST_PRAM",
        id="five-thousand-digits",
    ),
    pytest.param({"action": 1}, "INVALID_ACTION_PRAM", id="action-int"),
    pytest.param({"action": ["insert"]}, "INVALID_ACTION_PRAM", id="action-array"),
    pytest.param(
        {"action": "insert", "provisioning_id": "<p>", "component_type": 0, "component_id": 1, "x": 1},
        "INVALID_INPUT_PRAM",
        id="unknown-key",
    ),
    pytest.param(
        {"action": "insert", "provisioning_id": "1", "component_type": 0, "component_id": 1},
        "INVALID_PROVISIONING_ID_PRAM",
        id="string-for-int",
    ),
    pytest.param(
        {"action": "insert", "provisioning_id": 1.0, "component_type": 0, "component_id": 1},
        "INVALID_PROVISIONING_ID_PRAM",
        id="float",
    ),
    pytest.param(
        {"action": "insert", "provisioning_id": True, "component_type": 0, "component_id": 1},
        "INVALID_PROVISIONING_ID_PRAM",
        id="boolean",
    ),
    pytest.param(
        {"action": "insert", "provisioning_id": "<p>", "component_type": 0, "component_id": -1},
        "INVALID_COMPONENT_ID_PRAM",
        id="negative",
    ),
    pytest.param(
        {"action": "insert", "provisioning_id": 2**63, "component_type": 0, "component_id": 1},
        "INVALID_PROVISIONING_ID_PRAM",
        id="huge",
    ),
    pytest.param(
        {"action": "insert", "provisioning_id": "<p>", "component_type": 0, "component_id": [[1], [2]]},
        "INVALID_COMPONENT_ID_PRAM",
        id="nested-arrays",
    ),
    pytest.param(
        {"action": "insert", "provisioning_id": "<p>", "component_type": 0, "component_id": []},
        "INVALID_COMPONENT_ID_PRAM",
        id="empty-array",
    ),
    pytest.param(
        {"action": "insert", "provisioning_id": "<p>", "component_type": 0, "component_id": list(range(1, 10_002))},
        "INVALID_COMPONENT_ID_PRAM",
        id="10001-ids",
    ),
    pytest.param(
        {"action": "insert", "provisioning_id": "<p>", "component_type": {"0": 0}, "component_id": 1},
        "INVALID_COMPONENT_TYPE_PRAM",
        id="object-for-type",
    ),
    pytest.param(
        {"action": "insert", "provisioning_id": "<p>", "component_type": "S" * 16, "component_id": 1},
        "INVALID_COMPONENT_TYPE_PRAM",
        id="type-name-too-long",
    ),
    pytest.param(
        {"action": "update", "provisioning_component_id": [], "active_status": 1},
        "PROVISIONING_COMPONENT_ID",
        id="update-empty-array",
    ),
    pytest.param(
        {"action": "update", "provisioning_component_id": 1, "active_status": "1"},
        "INVALID_ACTIVE_STATUS_PRAM",
        id="update-string-status",
    ),
    pytest.param({"action": "select", "limit": -1}, "INVALID_LIMIT_PRAM", id="negative-limit"),
    pytest.param({"action": "select", "limit": None}, "INVALID_LIMIT_PRAM", id="null-limit"),
    pytest.param(
        {"action": "insert", "provisioning_id": "<p>", "component_type": 0, "component_id": 2**200},
        "INVALID_COMPONENT_ID_PRAM",
        id="200-bit-id",
    ),
    pytest.param(b'{"action": "select", "limit": 1e400}', "INVALID_LIMIT_PRAM", id="float-overflowing-to-inf"),
    # The sanitising layer (components.api.sanitise): text no column can store is "incorrect JSON format".
    pytest.param(b'{"action": "select", "component_type": "Sen\\u0000sor"}', "INVALID_REQUEST_PRAM", id="nul-in-value"),
    pytest.param(b'{"action": "select", "a\\u0000": 1}', "INVALID_REQUEST_PRAM", id="nul-in-key"),
    pytest.param(b'{"action": "sel\\u0000ect"}', "INVALID_REQUEST_PRAM", id="nul-in-action"),
    pytest.param(b'{"action": "select", "component_type": "\\ud800"}', "INVALID_REQUEST_PRAM", id="lone-surrogate"),
    pytest.param(b'{"action": "select", "\\udfff": 1}', "INVALID_REQUEST_PRAM", id="lone-surrogate-key"),
    pytest.param(b'{"action": "insert", "x": [[["\\u0000"]]]}', "INVALID_REQUEST_PRAM", id="nul-deep-inside"),
]


@pytest.mark.parametrize("token", ["a\x00b", "\x00" * 64])
def test_a_token_header_with_a_nul_is_an_invalid_token(v1, token):
    response = v1.post({"action": "select"}, token=token)

    assert (response.status_code, response.json()) == (200, {"error": "INVALID_TOKEN"})


@pytest.mark.parametrize(("body", "error"), BAD)
def test_bad_input_gets_its_code_and_writes_nothing(v1, body, error):
    device = DeviceFactory()
    component(device, 0, 1)
    if isinstance(body, dict):
        body = json.dumps({k: device.pk if v == "<p>" else v for k, v in body.items()}).encode()
    before = snapshot()

    response = v1.post(body)

    assert response.status_code == 200
    assert response.json()["error"] == error
    assert snapshot() == before
