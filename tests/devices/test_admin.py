"""The device admin: effective-state filter, actions on a selection, CSV import with preview, no CIK shown."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from devices import services
from devices.models import Device
from tests.factories import CustomerFactory, DeviceFactory, DeviceModelFactory, StaffFactory

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:devices_device_changelist")
IMPORT = reverse("admin:devices_device_import")


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_changelist_filters_on_effective_state(staff_client):
    services.device_enable(device=DeviceFactory(serial_number="PENDING-1"))
    late = services.device_enable(device=DeviceFactory(serial_number="LATE-1"))
    Device.objects.filter(pk=late.pk).update(activation_expires_at=late.enabled_at)

    html = staff_client.get(CHANGELIST, {"state": "expired"}).content.decode()

    assert "LATE-1" in html and "PENDING-1" not in html


def test_search_by_serial(staff_client):
    DeviceFactory(serial_number="FIND-ME-42")
    DeviceFactory(serial_number="OTHER-1")

    html = staff_client.get(CHANGELIST, {"q": "ME-42"}).content.decode()

    assert "FIND-ME-42" in html and "OTHER-1" not in html


@pytest.mark.parametrize(
    ("action", "start", "end"),
    [
        ("enable", "notadded", "notactivated"),
        ("disable", "notactivated", "disabled"),
        ("reenable", "disabled", "notactivated"),
    ],
)
def test_actions_on_a_selection(staff_client, action, start, end):
    devices = [DeviceFactory(state=start) for _ in range(3)]
    untouched = DeviceFactory(state="activated" if action == "enable" else "notadded")
    selection = [d.pk for d in devices] + [untouched.pk]

    response = staff_client.post(CHANGELIST, {"action": action, "_selected_action": selection}, follow=True)

    assert response.status_code == 200
    assert set(Device.objects.filter(pk__in=[d.pk for d in devices]).values_list("state", flat=True)) == {end}
    (message,) = [str(m) for m in response.context["messages"]]
    done = {"enable": "Enabled", "disable": "Disabled", "reenable": "Re-enabled"}[action]
    assert message.startswith(f"{done} 3; 1 could not be {done.lower()} (")
    assert message.endswith(f": {untouched.serial_number}).")


def test_change_page_never_shows_the_cik(staff_client):
    device = services.device_enable(device=DeviceFactory(serial_number="SECRET-1"))
    cik = services.device_activate(
        vendor=device.model.vendor.name,
        model=device.model.name,
        serial="SECRET-1",
        remote_addr="192.0.2.9",
        user_agent="lib/1",
    )
    device.refresh_from_db()

    html = staff_client.get(reverse("admin:devices_device_change", args=[device.pk])).content.decode()

    assert cik not in html and device.cik_digest not in html
    assert re.search(r'data-field="device-cik">active, never used', html)  # whether one is live, never its value
    assert "192.0.2.9" in html  # the activation log inline


def test_owner_must_be_a_customer(staff_client, staff_user):
    device = DeviceFactory()
    form = {
        "model": device.model_id,
        "serial_number": device.serial_number,
        "extra": "",
        "owner": staff_user.pk,
        "attempts-TOTAL_FORMS": "0",
        "attempts-INITIAL_FORMS": "0",
    }

    response = staff_client.post(reverse("admin:devices_device_change", args=[device.pk]), form)

    assert response.status_code == 200
    assert "the owner must be an active customer account" in response.content.decode()
    assert Device.objects.get(pk=device.pk).owner is None
    form["owner"] = CustomerFactory().pk
    assert staff_client.post(reverse("admin:devices_device_change", args=[device.pk]), form).status_code == 302


def test_csv_import_previews_then_imports(staff_client):
    model = DeviceModelFactory()
    DeviceFactory(model=model, serial_number="OLD-1")
    upload = SimpleUploadedFile("s.csv", b"sn,extra\nOLD-1,\nNEW-1,lot\nNEW-2,\n,\n" + b"y" * 300 + b"\n")

    preview = staff_client.post(IMPORT, {"model": model.pk, "file": upload, "enable": "on"})

    assert preview.status_code == 200
    html = preview.content.decode()
    assert '<strong data-count="created">2</strong>' in html
    assert '<strong data-count="existing">1</strong>' in html
    assert '<strong data-count="invalid">1</strong>' in html
    assert Device.objects.filter(model=model).count() == 1

    confirmed = staff_client.post(
        IMPORT, {"model": model.pk, "csv_text": preview.context["csv_text"], "enable": "on", "confirm": "1"}
    )

    assert confirmed.status_code == 302
    assert sorted(Device.objects.filter(model=model).values_list("serial_number", "state")) == [
        ("NEW-1", "notactivated"),
        ("NEW-2", "notactivated"),
        ("OLD-1", "notadded"),
    ]


def test_import_needs_add_permission(client):
    viewer = StaffFactory(username="viewer")
    viewer.groups.clear()
    client.force_login(viewer)

    assert client.get(IMPORT).status_code == 403


def test_import_rejects_non_utf8(staff_client):
    model = DeviceModelFactory()
    upload = SimpleUploadedFile("s.csv", b"\xff\xfe\x00A")

    response = staff_client.post(IMPORT, {"model": model.pk, "file": upload})

    assert "The file is not UTF-8 text." in response.content.decode()
    assert Device.objects.count() == 0


def test_import_rejects_unreadable_csv(staff_client):
    model = DeviceModelFactory()
    upload = SimpleUploadedFile("s.csv", b"A-1,x\n" + b"z" * 200_000 + b"\n")  # past csv's field size limit

    response = staff_client.post(IMPORT, {"model": model.pk, "file": upload})

    assert response.status_code == 200
    assert "not a readable CSV file" in response.content.decode()
    assert Device.objects.count() == 0


def test_import_counts_a_nul_serial_as_invalid(staff_client):
    model = DeviceModelFactory()
    upload = SimpleUploadedFile("s.csv", b"A-1,x\nA-2\x00,y\n")

    response = staff_client.post(IMPORT, {"model": model.pk, "file": upload})

    assert '<strong data-count="invalid">1</strong>' in response.content.decode()
    assert Device.objects.count() == 0


# --- stranded CIKs -------------------------------------------------------------------------------------------------


@pytest.fixture
def stranded_fleet():
    """USED-1 activated and called in; NEW-1 activated 10 min ago and OLD-1 two days ago, neither used."""
    model = DeviceModelFactory(name="m", vendor__name="acme")
    now = timezone.now()
    for sn, ago in (("USED-1", timedelta(days=3)), ("OLD-1", timedelta(days=2)), ("NEW-1", timedelta(minutes=10))):
        services.device_enable(device=DeviceFactory(model=model, serial_number=sn))
        with time_machine.travel(now - ago, tick=False):
            cik = services.device_activate(vendor="acme", model="m", serial=sn, remote_addr=None, user_agent="")
            if sn == "USED-1":
                services.device_from_cik(cik=cik)
    DeviceFactory(model=model, serial_number="IDLE-1")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        pytest.param("1", {"NEW-1", "OLD-1"}, id="stranded"),
        pytest.param("1h", {"OLD-1"}, id="over-an-hour"),
        pytest.param("1d", {"OLD-1"}, id="over-a-day"),
        pytest.param("0", {"USED-1", "IDLE-1"}, id="used-or-no-cik"),
    ],
)
def test_changelist_finds_stranded_ciks(staff_client, stranded_fleet, value, shown):
    response = staff_client.get(CHANGELIST, {"stranded": value})

    assert response.status_code == 200
    assert {d.serial_number for d in response.context["cl"].result_list} == shown


def test_changelist_says_how_long_a_cik_has_waited_for_its_first_use(staff_client, stranded_fleet):
    html = staff_client.get(CHANGELIST).content.decode()

    assert "never used (10 min since activation)" in html
    assert "never used (2 d 0 h since activation)" in html
    assert html.count(">used<") == 1
    assert "Never used for over an hour" in html  # the filter is offered


def test_change_page_shows_first_use_and_never_the_cik(staff_client, stranded_fleet):
    device = Device.objects.get(serial_number="USED-1")

    html = staff_client.get(reverse("admin:devices_device_change", args=[device.pk])).content.decode()

    assert "CIK first used" in html
    assert device.cik_digest not in html
