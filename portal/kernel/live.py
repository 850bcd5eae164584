"""The one helper that publishes live updates to the channel layer: a group per device, one for all staff.

Payloads are small typed dicts without secrets. Channel layers deliver at most once, so pages re-read the current
state on (re)connect; a publish that fails is logged and never fails the write that caused it. With the in-memory
layer of the embedded default, only consumers in the publishing process receive the message.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from collections.abc import Callable
from typing import Literal, NotRequired, TypedDict

from channels.layers import get_channel_layer

from portal.kernel import requestid

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


class CasRequest(TypedDict):
    """A Conax provisioning request reached a final state (to the staff group, and to its box's device if any)."""

    type: Literal["cas.request"]
    device_id: int | None
    number: int
    request_type: str
    state: str


class CommandState(TypedDict):
    device_id: int
    command_id: int
    kind: str
    state: str


class DeviceCommands(TypedDict):
    """A batch of commands ended (to the staff group only: each device's group gets its own ``device.command``)."""

    type: Literal["device.commands"]
    commands: list[CommandState]


class CasRequestState(TypedDict):
    device_id: int | None
    number: int
    request_type: str
    state: str


class CasRequests(TypedDict):
    """A batch of Conax requests ended (to the staff group only: each box's device gets its own ``cas.request``)."""

    type: Literal["cas.requests"]
    requests: list[CasRequestState]


class JobProgress(TypedDict):
    """A background job over many objects moved on (to the staff group only): counts so far and its state."""

    type: Literal["job.progress"]
    job_id: int
    done: int
    failed: int
    total: int
    state: str


class WebhookDelivery(TypedDict):
    """A webhook delivery changed state or was attempted (to the staff group only): no payload, no URL."""

    type: Literal["webhook.delivery"]
    delivery_id: int
    state: str
    attempts: int


class WebhookDeliveryState(TypedDict):
    delivery_id: int
    state: str
    attempts: int


class WebhookDeliveries(TypedDict):
    """A batch of webhook deliveries was attempted (to the staff group only): one event for the whole batch."""

    type: Literal["webhook.deliveries"]
    deliveries: list[WebhookDeliveryState]


class CampaignProgress(TypedDict):
    """A campaign moved on (to the staff group only): counts, current rate, ETA, the halt reason if it halted."""

    type: Literal["campaign.progress"]
    campaign_id: int
    state: str
    wave: int
    waves: int
    total: int
    done: int
    succeeded: int
    failed: int
    skipped: int
    in_flight: int
    remaining: int
    rate: float
    eta_seconds: float | None
    halt_reason: str


LiveEvent = (
    DeviceEvent
    | DeviceCommand
    | DeviceCommands
    | CasRequest
    | CasRequests
    | JobProgress
    | WebhookDelivery
    | WebhookDeliveries
    | CampaignProgress
)


def device_group(device_id: int) -> str:
    return f"device.{device_id}"


class _Publisher:
    """A background event loop per process, so that sync code (tasks, views) publishes without building an event
    loop and a channel-layer connection for every message (async_to_sync would, ~7 ms each)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():  # a forked worker child needs its own thread
                self._loop, self._pid = asyncio.new_event_loop(), os.getpid()
                threading.Thread(target=self._loop.run_forever, name="live-publisher", daemon=True).start()
            return self._loop


_publisher = _Publisher()


_MAX_IN_FLIGHT = 8  # below channels-redis's connection pool, however many tasks publish at once
_in_flight: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}


async def _send(event: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    gate = _in_flight.setdefault(asyncio.get_running_loop(), asyncio.Semaphore(_MAX_IN_FLIGHT))
    async with gate:
        if event.get("device_id") is not None:
            await layer.group_send(device_group(event["device_id"]), event)
        await layer.group_send(STAFF_GROUP, event)


async def _send_batch(device_events: list[dict], staff_event: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    gate = _in_flight.setdefault(asyncio.get_running_loop(), asyncio.Semaphore(_MAX_IN_FLIGHT))
    async with gate:
        for event in device_events:
            await layer.group_send(device_group(event["device_id"]), event)
        await layer.group_send(STAFF_GROUP, staff_event)


_Callback = Callable[[concurrent.futures.Future[None]], None]
REQUEST_ID_KEY = "request_id"  # of the request or task that caused the event; consumers log it, never relay it


def _message(event: LiveEvent) -> dict:
    message = dict(event)
    if (request_id := requestid.current()) is not None:
        message[REQUEST_ID_KEY] = request_id
    return message


def _reporter(request_id: str | None) -> _Callback:
    def report(future: concurrent.futures.Future[None]) -> None:
        if (exc := future.exception()) is not None:
            with requestid.bound(request_id):
                log.warning("live update not published", extra={"error": type(exc).__name__})

    return report


MAX_BACKLOG = 10_000  # events waiting for the layer; past this (Redis stalled) new ones are dropped and logged
_backlog = 0
_backlog_lock = threading.Lock()


def _done(report: _Callback) -> _Callback:
    def done(future: concurrent.futures.Future[None]) -> None:
        global _backlog
        with _backlog_lock:
            _backlog -= 1
        report(future)

    return done


def _admit(kind: str) -> bool:
    global _backlog
    with _backlog_lock:
        if _backlog >= MAX_BACKLOG:
            log.warning("live update dropped: backlog full", extra={"type": kind})
            return False
        _backlog += 1
    return True


def publish(event: LiveEvent) -> None:
    """Queue the event for the device's group and the staff group; returns at once.

    Inside a running event loop (an async consumer) use ``await apublish(event)`` instead.
    """
    if not _admit(event["type"]):
        return
    message = _message(event)
    future = asyncio.run_coroutine_threadsafe(_send(message), _publisher.loop())
    future.add_done_callback(_done(_reporter(message.get(REQUEST_ID_KEY))))


def publish_batch(device_events: list[LiveEvent], staff_event: LiveEvent) -> None:
    """A batch's events: each to its device's group only (events without a device go nowhere but the summary),
    and one summary event to the staff group, so that a staff page gets one message per batch, not one per item.
    One backlog slot for the whole batch; returns at once."""
    if not _admit(staff_event["type"]):
        return
    per_device = [_message(event) for event in device_events if event.get("device_id") is not None]
    summary = _message(staff_event)
    future = asyncio.run_coroutine_threadsafe(_send_batch(per_device, summary), _publisher.loop())
    future.add_done_callback(_done(_reporter(summary.get(REQUEST_ID_KEY))))


async def apublish(event: LiveEvent) -> None:
    try:
        await _send(_message(event))
    except Exception as exc:  # a lost live update must never undo or fail the stored change
        log.warning("live update not published", extra={"type": event["type"], "error": type(exc).__name__})
