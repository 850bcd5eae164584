"""The live pages' consumers through the real ASGI application: authentication, the Origin check, who may follow
which device, and the payloads relayed (typed, small, no secret)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings

from portal.asgi import application
from portal.kernel.live import apublish
from tests.factories import CustomerFactory, DeviceFactory
from tests.waiting import await_for

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = (b"origin", b"http://127.0.0.1:8000")
HOST = (b"host", b"127.0.0.1:8000")  # browsers send both; the Origin must be the page's own (portal/kernel/origin.py)


def cookie_for(client, user) -> tuple[bytes, bytes]:
    client.force_login(user)
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode())


async def connect(path: str, *headers) -> tuple[WebsocketCommunicator, bool, int | None]:
    ws = WebsocketCommunicator(application, path, headers=[HOST, *headers])
    connected, code = await ws.connect()
    return ws, connected, code


@pytest.fixture
def owned(customer_user):
    return DeviceFactory(owner=customer_user)


async def test_the_owner_follows_their_device_and_gets_its_events(client, customer_user, owned):
    cookie = await sync_to_async(cookie_for)(client, customer_user)
    ws, connected, _ = await connect(f"/ws/devices/{owned.pk}/", ORIGIN, cookie)
    event = {
        "type": "device.event",
        "device_id": owned.pk,
        "event": "provisioningchange",
        "status": 200,
        "at": "2026-11-24T10:00:00+00:00",
    }

    await apublish(event)
    received = await ws.receive_json_from(timeout=2)
    await ws.disconnect()

    assert connected is True
    assert received == event


async def test_another_customers_device_is_closed(client, owned):
    other = await sync_to_async(CustomerFactory)(username="mallory")
    cookie = await sync_to_async(cookie_for)(client, other)

    _ws, connected, code = await connect(f"/ws/devices/{owned.pk}/", ORIGIN, cookie)

    assert (connected, code) == (False, 4403)


async def test_an_unknown_device_is_closed_too(client, customer_user):
    cookie = await sync_to_async(cookie_for)(client, customer_user)

    _ws, connected, code = await connect("/ws/devices/999999/", ORIGIN, cookie)

    assert (connected, code) == (False, 4403)


@pytest.mark.parametrize("path", ["/ws/devices/1/", "/ws/my/", "/ws/staff/"])
async def test_anonymous_is_closed(path):
    _ws, connected, code = await connect(path, ORIGIN)

    assert (connected, code) == (False, 4401)


async def test_a_foreign_origin_is_refused_even_for_the_owner(client, customer_user, owned):
    cookie = await sync_to_async(cookie_for)(client, customer_user)

    _ws, connected, _ = await connect(f"/ws/devices/{owned.pk}/", (b"origin", b"http://evil.example.com"), cookie)

    assert connected is False


async def test_staff_follow_any_device_and_the_fleet(client, staff_user, owned):
    cookie = await sync_to_async(cookie_for)(client, staff_user)
    device_ws, device_ok, _ = await connect(f"/ws/devices/{owned.pk}/", ORIGIN, cookie)
    fleet_ws, fleet_ok, _ = await connect("/ws/staff/", ORIGIN, cookie)
    event = {
        "type": "cas.request",
        "device_id": None,
        "number": 7,
        "request_type": "ADD_SUBSCRIPTIONS",
        "state": "COMPLETED",
    }

    await apublish(event)

    assert (device_ok, fleet_ok) == (True, True)
    assert await fleet_ws.receive_json_from(timeout=2) == event
    assert await device_ws.receive_nothing(timeout=0.3)  # no device: only the staff group hears it
    await device_ws.disconnect()
    await fleet_ws.disconnect()


async def test_a_customer_may_not_follow_the_fleet(client, customer_user):
    cookie = await sync_to_async(cookie_for)(client, customer_user)

    _ws, connected, code = await connect("/ws/staff/", ORIGIN, cookie)

    assert (connected, code) == (False, 4403)


async def test_my_devices_hears_each_owned_device_and_no_other(client, customer_user, owned):
    second = await sync_to_async(DeviceFactory)(owner=customer_user)
    stranger = await sync_to_async(DeviceFactory)()
    cookie = await sync_to_async(cookie_for)(client, customer_user)
    ws, connected, _ = await connect("/ws/my/", ORIGIN, cookie)

    for device in (stranger, second, owned):
        await apublish(
            {"type": "device.command", "device_id": device.pk, "command_id": 1, "kind": "refresh", "state": "SUCCEEDED"}
        )
    heard = {(await ws.receive_json_from(timeout=2))["device_id"] for _ in range(2)}

    assert connected is True and heard == {second.pk, owned.pk}
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()


async def test_disconnect_leaves_the_group(client, customer_user, owned):
    cookie = await sync_to_async(cookie_for)(client, customer_user)
    ws, _, _ = await connect(f"/ws/devices/{owned.pk}/", ORIGIN, cookie)
    layer = get_channel_layer()

    await ws.disconnect()
    await await_for(lambda: not layer.groups.get(f"device.{owned.pk}"), timeout=2, interval=0.01)

    assert not layer.groups.get(f"device.{owned.pk}")
