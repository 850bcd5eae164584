"""A CIK is handed out once: 100 simultaneous activations of one serial through a real server on PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections import Counter

import httpx
import pytest

from devices import services
from devices.models import ActivationAttempt, Device
from tests.conftest import REPO, clean_env, free_port, subprocess_database_url
from tests.factories import DeviceFactory

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
CALLERS = 100


@pytest.fixture
def server(tmp_path):
    """The production HTTP server (gunicorn, 4 processes, 8 threads each) on the test database."""
    port = free_port()
    env = clean_env(
        PORTAL_VAR_DIR=str(tmp_path), DATABASE_URL=subprocess_database_url(), DATABASE_CONN_MAX_AGE="0",
        # The race is the subject here, not the limits: let all 100 through to the rules.
        ACTIVATION_RATE_LIMIT_SERIAL="0", ACTIVATION_RATE_LIMIT_IP="0",
    )  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "portal.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "4", "--threads", "8", "--worker-class", "gthread"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            break
        except httpx.TransportError:
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
    yield base
    proc.terminate()
    proc.wait(timeout=20)


async def fire(base: str, body: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=CALLERS)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        gate = asyncio.Event()

        async def one() -> httpx.Response:
            await gate.wait()
            return await client.post(
                "/provision/activate", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
            )

        tasks = [asyncio.create_task(one()) for _ in range(CALLERS)]
        await asyncio.sleep(0.2)
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
