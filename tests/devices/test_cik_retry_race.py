"""Simultaneous retries of a stranded device through a real server on PostgreSQL hand out exactly one valid CIK."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter

import httpx
import pytest

from devices import services
from devices.exceptions import CikInvalid
from devices.models import ActivationAttempt, Device
from tests.factories import DeviceFactory
from tests.waiting import await_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def server(portal_server):
    return portal_server(ACTIVATION_RATE_LIMIT_SERIAL="0", ACTIVATION_RATE_LIMIT_IP="0", ACTIVATION_RETRY_WINDOW="600")


async def fire(base: str, body: str, callers: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=base, limits=httpx.Limits(max_connections=callers), timeout=30) as client:
        gate = asyncio.Event()

        waiting: list[None] = []

        async def one() -> httpx.Response:
            waiting.append(None)
            await gate.wait()
            return await client.post("/provision/activate", content=body, headers=FORM)

        tasks = [asyncio.create_task(one()) for _ in range(callers)]
        await await_for(lambda: len(waiting) == callers, timeout=5, interval=0.01, message="callers not at the gate")
        gate.set()
        return await asyncio.gather(*tasks)


@pytest.mark.parametrize("callers", [2, 20])
def test_simultaneous_retries_hand_out_exactly_one_valid_cik(server, callers):
    device = services.device_enable(
        device=DeviceFactory(model__vendor__name="acme", model__name="stb", serial_number="RETRY-1")
    )
    body = "vendor=acme&model=stb&sn=RETRY-1"
    first = httpx.post(f"{server}/provision/activate", content=body, headers=FORM)
    assert first.status_code == 200
    # Not a bet: the time a device must wait before a new CIK is issued passes; the device lost the answer and asks
    # again.
    time.sleep(services.REISSUE_MIN_AGE.total_seconds() + 0.1)

    responses = asyncio.run(fire(server, body, callers))

    assert Counter(r.status_code for r in responses) == {200: 1, 409: callers - 1}
    [winner] = [r.text for r in responses if r.status_code == 200]
    assert re.fullmatch(r"[0-9a-f]{40}", winner) and winner != first.text
    device.refresh_from_db()
    assert device.cik_digest == services.cik_digest(winner)
    with pytest.raises(CikInvalid):
        services.device_from_cik(cik=first.text)
    assert Counter(ActivationAttempt.objects.filter(device=device).values_list("outcome", flat=True)) == {
        "activated": 1,
        "reissued": 1,
        "already_activated": callers - 1,
    }
    assert Device.objects.filter(cik_digest__isnull=False).count() == 1
