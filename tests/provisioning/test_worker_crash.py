"""A worker killed mid-task (SIGKILL) loses no command, and no command is sent again after it succeeded.

Real parts: the simulator over sockets, a Celery worker process on Redis, PostgreSQL. The broker messages the
killed worker held (running or reserved) are not redelivered within the test (Redis visibility timeout); the command
table is the source of truth and the periodic sweep sends again what the dead worker left SENT or never started.
"""

from __future__ import annotations

import pytest
import redis

from portal.celery import app as celery_app
from provisioning import services
from provisioning.models import Command
from provisioning.simulator import Faults, FleetThread
from tests.conftest import kill_worker, start_worker
from tests.factories import DeviceFactory
from tests.waiting import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
BOXES = 12
STALE_SECONDS = 3


@pytest.fixture
def broker(redis_url):
    url = redis_url.rsplit("/", 1)[0] + "/14"
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()


def start(tmp_path, broker: str):
    return start_worker(
        tmp_path,
        broker,
        "devices",
        COMMAND_STALE_SECONDS=str(STALE_SECONDS),
        COMMAND_SWEEP_GRACE_SECONDS=str(STALE_SECONDS),
    )


def states() -> dict[str, int]:
    counts: dict[str, int] = {}
    for state in Command.objects.values_list("state", flat=True):
        counts[state] = counts.get(state, 0) + 1
    return counts


def all_finished(broker: str) -> bool:
    """Whether every command ended; if not, the periodic sweep is asked to run (no beat in this test)."""
    if states().get("SUCCEEDED", 0) + states().get("FAILED", 0) >= BOXES:
        return True
    with celery_app.connection_for_write(broker) as conn:
        celery_app.send_task("provisioning.tasks.commands_sweep", queue="devices", connection=conn)
    return False


def test_killed_worker_loses_nothing_and_sends_nothing_twice_after_success(tmp_path, broker):
    with FleetThread(BOXES, api_version=3, faults=Faults(latency=0.5, provision_seconds=0.1)) as fleet:
        boxes = []
        for sim in fleet.boxes:
            host, port = sim.address.rsplit(":", 1)
            boxes.append(services.box_register(device=DeviceFactory(), host=host, port=int(port)))
        commands = services.commands_create(boxes=boxes, kind="reprovision", params={"provision_type": "HARDWARE"})
        worker = start(tmp_path, broker)
        with celery_app.connection_for_write(broker) as conn:
            # Batches of 4 (3 messages on 4 pool threads): the kill lands while every batch has calls in flight.
            for first in range(0, BOXES, 4):
                batch = [command.pk for command in commands[first : first + 4]]
                celery_app.send_task(services.TASK, args=[batch], queue="devices", connection=conn)
        wait_for(
            lambda: states().get("SENT", 0) >= 2, timeout=30, interval=0.05, message=lambda: f"none SENT: {states()}"
        )
        kill_worker(worker)  # mid-task: some commands are SENT, their answers never recorded
        left_sent = states().get("SENT", 0)

        worker = start(tmp_path, broker)
        try:
            wait_for(lambda: all_finished(broker), timeout=90, interval=1, message=lambda: f"commands lost: {states()}")
        finally:
            kill_worker(worker)
        calls = [sim.calls["reprovision"] for sim in fleet.boxes]

    assert left_sent >= 1
    finished = {c.box.thunder_port: c for c in Command.objects.select_related("box")}
    assert {c.state for c in finished.values()} == {"SUCCEEDED"}
    for sim, count in zip(fleet.boxes, calls, strict=True):
        command = finished[sim.port]
        # Each claim may have reached the box once; nothing is sent after the recorded success.
        assert 1 <= count <= command.attempts, (sim.address, count, command.attempts)
