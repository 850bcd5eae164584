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


async def fire(base: str, body: str, callers: int) -> list[tuple[httpx.Response, float]]:
    """The callers' answers, each with the seconds from the gate's opening to its arrival."""
    async with httpx.AsyncClient(base_url=base, limits=httpx.Limits(max_connections=callers), timeout=30) as client:
        gate = asyncio.Event()

        waiting: list[None] = []
        opened: list[float] = []

        async def one() -> tuple[httpx.Response, float]:
            waiting.append(None)
            await gate.wait()
            response = await client.post("/provision/activate", content=body, headers=FORM)
            return response, time.monotonic() - opened[0]

        tasks = [asyncio.create_task(one()) for _ in range(callers)]
        await await_for(lambda: len(waiting) == callers, timeout=5, interval=0.01, message="callers not at the gate")
        opened.append(time.monotonic())
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

    answers = asyncio.run(fire(server, body, callers))

    # Exactly one of the retries replaces the key. Only a caller answered more than REISSUE_MIN_AGE after the gate
    # opened (a loaded machine queues some) may replace it again, by the rule: the k-th replacement is committed at
    # least (k - 1) x REISSUE_MIN_AGE after the first, so it arrives no sooner than that after the gate.
    winners = sorted((late, r.text) for r, late in answers if r.status_code == 200)
    assert Counter(r.status_code for r, _ in answers) == {200: len(winners), 409: callers - len(winners)}
    minimum = services.REISSUE_MIN_AGE.total_seconds()
    assert winners and all(late >= k * minimum for k, (late, _) in enumerate(winners)), winners
    assert all(re.fullmatch(r"[0-9a-f]{40}", cik) and cik != first.text for _, cik in winners)
    device.refresh_from_db()
    assert device.cik_digest == services.cik_digest(winners[-1][1])
    for replaced in [first.text, *(cik for _, cik in winners[:-1])]:
        with pytest.raises(CikInvalid):
            services.device_from_cik(cik=replaced)
    assert Counter(ActivationAttempt.objects.filter(device=device).values_list("outcome", flat=True)) == {
        "activated": 1,
        "reissued": len(winners),
        "already_activated": callers - len(winners),
    }
    assert Device.objects.filter(cik_digest__isnull=False).count() == 1
