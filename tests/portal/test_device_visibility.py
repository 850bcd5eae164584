"""Who may see a device: one rule (``devices.selectors.device_visibility``) behind every surface that shows devices:
the customer pages, their live WebSocket, the /v1/ select and the staff REST API. For each: the owner, another
customer, an owner since deactivated, and support staff."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from rest_framework.test import APIClient

from components.selectors import component_select, components_visible
from devices.selectors import devices_visible
from portal import dashboard
from portal.asgi import application
from tests.components.support import component
from tests.factories import CustomerFactory, DeviceFactory, StaffFactory

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
HOST = (b"host", b"127.0.0.1:8000")


@pytest.fixture
def world(db):
    """Carol owns one device, Mallory another; Dave owned one and was deactivated; Sam is support staff."""
    carol, mallory, sam = CustomerFactory(username="carol"), CustomerFactory(username="mallory"), StaffFactory()
    dave = CustomerFactory(username="dave", is_active=False)
    devices = {
        name: DeviceFactory(owner=user) for name, user in (("carol", carol), ("mallory", mallory), ("dave", dave))
    }
    devices["nobody"] = DeviceFactory()
    for device in devices.values():
        component(device, component_type=0, component_id=1)
    return {"carol": carol, "mallory": mallory, "dave": dave, "sam": sam}, devices


EVERY = ["carol", "mallory", "dave", "nobody"]
WHO_SEES = [
    pytest.param("carol", ["carol"], id="owner"),
    pytest.param("mallory", ["mallory"], id="another-customer"),
    pytest.param("dave", [], id="deactivated-owner"),
    pytest.param("sam", EVERY, id="support-staff"),
]


@pytest.mark.parametrize(("who", "sees"), WHO_SEES)
def test_the_rule_itself(world, who, sees):
    users, devices = world

    visible = set(devices_visible(user=users[who]).values_list("pk", flat=True))

    assert visible == {devices[name].pk for name in sees}


def test_anonymous_sees_no_device(world):
    assert list(devices_visible(user=AnonymousUser())) == []


def test_a_staff_user_outside_the_support_group_sees_only_their_own(world):
    _users, devices = world
    outsider = CustomerFactory(username="helpdesk", is_staff=True)
    mine = DeviceFactory(owner=outsider)

    assert list(devices_visible(user=outsider)) == [mine]
    assert dashboard.device_visible(outsider, devices["carol"].pk) is None


# --- the customer pages ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("who", "sees"), WHO_SEES)
def test_the_device_pages_and_the_selector_behind_them(client, world, who, sees):
    users, devices = world
    client.force_login(users[who])

    pages = {name: client.get(f"/devices/{device.pk}/").status_code for name, device in devices.items()}
    panels = {name: client.get(f"/devices/{device.pk}/panel/").status_code for name, device in devices.items()}

    # A deactivated user's session no longer authenticates: the pages send them to the login page.
    expected = {name: (200 if name in sees else 302 if who == "dave" else 404) for name in devices}
    assert pages == expected and panels == expected
    assert {name for name, device in devices.items() if dashboard.device_visible(users[who], device.pk)} == set(sees)


def test_my_devices_lists_only_the_users_own(client, world):
    users, devices = world

    assert dashboard.my_devices(users["carol"]) == [devices["carol"]]
    assert dashboard.my_devices(users["dave"]) == []
    assert dashboard.my_devices(users["sam"]) == []  # staff follow every device elsewhere, but own none


# --- the live WebSocket ----------------------------------------------------------------------------------------------


def cookie_for(client, user) -> tuple[bytes, bytes]:
    client.force_login(user)
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode())


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("who", "device", "outcome"),
    [
        ("carol", "carol", (True, None)),
        ("mallory", "carol", (False, 4403)),
        ("dave", "dave", (False, 4401)),
        ("sam", "carol", (True, None)),
        ("sam", "nobody", (True, None)),
    ],
    ids=["owner", "another-customer", "deactivated-owner", "staff-any-device", "staff-unowned-device"],
)
async def test_the_device_socket(client, world, who, device, outcome):
    users, devices = world
    cookie = await sync_to_async(cookie_for)(client, users[who])
    ws = WebsocketCommunicator(application, f"/ws/devices/{devices[device].pk}/", headers=[HOST, ORIGIN, cookie])

    connected, code = await ws.connect()
    if connected:
        await ws.disconnect()

    assert (connected, code if not connected else None) == outcome


# --- the /v1/ select --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("who", "sees"), WHO_SEES)
def test_the_v1_select_and_writes_see_the_same_devices(world, who, sees):
    users, devices = world
    expected = {devices[name].pk for name in sees}

    selected = component_select(user=users[who], filters={}, limit=100)

    assert {row["provisioning_id"] for row in selected} == expected
    assert set(components_visible(user=users[who]).values_list("provisioning_id", flat=True)) == expected


# --- the staff REST API -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status", "sees"),
    [("carol", 403, None), ("dave", 401, None), ("sam", 200, EVERY)],
    ids=["customer", "deactivated-customer", "support-staff"],
)
def test_the_staff_rest_api(world, who, status, sees):
    users, devices = world
    api = APIClient()
    api.force_login(users[who])

    response = api.get("/api/v1/devices/", {"limit": 100})

    assert response.status_code == status
    if sees is not None:
        assert {row["id"] for row in response.json()["results"]} == {devices[name].pk for name in sees}


def test_a_deactivated_support_user_loses_the_staff_api(world):
    users, _devices = world
    users["sam"].is_active = False
    users["sam"].save()

    assert set(devices_visible(user=users["sam"])) == set()
    api = APIClient()
    api.force_login(users["sam"])
    assert api.get("/api/v1/devices/").status_code == 401  # the session no longer authenticates anyone
