"""A CIK is handed out once: 100 simultaneous activations of one serial through a real server on PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from collections import Counter

import httpx
import pytest

from devices import services
from devices.models import ActivationAttempt, Device
from tests.factories import DeviceFactory
from tests.waiting import await_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
CALLERS = 100


@pytest.fixture
def server(portal_server):
    # The race is the subject here, not the limits: let all 100 through to the rules.
    return portal_server(ACTIVATION_RATE_LIMIT_SERIAL="0", ACTIVATION_RATE_LIMIT_IP="0")


async def fire(base: str, body: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=CALLERS)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        gate = asyncio.Event()

        waiting: list[None] = []

        async def one() -> httpx.Response:
            waiting.append(None)
            await gate.wait()
            return await client.post(
                "/provision/activate", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
            )

        tasks = [asyncio.create_task(one()) for _ in range(CALLERS)]
        await await_for(lambda: len(waiting) == CALLERS, timeout=5, interval=0.01, message="callers not at the gate")
        gate.set()
        return await asyncio.gather(*tasks)


def test_one_cik_for_100_simultaneous_activations(server):
    device = services.device_enable(
        device=DeviceFactory(model__vendor__name="acme", model__name="stb", serial_number="RACE-1")
    )

    responses = asyncio.run(fire(server, "vendor=acme&model=stb&sn=RACE-1"))

    assert Counter(r.status_code for r in responses) == {200: 1, 409: CALLERS - 1}
    [winner] = [r for r in responses if r.status_code == 200]
    assert re.fullmatch(r"[0-9a-f]{40}", winner.text)
    assert {r.text for r in responses if r.status_code == 409} == {"device already activated"}
    device.refresh_from_db()
    assert device.cik_digest == services.cik_digest(winner.text)
    assert Counter(ActivationAttempt.objects.filter(device=device).values_list("outcome", flat=True)) == {
        "activated": 1,
        "already_activated": CALLERS - 1,
    }
    assert Device.objects.filter(cik_digest__isnull=False).count() == 1
