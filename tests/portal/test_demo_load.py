"""Loading the demo again after ordinary staff edits never fails, and leaves a usable demo (issue 12.7).

Each edit goes through the interface staff use for it (the admin, the staff REST API); then the demo loads again
(as every ``make run`` does), and once more to show it settled.
"""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Q
from django.urls import reverse
from rest_framework.test import APIClient

from components.models import ParameterGroup, Sensor
from conax.models import Service, SetTopBox, Smartcard, Subscription, Unit
from devices import services
from devices.models import Device, DeviceModel, Vendor
from portal.demo import DEMO_USERS, demo_load, demo_serials
from portal.kernel import services as portal_services
from portal.kernel.choices import TokenPurpose

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def support(client):
    """The demo, loaded once, and the admin as its support user sees it."""
    demo_load()
    client.force_login(User.objects.get(username="support"))
    return client


@pytest.fixture
def api(support) -> APIClient:
    api = APIClient()
    token = portal_services.token_issue(user=User.objects.get(username="support"), purpose=TokenPurpose.STAFF_API)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.raw}")
    return api


def admin_url(obj, view: str) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_{view}", args=[obj.pk])


def _posted(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else None
    return value


def _form_data(form) -> dict:
    data = {form.add_prefix(name): _posted(form[name].value()) for name in form.fields}
    return {name: value for name, value in data.items() if value is not None}


def admin_change(client, obj, **changes) -> None:
    """Save the admin change form of ``obj`` as shown, with ``changes`` typed in."""
    url = admin_url(obj, "change")
    page = client.get(url)
    data = _form_data(page.context["adminform"].form)
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        data |= _form_data(formset.management_form)
        for form in formset.forms:
            data |= _form_data(form)
    data |= changes
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors


def admin_delete(client, obj) -> None:
    assert client.post(admin_url(obj, "delete"), {"post": "yes"}).status_code == 302
    assert not type(obj).objects.filter(pk=obj.pk).exists()


def device(serial: str) -> Device:
    return Device.objects.get(model__name="stb-4k", serial_number=serial)


# --- staff edits ---------------------------------------------------------------------------------------------------


def move_to_another_model(support, api):
    """The audit's case: alice's gateway moved to the set-top box model (its box ca_id collided)."""
    stb = DeviceModel.objects.get(vendor__name="acme", name="stb-4k")
    gateway = Device.objects.get(model__name="gw-100", serial_number="GW-100-000000")
    admin_change(support, gateway, model=stb.pk)
    box = Device.objects.get(model__name="stb-4k", serial_number="STB-4K-000002")
    admin_change(support, box, model=DeviceModel.objects.get(name="sensor-node").pk)


def delete_devices(support, api):
    doomed = Device.objects.filter(serial_number__in=["STB-4K-000000", "STB-4K-000001", "SENSOR-NODE-000000"])
    ids = list(doomed.values_list("pk", flat=True))
    response = support.post(
        reverse("admin:devices_device_changelist"),
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    assert response.status_code == 302
    assert not Device.objects.filter(pk__in=ids).exists()


def rename_vendor_and_model(support, api):
    acme = Vendor.objects.get(name="acme")
    assert api.put(f"/api/v1/vendors/{acme.pk}/", {"name": "acme-corp"}, format="json").status_code == 200
    gw = DeviceModel.objects.get(name="gw-100")
    body = {"vendor_id": gw.vendor_id, "name": "gw-200"}
    assert api.put(f"/api/v1/device-models/{gw.pk}/", body, format="json").status_code == 200


def change_owners(support, api):
    bob = User.objects.get(username="bob")
    for serial, owner in (("STB-4K-000000", bob.pk), ("STB-4K-000001", None), ("STB-4K-000020", bob.pk)):
        response = api.patch(f"/api/v1/devices/{device(serial).pk}/", {"owner_id": owner}, format="json")
        assert response.status_code == 200


def change_states(support, api):
    pending = [device(sn).pk for sn in ("STB-4K-000000", "STB-4K-000001", "STB-4K-000004")]
    support.post(reverse("admin:devices_device_changelist"), {"action": "disable", "_selected_action": pending})
    assert api.post(f"/api/v1/devices/{device('STB-4K-000007').pk}/reenable/").status_code == 200


def delete_conax_boxes_and_reuse_their_ids(support, api):
    """A box deleted, another given its CA id, a card deleted and another given its serial number."""
    admin_delete(support, SetTopBox.objects.get(serial_number="STB-4K-000000"))
    admin_change(support, SetTopBox.objects.get(serial_number="STB-4K-000002"), ca_id="STB-000000")
    admin_delete(support, Smartcard.objects.get(serial_number="SC-000004"))
    admin_change(support, Smartcard.objects.get(serial_number="SC-000006"), serial_number="SC-000004")


def rename_conax_catalog(support, api):
    admin_change(support, Service.objects.get(code="BASIC"), code="BASIC-TV")
    admin_delete(support, Service.objects.get(code="MOVIES"))
    admin_change(support, Unit.objects.get(name="Admin Unit"), name="Head office")
    admin_change(support, Subscription.objects.get(number="SUB-ALICE"), number="SUB-0001")
    admin_delete(support, Subscription.objects.get(number="SUB-BOB"))


def edit_components(support, api):
    # Sensors are all in use by the demo's components (deleting one is refused); a parameter group is not.
    admin_delete(support, ParameterGroup.objects.order_by("pk").first())
    admin_change(support, Sensor.objects.get(pk=2), name="CO")


def edit_demo_users(support, api):
    """A superuser's edits: alice deactivated and given another password, support made a customer."""
    alice = User.objects.get(username="alice")
    alice.is_active = False
    alice.set_password("something-else-entirely")
    alice.save()
    User.objects.filter(username="support").update(is_staff=False)


# In this order all of them can be made one after the other (the later ones delete or rename what earlier ones use).
EDITS = [
    move_to_another_model,
    change_owners,
    change_states,
    delete_conax_boxes_and_reuse_their_ids,
    rename_conax_catalog,
    edit_components,
    delete_devices,
    rename_vendor_and_model,
    edit_demo_users,
]


# --- what "usable" means -------------------------------------------------------------------------------------------


def assert_usable(client) -> None:
    client.logout()
    for spec in DEMO_USERS:
        path = "/admin/login/" if spec.is_staff else "/login/"
        response = client.post(path, {"username": spec.username, "password": spec.password})
        assert response.status_code == 302 and "_auth_user_id" in client.session, spec.username
        client.logout()
    assert User.objects.get(username="support").is_staff
    for customer in ("alice", "bob"):
        user = User.objects.get(username=customer)
        assert user.devices.filter(model__name="stb-4k").exists()
        assert Subscription.objects.filter(customer=user).exists()
        assert SetTopBox.objects.filter(device__owner=user).exists()
    # A service or unit staff renamed keeps its CA id / code: the demo uses it under its new name.
    assert Service.objects.filter(service_ca_id__in=["1001", "1002", "1003"]).count() == 3
    assert Unit.objects.filter(Q(name="Admin Unit") | Q(alternative_code="MG")).exists()
    for serial in demo_serials("notactivated"):
        assert Device.objects.filter(model__vendor__name="acme", model__name="stb-4k", serial_number=serial).exists()


def activate(client, vendor: str, model: str, serial: str):
    body = f"vendor={vendor}&model={model}&sn={serial}"
    return client.generic("POST", "/provision/activate", body, content_type="application/x-www-form-urlencoded")


# --- tests ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("edit", EDITS, ids=[edit.__name__ for edit in EDITS])
def test_demo_loads_again_after_a_staff_edit(support, api, edit):
    edit(support, api)

    demo_load()

    assert_usable(support)
    assert demo_load()["created"] == 0


def test_demo_loads_again_after_all_of_them_through_the_command(support, api):
    for edit in EDITS:
        edit(support, api)

    first, second = io.StringIO(), io.StringIO()
    call_command("demo_load", stdout=first)
    call_command("demo_load", stdout=second)

    assert_usable(support)
    assert "new)" in first.getvalue() and "(0 new)" in second.getvalue()


DOCUMENTED = {  # what the README tells a newcomer to try
    "notactivated": ["STB-4K-000000", "STB-4K-000002", "STB-4K-000005"],
    "activated": ["STB-4K-000001", "STB-4K-000003", "STB-4K-000006"],
    "expired": ["STB-4K-000004", "STB-4K-000014", "STB-4K-000024"],
    "disabled": ["STB-4K-000007", "STB-4K-000017", "STB-4K-000027"],
    "notadded": ["STB-4K-000009", "STB-4K-000019", "STB-4K-000029"],
}


@pytest.mark.parametrize("state", DOCUMENTED)
def test_the_documented_serials_are_in_their_documented_states(state):
    demo_load()

    assert demo_serials(state) == DOCUMENTED[state]
    assert {serial: device(serial).current_state for serial in DOCUMENTED[state]} == dict.fromkeys(
        DOCUMENTED[state], state
    )


def test_the_documented_boxes_smartcards_and_stranded_ciks():
    demo_load()

    boxes = SetTopBox.objects.filter(device__model__name="stb-4k").order_by("serial_number")
    assert [(b.serial_number, b.ca_id, b.device.owner.username) for b in boxes] == [
        (f"STB-4K-{n:06d}", f"STB-{n:06d}", "alice" if n % 2 == 0 else "bob") for n in range(12)
    ]
    cards = Smartcard.objects.order_by("serial_number").values_list("serial_number", "subscription__number")
    assert list(cards) == [(f"SC-{n:06d}", "SUB-ALICE" if n % 2 == 0 else "SUB-BOB") for n in range(12)]
    stranded = Device.objects.stranded().filter(model__name="stb-4k").order_by("serial_number")
    assert [d.serial_number for d in stranded] == [f"STB-4K-{n:06d}" for n in (101, 103, 106, 111, 113, 116)]


def test_a_documented_pending_serial_activates_once(client):
    demo_load()
    serial = demo_serials("notactivated")[0]

    first = activate(client, "acme", "stb-4k", serial)
    second = activate(client, "acme", "stb-4k", serial)

    assert first.status_code == 200 and len(first.content) == 40
    assert (second.status_code, second.content) == (409, b"device already activated")


def test_pending_demo_serials_whose_window_passed_are_pending_again_after_a_load(settings):
    """A demo left for a day would otherwise have no serial to activate: the next start opens a new window for the
    pending demo serials that expired unused, and leaves every other state alone."""
    demo_load()
    pending = Device.objects.filter(serial_number__in=demo_serials("notactivated", count=48), model__name="stb-4k")
    Device.objects.filter(pk__in=pending).update(activation_expires_at=pending.first().enabled_at)
    services.devices_expire_windows()
    untouched = {d.pk: d.state for d in Device.objects.exclude(pk__in=pending)}

    demo_load()

    assert {d.current_state for d in Device.objects.filter(pk__in=pending)} == {"notactivated"}
    assert {d.pk: d.state for d in Device.objects.exclude(pk__in=pending)} == untouched


@pytest.mark.postgres
def test_a_demo_that_cannot_load_at_all_does_not_stop_the_start(support):
    """Whatever the loader does not foresee (here the database refuses every new service) leaves the data as it
    was and the command returns normally, so `make run` goes on to start the portal."""
    from django.db import connection

    admin_delete(support, Service.objects.get(code="MOVIES"))
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused by a trigger'; END $$"
            " LANGUAGE plpgsql; CREATE TRIGGER refuse BEFORE INSERT ON conax_service"
            " FOR EACH ROW EXECUTE FUNCTION refuse()"
        )
    Device.objects.filter(serial_number="STB-4K-000000").delete()
    out, err = io.StringIO(), io.StringIO()

    call_command("demo_load", stdout=out, stderr=err)

    assert (
        err.getvalue()
        == "Demo data not loaded (ProgrammingError: refused by a trigger); starting with the data there.\n"
    )
    assert out.getvalue() == ""
    assert not Device.objects.filter(serial_number="STB-4K-000000").exists()  # one transaction: nothing half-done
