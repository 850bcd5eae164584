"""Events and command outcomes reach the device's group and the staff group on channels-redis (real Redis)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels_redis.core import RedisChannelLayer

from portal.kernel.live import STAFF_GROUP, device_group
from provisioning import services
from provisioning.choices import EventSource
from tests.factories import DeviceFactory

pytestmark = [pytest.mark.redis, pytest.mark.django_db]


@pytest.fixture
def layer(settings, redis_url):
    config = {"hosts": [redis_url.rsplit("/", 1)[0] + "/13"], "prefix": f"test-{uuid.uuid4().hex[:8]}"}
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": config}}
    return RedisChannelLayer(**config)


def listen(layer: RedisChannelLayer, group: str) -> str:
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group, channel)
    return channel


def receive(layer: RedisChannelLayer, channel: str) -> dict:
    async def one() -> dict:
        return await asyncio.wait_for(layer.receive(channel), timeout=5)

    return async_to_sync(one)()


def test_an_event_is_published_to_the_device_and_staff_groups_without_secrets(layer):
    box = services.box_register(device=DeviceFactory(), host="192.0.2.1")
    device_channel, staff_channel = listen(layer, device_group(box.device_id)), listen(layer, STAFF_GROUP)

    services.event_ingest(box=box, name="provisioningchange", params={"status": 200}, source=EventSource.PUSH)

    for channel in (device_channel, staff_channel):
        message = receive(layer, channel)
        assert set(message) == {"type", "device_id", "event", "status", "at"}
        assert (message["type"], message["device_id"], message["status"]) == ("device.event", box.device_id, 200)


def test_a_batch_tells_each_device_its_own_outcome_and_staff_once(layer):
    from provisioning.simulator import FleetThread

    with FleetThread(3) as fleet:
        boxes = []
        for sim in fleet.boxes:
            host, port = sim.address.rsplit(":", 1)
            boxes.append(services.box_register(device=DeviceFactory(), host=host, port=int(port)))
        device_channels = {box.device_id: listen(layer, device_group(box.device_id)) for box in boxes}
        staff_channel = listen(layer, STAFF_GROUP)
        commands = services.commands_create(boxes=boxes, kind="refresh")

        services.commands_run(ids=[c.pk for c in commands])

    summary = receive(layer, staff_channel)
    assert summary["type"] == "device.commands"
    assert sorted((c["device_id"], c["command_id"], c["state"]) for c in summary["commands"]) == sorted(
        (c.box.device_id, c.pk, "SUCCEEDED") for c in commands
    )
    for command in commands:
        message = receive(layer, device_channels[command.box.device_id])
        assert (message["type"], message["command_id"], message["state"]) == ("device.command", command.pk, "SUCCEEDED")
    with pytest.raises(asyncio.TimeoutError):  # one message per batch for staff: nothing more follows
        receive(layer, staff_channel)
