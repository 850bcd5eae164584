"""A device's admin page carries the staff's own panel of its box (not the customer's words): the Thunder address,
each provision type's state as a badge with the box's kind and reason, the last event with its raw status, the last
command and its outcome. Served alone at ``/admin/devices/<id>/panel/`` for live.js, to support staff only."""

from __future__ import annotations

import pytest
from django.utils import timezone

from provisioning.choices import EventSource
from provisioning.models import BoxEvent, Command
from provisioning.models import SetTopBox as Box
from tests.factories import CustomerFactory, DeviceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def box(staff_user):
    device = DeviceFactory(serial_number="STB-STAFF-1", owner=CustomerFactory(username="carol"))
    box = Box.objects.create(
        device=device, thunder_host="10.0.0.7", thunder_port=9998, api_version=3, last_event_status=599,
        last_event_at=timezone.now(),
    )  # fmt: skip
    box.type_statuses.create(
        provision_type="HARDWARE",
        kind="RT.2",
        state="CORRUPTED",
        reason="RT_CORRUPT_CREDS. Credentials failed the integrity check",
        refreshed_at=timezone.now(),
    )
    BoxEvent.objects.create(box=box, status=200, source=EventSource.SUBSCRIPTION)
    BoxEvent.objects.create(box=box, status=599, source=EventSource.PUSH)
    Command.objects.create(box=box, kind="reprovision", params={"provision_type": "HARDWARE"}, state="QUEUED")
    Command.objects.create(
        box=box,
        kind="reprovision",
        params={"provision_type": "HARDWARE"},
        state="SUCCEEDED",
        requested_by=staff_user,
        result={"types": {"HARDWARE": "IN_PROGRESS"}},
        finished_at=timezone.now(),
    )
    return box


def test_the_staff_panel_shows_the_box_with_its_codes(client, staff_user, box, django_assert_max_num_queries):
    client.force_login(staff_user)

    with django_assert_max_num_queries(12):
        html = client.get(f"/admin/devices/{box.device_id}/panel/").content.decode()

    assert 'data-field="thunder-address"><a href="/admin/provisioning/settopbox/' in html
    assert ">10.0.0.7:9998</a> (API version 3)" in html
    hardware = html[html.index('data-type="HARDWARE"') : html.index("</tr>", html.index('data-type="HARDWARE"'))]
    assert 'class="badge badge-bad" data-state="CORRUPTED">Corrupted<' in hardware
    assert "RT.2" in hardware and "RT_CORRUPT_CREDS. Credentials failed the integrity check" in hardware
    cryptanium = html[html.index('data-type="CRYPTANIUM"') : html.index("</tr>", html.index('data-type="CRYPTANIUM"'))]
    assert ">Not checked yet<" in cryptanium
    assert "Box reported provisioning failed (status 599), pushed by the box" in html
    assert "<code>599</code> <code>provisioningchange</code>" in html
    command = html[html.index('data-field="staff-last-command"') :]
    assert 'data-state="SUCCEEDED">Succeeded<' in command
    assert f"Reprovision HARDWARE requested by {staff_user.username}: Succeeded; the box reports HARDWARE in" in command
    assert "Your set-top box" not in html and "Keys on your box" not in html  # not the customer's words


def test_the_device_admin_page_embeds_the_staff_panel_not_the_customers(client, staff_user, box):
    client.force_login(staff_user)

    html = client.get(f"/admin/devices/device/{box.device_id}/change/").content.decode()

    assert f'data-panel-url="/admin/devices/{box.device_id}/panel/"' in html
    assert 'id="h-staff-box">Set-top box<' in html and "<code>599</code>" in html  # rendered with the page
    assert "pages-device-panel" not in html and f'"/devices/{box.device_id}/panel/"' not in html
    assert "Keys on your box" not in html


def test_a_device_without_a_box_says_so(client, staff_user):
    device = DeviceFactory(serial_number="STB-NOBOX")
    client.force_login(staff_user)

    html = client.get(f"/admin/devices/{device.pk}/panel/").content.decode()

    assert "No set-top box is registered for this device yet" in html


def test_the_staff_panel_is_for_staff_only(client, box):
    client.force_login(box.device.owner)

    answer = client.get(f"/admin/devices/{box.device_id}/panel/")

    assert answer.status_code == 302 and answer["Location"].startswith("/admin/login/")
    assert "599" not in answer.content.decode()


def test_an_unknown_device_is_a_404(client, staff_user):
    client.force_login(staff_user)

    assert client.get("/admin/devices/999999/panel/").status_code == 404
