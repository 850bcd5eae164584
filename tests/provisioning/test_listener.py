"""Event subscription over a real WebSocket: the portal registers on the box and stores what it sends."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from provisioning import listener, services, thunder
from provisioning.models import BoxEvent, Command
from provisioning.simulator import Faults, FleetThread
from tests.factories import DeviceFactory
from tests.waiting import await_for

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def register(address: str):
    host, port = address.rsplit(":", 1)
    return services.box_register(device=DeviceFactory(), host=host, port=int(port))


@database_sync_to_async
def stored_events():
    return list(BoxEvent.objects.values_list("name", "status", "source"))


async def test_a_provisioningchange_from_the_box_is_stored_and_queues_a_refresh():
    with FleetThread(1, api_version=3, faults=Faults(provision_seconds=0.2)) as fleet:
        box = await register(fleet.boxes[0].address)
        watcher = asyncio.create_task(listener.watch(box.pk, box.address))
        try:
            await await_for(lambda: fleet.boxes[0].subscriber_count, timeout=10)  # registered
            await asyncio.to_thread(lambda: thunder.ThunderClient(box.address, timeout=2).provision())
            events = await await_for(stored_events, timeout=10)
        finally:
            watcher.cancel()

    assert events[0][0] == "provisioningchange" and events[0][2] == "subscription"
    assert isinstance(events[0][1], int)
    assert await database_sync_to_async(Command.objects.filter(box=box, kind="refresh").count)() == 1


async def test_subscribe_to_a_box_that_is_gone_raises_unavailable():
    with FleetThread(1) as fleet:
        address = fleet.boxes[0].address

    async def ignore(event, params):
        pass

    with pytest.raises(thunder.Unavailable):
        await thunder.subscribe(address, ignore, timeout=0.5)
