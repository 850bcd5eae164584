"""Keeps a provisioningchange subscription open on every registered set-top box, in one asyncio process.

Each box has its own task: subscribe, deliver events to ``services.event_ingest``, and when the connection ends
reconnect after an exponential backoff with jitter (1 s doubling to 60 s). The box list is re-read periodically, so
boxes registered later are picked up and removed ones are dropped.
"""

from __future__ import annotations

import asyncio
import logging
import random

from channels.db import database_sync_to_async
from django.conf import settings

from provisioning import services, thunder
from provisioning.choices import EventSource
from provisioning.models import SetTopBox

log = logging.getLogger(__name__)
RESCAN_SECONDS = 30.0
BACKOFF_MAX = 60.0


@database_sync_to_async
def _boxes() -> dict[int, str]:
    return {box.pk: box.address for box in SetTopBox.objects.only("pk", "thunder_host", "thunder_port")}


@database_sync_to_async
def _ingest(box_id: int, event: str, params: dict) -> None:
    box = SetTopBox.objects.filter(pk=box_id).first()
    if box is not None:
        services.event_ingest(box=box, name=event, params=params, source=EventSource.SUBSCRIPTION)


async def watch(box_id: int, address: str) -> None:
    """One box, forever: subscribe, and after each disconnection wait longer before trying again."""
    failures = 0

    async def deliver(event: str, params: dict) -> None:
        nonlocal failures
        failures = 0
        await _ingest(box_id, event, params)

    while True:
        try:
            await thunder.subscribe(address, deliver, timeout=settings.THUNDER_TIMEOUT)
        except thunder.ThunderError as exc:
            failures += 1
            delay = random.uniform(0, min(BACKOFF_MAX, 2.0**failures))  # noqa: S311  (jitter)
            log.info("subscription lost", extra={"box_id": box_id, "error": str(exc), "retry_in_s": round(delay, 1)})
            await asyncio.sleep(delay)


async def listen(*, rescan: float = RESCAN_SECONDS) -> None:
    tasks: dict[int, tuple[str, asyncio.Task]] = {}
    while True:
        boxes = await _boxes()
        for box_id in [b for b in tasks if b not in boxes or tasks[b][0] != boxes[b] or tasks[b][1].done()]:
            tasks.pop(box_id)[1].cancel()
        for box_id, address in boxes.items():
            if box_id not in tasks:
                tasks[box_id] = (address, asyncio.create_task(watch(box_id, address)))
        await asyncio.sleep(rescan)
