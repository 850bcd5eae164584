"""Staff REST API for the inventory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from devices import services
from devices.choices import ActivationState
from devices.models import ActivationAttempt, Device
from portal.kernel import services as portal_services
from portal.kernel.choices import TokenPurpose
from tests.factories import CustomerFactory, DeviceFactory, DeviceModelFactory

pytestmark = pytest.mark.django_db
DEVICES = "/api/v1/devices/"


def snapshot():
    return list(Device.objects.order_by("pk").values())


# --- permissions ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [DEVICES, "/api/v1/vendors/", "/api/v1/device-models/", "/api/v1/activation-attempts/"])
def test_anonymous_gets_401_and_customers_get_403(api_client, customer_user, url):
    DeviceFactory()

    assert api_client.get(url).status_code == 401
    token = portal_services.token_issue(user=customer_user, purpose=TokenPurpose.STAFF_API).raw
    response = api_client.get(url, HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 403
    assert "results" not in response.json()


def test_customer_cannot_act_on_devices(api_client, customer_user):
    device = DeviceFactory()
    token = portal_services.token_issue(user=customer_user, purpose=TokenPurpose.STAFF_API).raw

    response = api_client.post(f"{DEVICES}{device.pk}/enable/", HTTP_AUTHORIZATION=f"Token {token}")

    assert response.status_code == 403
    assert Device.objects.get(pk=device.pk).state == ActivationState.NOT_ADDED


def test_session_of_a_staff_user_works_too(api_client, staff_user):
    api_client.force_login(staff_user)

    assert api_client.get(DEVICES).status_code == 200


# --- lists, filters, query counts ----------------------------------------------------------------------------------


def test_device_list_shows_effective_state_and_never_the_cik(staff_api):
    device = services.device_enable(device=DeviceFactory(serial_number="SN-1"))
    cik = services.device_activate(
        vendor=device.model.vendor.name, model=device.model.name, serial="SN-1", remote_addr=None, user_agent=""
    )

    response = staff_api.get(DEVICES)
    [row] = response.json()["results"]

    assert row["serial_number"] == "SN-1"
    assert row["state"] == "activated"
    assert row["has_active_cik"] is True
    assert {key for key in row if "cik" in key} == {
        "has_active_cik",
        "cik_first_used_at",
        "cik_stranded",
        "cik_unused_for",
    }
    body = response.content.decode()
    assert cik not in body and services.cik_digest(cik) not in body


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("state=notactivated", ["B-1"], id="state"),
        pytest.param("state=notadded", ["A-1", "A-2"], id="state-notadded"),
        pytest.param("vendor=globex", ["B-1"], id="vendor"),
        pytest.param("model=m-a", ["A-1", "A-2"], id="model"),
        pytest.param("owner=carol", ["A-2"], id="owner"),
        pytest.param("has_owner=false", ["A-1", "B-1"], id="no-owner"),
        pytest.param("q=-2", ["A-2"], id="q"),
    ],
)
def test_device_filters(staff_api, query, expected):
    model_a = DeviceModelFactory(name="m-a", vendor__name="acme")
    model_b = DeviceModelFactory(name="m-b", vendor__name="globex")
    DeviceFactory(model=model_a, serial_number="A-1")
    DeviceFactory(model=model_a, serial_number="A-2", owner=CustomerFactory(username="carol"))
    services.device_enable(device=DeviceFactory(model=model_b, serial_number="B-1"))

    response = staff_api.get(f"{DEVICES}?{query}")

    assert [row["serial_number"] for row in response.json()["results"]] == expected


def test_invalid_filter_value_is_400(staff_api):
    assert staff_api.get(f"{DEVICES}?state=bogus").status_code == 400


# --- stranded CIKs -------------------------------------------------------------------------------------------------


@pytest.fixture
def fleet():
    """At START: USED-1 activated and called in; NEW-1 activated 10 min ago, OLD-1 two hours ago, neither used;
    PENDING-1 enabled only."""
    start = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    model = DeviceModelFactory(name="m", vendor__name="acme")
    devices = {
        sn: services.device_enable(device=DeviceFactory(model=model, serial_number=sn))
        for sn in ("USED-1", "NEW-1", "OLD-1", "PENDING-1")
    }

    def activate(sn: str, at: datetime) -> str:
        with time_machine.travel(at, tick=False):
            return services.device_activate(vendor="acme", model="m", serial=sn, remote_addr=None, user_agent="")

    cik = activate("USED-1", start - timedelta(hours=3))
    with time_machine.travel(start - timedelta(hours=3) + timedelta(seconds=30), tick=False):
        services.device_from_cik(cik=cik)
    activate("OLD-1", start - timedelta(hours=2))
    activate("NEW-1", start - timedelta(minutes=10))
    with time_machine.travel(start, tick=False):
        yield devices


def test_device_shows_whether_its_cik_was_used_and_for_how_long_not(staff_api, fleet):
    rows = {row["serial_number"]: row for row in staff_api.get(DEVICES).json()["results"]}

    shown = {sn: (row["cik_stranded"], row["cik_unused_for"]) for sn, row in rows.items()}
    assert shown == {"USED-1": (False, None), "NEW-1": (True, 600), "OLD-1": (True, 7200), "PENDING-1": (False, None)}
    assert rows["USED-1"]["cik_first_used_at"] == "2026-11-24T05:00:30Z"
    assert rows["OLD-1"]["cik_first_used_at"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("stranded=true", ["NEW-1", "OLD-1"], id="stranded"),
        pytest.param("stranded=false", ["PENDING-1", "USED-1"], id="not-stranded"),
        pytest.param("stranded_for=3600", ["OLD-1"], id="over-an-hour"),
        pytest.param("stranded_for=600", ["NEW-1", "OLD-1"], id="at-least-ten-minutes"),
        pytest.param("stranded_for=601", ["OLD-1"], id="over-ten-minutes"),
        pytest.param("stranded=true&state=activated&vendor=acme", ["NEW-1", "OLD-1"], id="with-other-filters"),
    ],
)
def test_stranded_filters(staff_api, fleet, query, expected):
    response = staff_api.get(f"{DEVICES}?{query}")

    assert response.status_code == 200
    assert sorted(row["serial_number"] for row in response.json()["results"]) == expected


@pytest.mark.parametrize("value", ["-1", "soon", "1.5", str(10**30), "9223372036854775808", str(10 * 366 * 86400 + 1)])
def test_bad_stranded_for_is_400_in_the_api_format(staff_api, fleet, value):
    response = staff_api.get(f"{DEVICES}?stranded_for={value}")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "stranded_for" in response.json()


@pytest.mark.parametrize("url", [DEVICES, "/api/v1/vendors/", "/api/v1/device-models/", "/api/v1/activation-attempts/"])
def test_list_query_count_does_not_grow_with_page_size(staff_api, django_assert_num_queries, url):
    for _ in range(30):
        device = DeviceFactory(model=DeviceModelFactory(), owner=CustomerFactory())
        ActivationAttempt.objects.create(device=device, serial_number=device.serial_number, outcome="not_enabled")
    with django_assert_num_queries(3) as small:  # token (its user, support group), count, page
        assert len(staff_api.get(f"{url}?limit=2").json()["results"]) == 2
    with django_assert_num_queries(len(small.captured_queries)):
        assert len(staff_api.get(f"{url}?limit=30").json()["results"]) == 30


# --- actions -------------------------------------------------------------------------------------------------------


def test_enable_reenable_disable(staff_api):
    device = DeviceFactory()

    enabled = staff_api.post(f"{DEVICES}{device.pk}/enable/", {"window": 3600}, format="json")
    disabled = staff_api.post(f"{DEVICES}{device.pk}/disable/")
    reenabled = staff_api.post(f"{DEVICES}{device.pk}/reenable/")

    assert (enabled.status_code, enabled.json()["state"]) == (200, "notactivated")
    assert (disabled.status_code, disabled.json()["state"]) == (200, "disabled")
    assert (reenabled.status_code, reenabled.json()["state"]) == (200, "notactivated")


def test_illegal_move_is_409_with_the_error_code_and_changes_nothing(staff_api):
    device = DeviceFactory()
    before = snapshot()

    response = staff_api.post(f"{DEVICES}{device.pk}/disable/")

    assert response.status_code == 409
    assert response.json() == {"code": "ILLEGAL_TRANSITION", "detail": "cannot disable a device in state notadded"}
    assert snapshot() == before


@pytest.mark.parametrize("body", [{"window": 10}, {"window": "soon"}, {"window": 10**12}])
def test_bad_window_is_400(staff_api, body):
    device = DeviceFactory()

    response = staff_api.post(f"{DEVICES}{device.pk}/enable/", body, format="json")

    assert response.status_code == 400
    assert Device.objects.get(pk=device.pk).state == ActivationState.NOT_ADDED


def test_unknown_device_is_404(staff_api):
    assert staff_api.post(f"{DEVICES}999999/enable/").status_code == 404


def test_create_and_assign_owner(staff_api):
    model = DeviceModelFactory()
    customer = CustomerFactory()

    created = staff_api.post(DEVICES, {"model_id": model.pk, "serial_number": "NEW-1"}, format="json")
    duplicate = staff_api.post(DEVICES, {"model_id": model.pk, "serial_number": "NEW-1"}, format="json")
    owned = staff_api.patch(f"{DEVICES}{created.json()['id']}/", {"owner_id": customer.pk}, format="json")

    assert (created.status_code, created.json()["state"]) == (201, "notadded")
    assert (duplicate.status_code, duplicate.json()["code"]) == (409, "DEVICE_EXISTS")
    assert (owned.status_code, owned.json()["owner"]) == (200, customer.username)


def test_staff_cannot_own_devices(staff_api, staff_user):
    device = DeviceFactory()

    response = staff_api.patch(f"{DEVICES}{device.pk}/", {"owner_id": staff_user.pk}, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "INVALID_OWNER")
    assert Device.objects.get(pk=device.pk).owner is None


def test_activation_log_per_device(staff_api, client):
    device = services.device_enable(device=DeviceFactory(serial_number="LOG-1"))
    body = f"vendor={device.model.vendor.name}&model={device.model.name}&sn=LOG-1"
    for _ in range(2):
        client.generic("POST", "/provision/activate", body, content_type="application/x-www-form-urlencoded")

    rows = staff_api.get(f"{DEVICES}{device.pk}/log/").json()["results"]

    assert [row["outcome"] for row in rows] == ["already_activated", "activated"]
    assert rows[0]["remote_addr"] == "127.0.0.1"


# --- bulk import ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "serials"),
    [
        pytest.param({"serials": ["L-1", "L-2"]}, ["L-1", "L-2"], id="list"),
        pytest.param({"csv": "sn,extra\nC-1,lot 1\nC-2,\n"}, ["C-1", "C-2"], id="csv"),
        pytest.param({"range": {"start": "R0098", "end": "R0101"}}, ["R0098", "R0099", "R0100", "R0101"], id="range"),
        pytest.param(
            {"range": {"start": "00fe", "end": "0101", "base": 16}}, ["00fe", "00ff", "0100", "0101"], id="hex"
        ),
    ],
)
def test_bulk_import_sources(staff_api, source, serials):
    model = DeviceModelFactory()

    response = staff_api.post(f"{DEVICES}import/", {"model_id": model.pk, **source}, format="json")

    assert response.status_code == 200
    assert response.json() == {"created": len(serials), "existing": 0, "enabled": 0, "invalid": [], "dry_run": False}
    assert sorted(Device.objects.filter(model=model).values_list("serial_number", flat=True)) == serials


def test_bulk_import_is_idempotent_and_reports_invalid_rows(staff_api):
    model = DeviceModelFactory()
    body = {"model_id": model.pk, "serials": ["A", "", "B"], "enable": True}

    first = staff_api.post(f"{DEVICES}import/", body, format="json").json()
    second = staff_api.post(f"{DEVICES}import/", body, format="json").json()

    assert first == {
        "created": 2,
        "existing": 0,
        "enabled": 2,
        "dry_run": False,
        "invalid": [{"line": 2, "value": "", "reason": "empty serial number"}],
    }
    assert (second["created"], second["existing"], second["enabled"]) == (0, 2, 0)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="nothing"),
        pytest.param({"serials": ["A"], "csv": "B"}, id="two-sources"),
        pytest.param({"range": {"start": "A10", "end": "B20"}}, id="range-prefix-differs"),
        pytest.param({"range": {"start": "0020", "end": "0010"}}, id="range-backwards"),
        pytest.param({"range": {"start": "0", "end": "9999999"}}, id="range-length-differs"),
        pytest.param({"range": {"start": "0000000", "end": "9999999"}}, id="range-too-big"),
        pytest.param({"csv": "A,1\nB\x00,2\n"}, id="csv-nul"),
        pytest.param({"serials": "not-a-list"}, id="serials-not-list"),
    ],
)
def test_bad_imports_are_400_and_write_nothing(staff_api, body):
    model = DeviceModelFactory()

    response = staff_api.post(f"{DEVICES}import/", {"model_id": model.pk, **body}, format="json")

    assert response.status_code == 400
    assert Device.objects.count() == 0


def test_dry_run_previews_without_writing(staff_api):
    model = DeviceModelFactory()

    response = staff_api.post(
        f"{DEVICES}import/", {"model_id": model.pk, "serials": ["P-1"], "dry_run": True}, format="json"
    )

    assert response.json()["created"] == 1 and response.json()["dry_run"] is True
    assert Device.objects.count() == 0


# --- vendors and models --------------------------------------------------------------------------------------------


def test_vendor_and_model_create_update(staff_api):
    vendor = staff_api.post("/api/v1/vendors/", {"name": "initech"}, format="json")
    dup = staff_api.post("/api/v1/vendors/", {"name": "initech"}, format="json")
    model = staff_api.post("/api/v1/device-models/", {"vendor_id": vendor.json()["id"], "name": "box"}, format="json")
    renamed = staff_api.put(f"/api/v1/vendors/{vendor.json()['id']}/", {"name": "initrode"}, format="json")

    assert vendor.status_code == 201
    assert dup.status_code == 400
    assert (model.status_code, model.json()["vendor"]) == (201, "initech")
    assert renamed.json()["name"] == "initrode"


def test_staff_api_changes_are_audited_with_the_token_user(staff_api, staff_user):
    from auditlog.models import LogEntry

    device = DeviceFactory()

    staff_api.post(f"{DEVICES}{device.pk}/enable/")

    entry = LogEntry.objects.get_for_object(device).latest("pk")
    assert entry.actor == staff_user
    assert entry.changes_dict["state"] == ["notadded", "notactivated"]


def test_action_routes():
    assert reverse("api-v1:device-enable", args=[1]) == "/api/v1/devices/1/enable/"
    assert reverse("api-v1:device-bulk-import") == "/api/v1/devices/import/"
    assert reverse("api-v1:device-log", args=[1]) == "/api/v1/devices/1/log/"


def test_device_log_query_count_does_not_grow_with_page_size(staff_api, django_assert_num_queries):
    device = DeviceFactory()
    ActivationAttempt.objects.bulk_create(
        [ActivationAttempt(device=device, serial_number=device.serial_number, outcome="not_enabled") for _ in range(30)]
    )
    with django_assert_num_queries(4) as small:  # token (its user, support group), device, count, page
        assert len(staff_api.get(f"{DEVICES}{device.pk}/log/?limit=2").json()["results"]) == 2
    with django_assert_num_queries(len(small.captured_queries)):
        assert len(staff_api.get(f"{DEVICES}{device.pk}/log/?limit=30").json()["results"]) == 30


def test_staff_outside_the_support_group_get_403(api_client):
    from tests.factories import UserFactory

    bare_staff = UserFactory(username="intern", is_staff=True)
    token = portal_services.token_issue(user=bare_staff, purpose=TokenPurpose.STAFF_API).raw
    device = DeviceFactory()

    assert api_client.get(DEVICES, HTTP_AUTHORIZATION=f"Token {token}").status_code == 403
    assert api_client.post(f"{DEVICES}{device.pk}/enable/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 403
    assert Device.objects.get(pk=device.pk).state == ActivationState.NOT_ADDED


def test_bulk_import_leaves_one_audit_entry_naming_who_and_how_many(staff_api, staff_user):
    from auditlog.models import LogEntry

    model = DeviceModelFactory()

    staff_api.post(f"{DEVICES}import/", {"model_id": model.pk, "serials": ["A", "B", ""]}, format="json")

    entry = LogEntry.objects.get_for_object(model).latest("pk")
    assert entry.actor == staff_user
    assert entry.additional_data == {
        "action": "import_serials",
        "created": 2,
        "existing": 0,
        "invalid": 1,
        "enabled": 0,
    }
