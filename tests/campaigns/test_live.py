"""Campaign progress over the existing live WebSocket: the engine's ``campaign.progress`` payload reaches support
staff on ``/ws/staff/`` and no customer socket (through the real ASGI application)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from campaigns import engine, services
from portal.kernel.live import apublish
from tests.campaigns.support import boxes, definition
from tests.factories import DeviceFactory
from tests.portal.test_live_consumers import ORIGIN, connect, cookie_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def running_campaign_progress() -> dict:
    boxes([f"127.0.0.1:{40000 + n}" for n in range(10)])
    campaign = services.campaign_create(definition=definition(waves=[2, "rest"]))
    services.campaign_start(campaign=campaign)
    campaign.refresh_from_db()
    return dict(engine.progress(campaign=campaign))


async def test_staff_hear_campaign_progress_and_customers_do_not(client, staff_user, customer_user):
    owned = await sync_to_async(DeviceFactory)(owner=customer_user)
    progress = await sync_to_async(running_campaign_progress)()
    staff_cookie = await sync_to_async(cookie_for)(client, staff_user)
    fleet_ws, fleet_ok, _ = await connect("/ws/staff/", ORIGIN, staff_cookie)
    customer_cookie = await sync_to_async(cookie_for)(client, customer_user)
    mine_ws, mine_ok, _ = await connect("/ws/my/", ORIGIN, customer_cookie)
    device_ws, device_ok, _ = await connect(f"/ws/devices/{owned.pk}/", ORIGIN, customer_cookie)

    await apublish(progress)  # type: ignore[arg-type]

    assert (fleet_ok, mine_ok, device_ok) == (True, True, True)
    received = await fleet_ws.receive_json_from(timeout=2)
    assert received == progress
    assert (received["type"], received["total"], received["remaining"], received["waves"]) == (
        "campaign.progress",
        10,
        10,
        2,
    )
    assert await mine_ws.receive_nothing(timeout=0.3)
    assert await device_ws.receive_nothing(timeout=0.3)
    for ws in (fleet_ws, mine_ws, device_ws):
        await ws.disconnect()
