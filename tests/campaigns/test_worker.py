"""Campaigns end to end: real Celery worker processes on Redis, PostgreSQL, and the device simulator over real
sockets in multi-box mode (every box at its own loopback address, one port).

The beat scheduler is not run: a ticker thread sends the periodic tasks beat would (``campaigns.tasks.tick`` and
``provisioning.tasks.commands_sweep``) twice a second. Measured, not assumed: the rate from the recorded release
and send times; the waves' order from release and finish times; 0 lost and 0 doubled members after a worker
SIGKILL and a restart of a private redis-server in the middle of a wave.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
from collections import Counter

import pytest
import redis
from kombu.exceptions import OperationalError

from campaigns import services
from campaigns.models import Campaign, Member
from portal.celery import app as celery_app
from provisioning.models import Command
from provisioning.simulator import Faults, FleetThread
from tests.campaigns.support import boxes, definition, member_states
from tests.conftest import free_port, kill_worker, start_worker
from tests.waiting import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
QUEUES = "devices,regular,express"
WORKER_ENV = {
    "COMMAND_STALE_SECONDS": "3",
    "COMMAND_SWEEP_GRACE_SECONDS": "3",
    "THUNDER_TIMEOUT": "2",
    "CAMPAIGN_TICK_SECONDS": "1",
}


@pytest.fixture
def broker(redis_url):
    redis.Redis.from_url(redis_url).flushdb()
    yield redis_url
    redis.Redis.from_url(redis_url).flushdb()


class Ticker(threading.Thread):
    """What beat would send: the campaign tick and the commands sweep, every ``interval`` seconds, on ``broker``;
    a broker that is down (being restarted) is skipped until it answers again."""

    def __init__(self, broker: str, interval: float = 0.5) -> None:
        super().__init__(daemon=True, name="ticker")
        self.broker, self.interval, self.halt = broker, interval, threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.interval):
            with (
                contextlib.suppress(OperationalError, redis.ConnectionError, OSError),
                celery_app.connection_for_write(self.broker) as conn,
            ):
                celery_app.send_task("campaigns.tasks.tick", queue="regular", connection=conn)
                celery_app.send_task("provisioning.tasks.commands_sweep", queue="devices", connection=conn)

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=5)


@contextlib.contextmanager
def engine(tmp_path, broker: str):
    worker = start_worker(tmp_path, broker, QUEUES, **WORKER_ENV)
    ticker = Ticker(broker)
    ticker.start()
    try:
        yield lambda: worker
    finally:
        ticker.stop()
        kill_worker(worker)


def register(fleet) -> list:
    return boxes([sim.address for sim in fleet.boxes])


def state(campaign) -> str:
    return Campaign.objects.get(pk=campaign.pk).state


def wait_state(campaign, wanted: str, timeout: float) -> None:
    wait_for(
        lambda: state(campaign) == wanted,
        timeout=timeout,
        interval=0.3,
        message=lambda: f"campaign {state(campaign)}, members {member_states(campaign)}",
    )


def calls(fleet) -> Counter:
    return Counter({sim.host: sim.calls["reprovision"] for sim in fleet.boxes})


def test_two_waves_run_in_order_and_finish(tmp_path, broker):
    with FleetThread(20, loopback="127.71.0.1", api_version=3, faults=Faults(provision_seconds=0)) as fleet:
        register(fleet)
        campaign = services.campaign_create(definition=definition(waves=[5, "rest"], rate_per_second=50.0))
        with engine(tmp_path, broker):
            services.campaign_start(campaign=campaign)
            wait_state(campaign, "finished", 60)
        seen = calls(fleet)

    members = Member.objects.filter(campaign=campaign)
    assert member_states(campaign) == {"succeeded": 20}
    assert members.exclude(command__isnull=False).count() == 0
    first = [m.finished_at for m in members.filter(wave=1)]
    second = [m.released_at for m in members.filter(wave=2)]
    assert (len(first), len(second)) == (5, 15)
    assert max(first) <= min(second)  # wave 2 released only once wave 1 was judged
    assert set(seen.values()) == {1}  # each box reprovisioned once
    assert Command.objects.count() == 20


def test_a_wave_with_too_many_failing_boxes_halts_the_campaign_at_its_end(tmp_path, broker):
    # Every second box (0, 2, …) supports only HARDWARE: reprovisioning CRYPTANIUM fails there, terminally.
    with FleetThread(
        20, loopback="127.72.0.1", api_version=3, single_type_every=2, faults=Faults(provision_seconds=0)
    ) as fleet:
        made = register(fleet)
        single = {box.pk for box, sim in zip(made, fleet.boxes, strict=True) if len(sim.provision_types) == 1}
        campaign = services.campaign_create(
            definition=definition(params={"provision_type": "CRYPTANIUM"}, waves=["50%", "rest"], success_threshold=0.9)
        )
        with engine(tmp_path, broker):
            services.campaign_start(campaign=campaign)
            wait_state(campaign, "halted", 60)
            halted = Campaign.objects.get(pk=campaign.pk)

    wave1 = Member.objects.filter(campaign=campaign, wave=1)
    failed = wave1.filter(state="failed")
    assert set(failed.values_list("box_id", flat=True)) == set(wave1.values_list("box_id", flat=True)) & single
    assert failed.count() >= 2  # the hashed order spreads the single-type boxes over both waves
    assert all("reprovision" in m.error for m in failed)
    assert set(wave1.values_list("state", flat=True)) <= {"failed", "succeeded"}
    assert set(Member.objects.filter(campaign=campaign, wave=2).values_list("state", flat=True)) == {"pending"}
    ok = wave1.count() - failed.count()
    assert halted.halt_reason.startswith(f"wave 1: {ok / wave1.count():.1%} succeeded ({ok} of {wave1.count()};")


def test_the_rate_limit_holds_on_the_recorded_release_and_send_times(tmp_path, broker):
    rate = 5.0
    with FleetThread(30, loopback="127.73.0.1", api_version=3, faults=Faults(provision_seconds=0)) as fleet:
        register(fleet)
        campaign = services.campaign_create(definition=definition(waves=["rest"], rate_per_second=rate))
        with engine(tmp_path, broker):
            services.campaign_start(campaign=campaign)
            wait_state(campaign, "finished", 90)

    started = Campaign.objects.get(pk=campaign.pk).started_at
    released = sorted(Member.objects.filter(campaign=campaign).values_list("released_at", flat=True))
    sent = sorted(Command.objects.values_list("sent_at", flat=True))
    for times in (released, sent):
        # The k-th release (or send) comes no sooner than k / rate seconds after the start: buckets start empty.
        early = [
            (k, (t - started).total_seconds())
            for k, t in enumerate(times, 1)
            if (t - started).total_seconds() < k / rate - 1e-3
        ]
        assert early == []
    # And the engine keeps up with its limit (from the first release: the worker takes a while to boot).
    achieved = (len(released) - 1) / (released[-1] - released[0]).total_seconds()
    assert achieved >= rate * 0.6


def test_pause_resume_and_cancel_while_members_are_in_flight(tmp_path, broker):
    faults = Faults(latency=1.0, provision_seconds=0)
    with FleetThread(60, loopback="127.74.0.1", api_version=3, faults=faults) as fleet:
        register(fleet)
        campaign = services.campaign_create(definition=definition(waves=["rest"], rate_per_second=10.0))
        members = Member.objects.filter(campaign=campaign)
        with engine(tmp_path, broker):
            services.campaign_start(campaign=campaign)
            wait_for(lambda: members.filter(state="sent").count() >= 5, timeout=30, interval=0.1)
            services.campaign_pause(campaign=campaign)
            released_at_pause = members.exclude(state="pending").count()
            # In flight at the pause: they finish and are recorded; nothing new is released.
            wait_for(lambda: not members.filter(state="sent").exists(), timeout=30, interval=0.2)
            threading.Event().wait(2.0)
            assert members.exclude(state="pending").count() == released_at_pause
            assert set(members.exclude(state="pending").values_list("state", flat=True)) == {"succeeded"}

            services.campaign_resume(campaign=campaign)
            wait_for(lambda: members.filter(state="sent").count() >= 3, timeout=30, interval=0.1)
            services.campaign_cancel(campaign=campaign)
            in_flight = set(members.filter(state="sent").values_list("pk", flat=True))
            wait_for(lambda: not members.filter(state="sent").exists(), timeout=30, interval=0.2)
            final = state(campaign)

    assert in_flight
    assert final == "cancelled"
    assert set(members.filter(pk__in=in_flight).values_list("state", flat=True)) == {"succeeded"}
    skipped = members.filter(state="skipped")
    assert skipped.count() == 60 - members.filter(command__isnull=False).count()
    assert set(skipped.values_list("note", flat=True)) == {"campaign cancelled before it was sent"}
    assert Command.objects.count() == members.filter(command__isnull=False).count()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_a_worker_sigkill_and_a_redis_restart_mid_wave_lose_and_double_no_member(tmp_path):
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]

    def start_redis() -> subprocess.Popen:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: redis.Redis(port=port, socket_connect_timeout=0.2).ping(), timeout=10, interval=0.1,
                 ignore=(redis.ConnectionError,))  # fmt: skip
        return proc

    broker = f"redis://127.0.0.1:{port}/0"
    own_redis = start_redis()
    faults = Faults(latency=0.3, provision_seconds=0)
    try:
        with FleetThread(80, loopback="127.75.0.1", api_version=3, faults=faults) as fleet:
            register(fleet)
            campaign = services.campaign_create(definition=definition(waves=["50%", "rest"], rate_per_second=20.0))
            members = Member.objects.filter(campaign=campaign)
            worker = start_worker(tmp_path, broker, QUEUES, **WORKER_ENV)
            ticker = Ticker(broker)
            ticker.start()
            try:
                services.campaign_start(campaign=campaign)
                wait_for(lambda: members.filter(state="succeeded").count() >= 10, timeout=60, interval=0.1)
                kill_worker(worker)  # mid-wave: commands sent and unanswered, a step maybe half done
                worker = start_worker(tmp_path, broker, QUEUES, **WORKER_ENV)
                wait_for(lambda: members.filter(wave=2).exclude(state="pending").exists(), timeout=90, interval=0.2)
                own_redis.kill()  # every queued message (commands, steps, ticks) is gone with it
                own_redis.wait(timeout=10)
                own_redis = start_redis()
                wait_state(campaign, "finished", 150)
            finally:
                ticker.stop()
                kill_worker(worker)
            seen = calls(fleet)
    finally:
        own_redis.kill()
        own_redis.wait(timeout=10)

    assert member_states(campaign) == {"succeeded": 80}  # none lost
    commands = list(members.values_list("command_id", flat=True))
    assert len(set(commands)) == 80 and None not in commands  # none doubled: one command each
    assert Command.objects.count() == 80
    assert sorted(Command.objects.values_list("box_id", flat=True)) == sorted(members.values_list("box_id", flat=True))
    assert min(seen.values()) == 1  # every box reached (a command in flight at the kill may be sent twice)
