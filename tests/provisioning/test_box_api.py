"""Staff REST API for set-top boxes: registration, status and timeline, commands."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from portal.kernel import services as portal_services
from portal.kernel.choices import TokenPurpose
from provisioning import services
from provisioning.choices import EventSource
from provisioning.models import Command
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def box():
    return services.box_register(device=DeviceFactory(), host="192.0.2.10", port=9998)


def test_register_a_box_and_read_it_back(staff_api):
    device = DeviceFactory()

    put = staff_api.put(f"/api/v1/devices/{device.pk}/box/", {"host": "192.0.2.20", "port": 9998}, format="json")
    got = staff_api.get(f"/api/v1/devices/{device.pk}/box/")

    assert put.status_code == 200 and put.json()["address"] == "192.0.2.20:9998"
    assert got.json()["types"] == [] and got.json()["timeline"] == []


def test_device_without_a_box_is_404_with_a_code(staff_api):
    device = DeviceFactory()

    response = staff_api.post(f"/api/v1/devices/{device.pk}/refresh/")

    assert (response.status_code, response.json()["code"]) == (404, "NO_SET_TOP_BOX")
    assert Command.objects.count() == 0


@pytest.mark.parametrize(
    ("path", "body", "kind", "params"),
    [
        ("reprovision", {"provision_type": "HARDWARE"}, "reprovision", {"provision_type": "HARDWARE"}),
        ("refresh", {}, "refresh", {}),
        ("provision", {}, "provision", {}),
        ("set-index", {"label": "cobalt", "index": 0}, "set_index", {"label": "cobalt", "index": 0}),
    ],
)
def test_each_action_queues_a_command_that_names_who_asked(staff_api, staff_user, box, path, body, kind, params):
    response = staff_api.post(f"/api/v1/devices/{box.device_id}/{path}/", body, format="json")

    assert response.status_code == 202
    command = Command.objects.get()
    assert (command.kind, command.params, command.state, command.requested_by) == (kind, params, "QUEUED", staff_user)
    assert response.json()["id"] == command.pk


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("reprovision", {}),
        ("reprovision", {"provision_type": "SOFTWARE"}),
        ("set-index", {"label": "cobalt", "index": -1}),
        ("set-index", {"label": "cobalt", "index": 2**32}),
        ("set-index", {"label": "", "index": 1}),
        ("set-index", {"label": "cobalt", "index": "one"}),
    ],
)
def test_bad_command_input_is_400_and_queues_nothing(staff_api, box, path, body):
    response = staff_api.post(f"/api/v1/devices/{box.device_id}/{path}/", body, format="json")

    assert response.status_code == 400
    assert Command.objects.count() == 0


def test_timeline_merges_commands_and_events_newest_first(staff_api, box):
    services.command_create(box=box, kind="provision")
    services.event_ingest(box=box, name="provisioningchange", params={"status": 200}, source=EventSource.PUSH)

    timeline = staff_api.get(f"/api/v1/devices/{box.device_id}/box/").json()["timeline"]

    assert [next(k for k in item if k != "at") for item in timeline] == ["command", "event", "command"]
    assert timeline[1]["event"]["status"] == 200


def test_command_list_filters_and_needs_staff(staff_api, box):
    services.command_create(box=box, kind="refresh")
    services.command_create(box=box, kind="provision")

    rows = staff_api.get("/api/v1/commands/?kind=provision").json()["results"]

    assert [row["kind"] for row in rows] == ["provision"]
    assert APIClient().get("/api/v1/commands/").status_code == 401


def test_command_list_query_count_does_not_grow(staff_api, box, django_assert_num_queries):
    for _ in range(20):
        services.command_create(box=services.box_register(device=DeviceFactory(), host="h"), kind="refresh")
    with django_assert_num_queries(3) as small:  # token (its user, support group), count, page
        assert len(staff_api.get("/api/v1/commands/?limit=2").json()["results"]) == 2
    with django_assert_num_queries(len(small.captured_queries)):
        assert len(staff_api.get("/api/v1/commands/?limit=20").json()["results"]) == 20


@pytest.mark.parametrize("path", ["reprovision", "refresh", "provision", "set-index"])
def test_customers_cannot_command_boxes(customer_user, box, path):
    token = portal_services.token_issue(user=customer_user, purpose=TokenPurpose.STAFF_API).raw
    client = APIClient()

    response = client.post(
        f"/api/v1/devices/{box.device_id}/{path}/", {}, format="json", HTTP_AUTHORIZATION=f"Token {token}"
    )

    assert response.status_code == 403
    assert Command.objects.count() == 0
    assert client.get(f"/api/v1/devices/{box.device_id}/box/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 403


def test_moving_a_box_is_audited(staff_api, staff_user, box):
    from auditlog.models import LogEntry

    staff_api.put(f"/api/v1/devices/{box.device_id}/box/", {"host": "192.0.2.99", "port": 9999}, format="json")

    entry = LogEntry.objects.get_for_object(box).latest("pk")
    assert entry.actor == staff_user
    assert entry.changes_dict == {"thunder_host": ["192.0.2.10", "192.0.2.99"], "thunder_port": [9998, 9999]}
