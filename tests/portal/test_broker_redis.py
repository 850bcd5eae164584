"""Production workers survive Redis restarts (issue 12.2), with the README's production command lines.

Real parts: a private redis-server (no persistence, as the machine's: a restart empties it) restarted twice by pid,
``celery -A portal worker -Q express,regular --concurrency 4`` (prefork), ``celery -A portal worker -Q devices
--pool threads --concurrency 64``, ``celery -A portal beat``, all in the production profile on the PostgreSQL test
database; the CAS simulator over HTTP for the Conax head-end and simulated set-top boxes over sockets.

Work is published before the first restart, between the restarts and after the second, every time with some of it
still in flight or queued when Redis goes down (those queued messages are lost with it, by design). The periodic
safety nets that beat runs (``conax.tasks.requests_dispatch``, ``provisioning.tasks.commands_sweep``) send again what
was lost after their grace period (set short here). Then every request and command finished, each head-end change
and each box call happened exactly once, and none of the three processes died.

Before kernel/broker.py's ``RedisTransport`` (settings: ``CELERY_BROKER_TRANSPORT``), the prefork worker died at a
restart with ``Unrecoverable error: AttributeError("'NoneType' object has no attribute 'hostname'")``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time

import pytest
import redis
from kombu import Connection

from conax import services as conax_services
from conax.models import ProvisioningRequest, Service, Smartcard, Subscription
from conax.simulator import CasServerThread
from portal.celery import app as celery_app
from provisioning import services as device_services
from provisioning.models import Command
from provisioning.simulator import Faults, FleetThread
from tests.conftest import REPO, clean_env, free_port, subprocess_database_url
from tests.factories import DeviceFactory
from tests.waiting import wait_for

NO_REDIS_SERVER = shutil.which("redis-server") is None
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(NO_REDIS_SERVER, reason="redis-server is not installed"),
]

PRODUCTION_LINES = {
    "express,regular": ["worker", "-Q", "express,regular", "--concurrency", "4"],
    "devices": ["worker", "-Q", "devices", "--pool", "threads", "--concurrency", "64"],
    "beat": ["beat"],
}
REQUESTS_PER_ROUND, BOXES_PER_ROUND, ROUNDS = 40, 8, 3


class PrivateRedis:
    """A redis-server of the test's own on a spare port, keeping nothing on disk; restarted and stopped by pid."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.answers, timeout=10, interval=0.2, message="redis did not start")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)

    def restart(self) -> None:
        self.kill()
        time.sleep(1)  # long enough for every client to see the connection refused, not just reset
        self.start()

    def answers(self) -> bool:
        try:
            return redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
        except redis.ConnectionError:
            return False


@pytest.fixture
def broker():
    server = PrivateRedis()
    server.start()
    yield server
    server.kill()


@pytest.fixture
def publish_to_broker(broker):
    """The services' on-commit dispatches in this process go to the private Redis (kombu's own Redis transport)."""
    saved = celery_app.conf.broker_url, celery_app.conf.broker_transport

    def reset_pools() -> None:
        celery_app.amqp._producer_pool = None
        celery_app._pool = None

    celery_app.conf.broker_url, celery_app.conf.broker_transport = broker.url, None
    reset_pools()
    yield
    celery_app.conf.broker_url, celery_app.conf.broker_transport = saved
    reset_pools()


def start_production(tmp_path, broker: PrivateRedis, head_end_url: str) -> dict[str, subprocess.Popen]:
    env = clean_env(
        DJANGO_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="localhost",
        DATABASE_URL=subprocess_database_url(),
        DATABASE_CONN_MAX_AGE="0",
        REDIS_URL=broker.url,
        PORTAL_VAR_DIR=str(tmp_path),
        CAS_GATEWAY_URL=head_end_url,
        CAS_TIMEOUT="5",
        CAS_DISPATCH_INTERVAL="1",
        CAS_DISPATCH_GRACE_SECONDS="3",
        COMMAND_SWEEP_INTERVAL="1",
        COMMAND_SWEEP_GRACE_SECONDS="3",
        COMMAND_STALE_SECONDS="60",
        # one message, one request: the restarts land while a worker holds unacknowledged messages of a round's last
        # requests (a batch topping itself up would finish a round in a few batches; test_pipeline_batch covers it)
        CAS_BATCH_TOP_UP_AFTER="0",
    )
    procs = {}
    for name, args in PRODUCTION_LINES.items():
        log = (tmp_path / f"{name}.log").open("w")
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", *args],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return procs


def stop(procs: dict[str, subprocess.Popen]) -> None:
    for proc in procs.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def conax_round(n: int) -> list[int]:
    """``REQUESTS_PER_ROUND`` requests processed immediately, one in four EXPRESS, one smartcard each."""
    subscription = Subscription.objects.create(number=f"S-{n}")
    service = Service.objects.create(code=f"SVC-{n}", service_ca_id=f"CA-SVC-{n}")
    subscription.services.add(service)
    numbers = []
    for i in range(REQUESTS_PER_ROUND):
        card = Smartcard.objects.create(serial_number=f"SC-{n}-{i}", ca_id=f"CA-{n}-{i}", subscription=subscription)
        draft = conax_services.subscription_change(
            type="ADD_SUBSCRIPTIONS", subscription=subscription, service=service, smartcard=card
        )
        options = conax_services.Options(priority="EXPRESS" if i % 4 == 0 else "REGULAR", process_immediately=True)
        request = conax_services.request_create(draft=draft, actor=conax_services.Actor(None), options=options)
        numbers.append(request.pk)
    return numbers


