"""The one helper that publishes live updates to the channel layer: a group per device, one for all staff.

Payloads are small typed dicts without secrets. Channel layers deliver at most once, so pages re-read the current
state on (re)connect; a publish that fails is logged and never fails the write that caused it.
"""

from __future__ import annotations

import logging
from typing import Literal, NotRequired, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)
STAFF_GROUP = "staff"


class DeviceEvent(TypedDict):
    type: Literal["device.event"]
    device_id: int
    event: str
    status: int | None
    at: str


class DeviceCommand(TypedDict):
    type: Literal["device.command"]
    device_id: int
    command_id: int
    kind: str
    state: str
    detail: NotRequired[str]


LiveEvent = DeviceEvent | DeviceCommand


def device_group(device_id: int) -> str:
    return f"device.{device_id}"


def publish(event: LiveEvent) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        send = async_to_sync(layer.group_send)
        send(device_group(event["device_id"]), dict(event))
        send(STAFF_GROUP, dict(event))
    except Exception as exc:
        log.warning("live update not published", extra={"type": event["type"], "error": type(exc).__name__})