def device_round(fleet, n: int) -> list[int]:
    boxes = []
    for sim in fleet.boxes[n * BOXES_PER_ROUND : (n + 1) * BOXES_PER_ROUND]:
        host, port = sim.address.rsplit(":", 1)
        boxes.append(device_services.box_register(device=DeviceFactory(), host=host, port=int(port)))
    commands = device_services.commands_create(boxes=boxes, kind="reprovision", params={"provision_type": "HARDWARE"})
    return [command.pk for command in commands]


def progress() -> dict[str, dict[str, int]]:
    def count(values) -> dict[str, int]:
        found: dict[str, int] = {}
        for value in values:
            found[value] = found.get(value, 0) + 1
        return found

    return {
        "requests": count(ProvisioningRequest.objects.values_list("life_cycle_state", flat=True)),
        "commands": count(Command.objects.values_list("state", flat=True)),
    }


def done(requests: int, commands: int) -> bool:
    now = progress()
    return now["requests"].get("COMPLETED", 0) == requests and now["commands"].get("SUCCEEDED", 0) == commands


def in_flight(n: int) -> bool:
    """Round ``n``'s last few requests are running: a prefork worker holding unacknowledged messages while it waits
    for more, the state in which a lost connection used to kill it (portal/kernel/broker.py)."""
    finished = progress()["requests"].get("COMPLETED", 0)
    return (n + 1) * REQUESTS_PER_ROUND - 4 <= finished < (n + 1) * REQUESTS_PER_ROUND


def test_production_workers_survive_two_redis_restarts_losing_and_duplicating_nothing(
    tmp_path, broker, publish_to_broker
):
    with (
        CasServerThread(auto_register=True, latency_ms=300) as head_end,
        FleetThread(
            BOXES_PER_ROUND * ROUNDS, api_version=3, faults=Faults(latency=0.8, provision_seconds=0.1)
        ) as fleet,
    ):
        procs = start_production(tmp_path, broker, head_end.url)
        try:
            for n in range(ROUNDS):
                conax_round(n)
                device_round(fleet, n)
                if n < ROUNDS - 1:
                    wait_for(
                        lambda n=n: in_flight(n), timeout=60, interval=0.02, message=progress
                    )  # the first: once they are up
                    broker.restart()
            total_requests, total_commands = REQUESTS_PER_ROUND * ROUNDS, BOXES_PER_ROUND * ROUNDS
            wait_for(lambda: done(total_requests, total_commands), timeout=180, interval=1, message=progress)
            alive = {name: proc.poll() for name, proc in procs.items()}
        finally:
            stop(procs)
        stats, applied = head_end.simulator.stats(), head_end.simulator.applied_counts()
        calls = [sim.calls["reprovision"] for sim in fleet.boxes]

    logs = {name: (tmp_path / f"{name}.log").read_text() for name in PRODUCTION_LINES}
    assert alive == {"express,regular": None, "devices": None, "beat": None}, logs
    assert not [name for name, text in logs.items() if "Unrecoverable error" in text], logs
    for name in ("express,regular", "devices"):  # both restarts reached both workers
        assert logs[name].count("Connection to broker lost") == 2, logs[name]
    # Conax (express and regular queues): each request reached the head-end exactly once.
    assert len(applied) == total_requests and set(applied.values()) == {1}
    assert (stats["sends"], stats["duplicates"], stats["applied_more_than_once"]) == (total_requests, 0, [])
    # Devices queue: each box was asked to reprovision exactly once.
    assert calls == [1] * total_commands


@pytest.mark.parametrize(
    ("transport", "raised"),
    [("redis", AttributeError), ("portalredis", redis.ConnectionError)],
    ids=["kombu-stock-dies", "portal-reconnects"],
)
def test_a_channel_left_behind_by_a_collected_connection_fails_as_a_connection_error(broker, transport, raised):
    """The step that killed the prefork worker, in isolation: once Celery ``collect()``ed the connection, a channel
    it still holds rebuilds its Redis pool to restore unacknowledged messages (``Channel.close`` drops the pool first).
    kombu's own transport fails with AttributeError (escapes ``ignore_errors``: the worker dies); the portal's with
    Redis's ConnectionError (ignored while closing: the consumer reconnects). If kombu fixes it, the first case fails
    and the guard in portal/kernel/broker.py can go."""
    conn = Connection(broker.url, transport=transport)
    channel = conn.default_channel
    conn._do_close_transport()  # what collect() ends with: transport.client = None, the channel left open
    channel._disconnect_pools()

    with pytest.raises(raised, match="hostname" if raised is AttributeError else "closed"):
        channel.qos.restore_unacked()
