#!/usr/bin/env python
"""A reprovision campaign over a fleet of simulated set-top boxes, through a real worker, with a worker SIGKILL and
a broker restart in the middle.

    PYTHONPATH=. .venv/bin/python bench/campaign.py [--boxes 100000] [--rate 1000] [--latency 20]

Separate processes: the device simulator in multi-box mode (``manage.py simulate_devices --loopback``: every box at
its own 127.x.y.z address, all on one port), a Celery worker on ``devices,regular`` (thread pool), and a private
redis-server (the broker this script restarts). PostgreSQL database ``portal_bench_campaigns``. Then:

1. baseline: N/10 no-op tasks through the same worker pool (its own throughput);
2. a campaign over every box (reprovision HARDWARE), waves ``10%`` then the rest, ``--rate`` members/s;
   ``campaign_start`` (the member freeze) is timed;
3. at 30 % done the worker is SIGKILLed and started again; at 60 % the redis-server is killed and started again
   (it keeps nothing: every queued message is lost);
4. it waits for the campaign to finish; beat's part (``campaigns.tasks.tick`` and ``provisioning.tasks.commands_sweep``)
   is played by this script, every 0.5 s and 10 s (the sweep resends every overdue QUEUED command each run: run
   more often, it floods the queue with repeats that the claims then refuse).

Prints: time to start, members/s (from the first release to the finish) and its ratio to the no-op rate and to the
limit, peak memory (PSS) of the worker and the simulator, and the checks: every member succeeded, one command per
member and per box (0 lost, 0 doubled).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import itertools
import os
import secrets
import signal
import subprocess
import sys
import threading
import time

import psycopg
import redis
from celery import Celery

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.common import PG, REPO, MemorySampler, admin_sql, free_port, stop_processes

DB = "portal_bench_campaigns"
SECRET = secrets.token_urlsafe(50)  # one for every process of the run
LOOPBACK = "127.100.0.0"


def env(broker: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE", "REDIS", "CELERY"))}
    out.update(
        DJANGO_ENV="production",
        SECRET_KEY=SECRET,
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=f"{PG}/{DB}",
        REDIS_URL=broker,
        CELERY_BROKER_URL=broker,
        CELERY_RESULT_BACKEND=broker,
        SECURE_SSL_REDIRECT="false",
        CAS_GATEWAY_URL="inprocess:",
        LOG_LEVEL="WARNING",
        PORTAL_VAR_DIR=str(REPO / "var" / "bench"),
        COMMAND_STALE_SECONDS="20",
        COMMAND_SWEEP_GRACE_SECONDS="10",
        THUNDER_TIMEOUT="5",
        CAMPAIGN_TICK_SECONDS="1",
        PYTHONPATH=str(REPO),
    )
    return out


def load_boxes(count: int, port: int) -> None:
    first = int(ipaddress.IPv4Address(LOOPBACK))
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        conn.execute("INSERT INTO devices_vendor (name, created_at, updated_at) VALUES ('sim', now(), now())")
        conn.execute(
            "INSERT INTO devices_devicemodel (vendor_id, name, description, clone_rid, clone_code, clone_options, "
            "created_at, updated_at) SELECT id, 'stb', '', '', '', '[]', now(), now() FROM devices_vendor"
        )
        conn.execute(
            """INSERT INTO devices_device (model_id, serial_number, extra, state, configuration_version, created_at,
                                           updated_at)
               SELECT m.id, format('SIM%%s', lpad(n::text, 6, '0')), '', 'notadded', 0, now(), now()
                 FROM devices_devicemodel m, generate_series(0, %s) n""",
            [count - 1],
        )
        conn.execute(
            """INSERT INTO provisioning_settopbox (device_id, thunder_host, thunder_port, platform_tokens, soc_id,
                                                   netflix_esn, provision_id, created_at, updated_at)
               SELECT id, host(%s::inet + substr(serial_number, 4)::int), %s, '[]', '', '', '', now(), now()
                 FROM devices_device""",
            [str(ipaddress.IPv4Address(first)), port],
        )


def start_redis(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        with contextlib.suppress(redis.ConnectionError):
            if redis.Redis(port=port, socket_connect_timeout=0.2).ping():
                return proc
        time.sleep(0.1)
    raise SystemExit("redis-server did not start")


def start_worker(broker: str, concurrency: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", "devices,regular", "--pool", "threads"]
    command += ["--concurrency", str(concurrency), "--without-mingle", "--without-gossip", "--loglevel", "WARNING"]
    return subprocess.Popen(
        command, cwd=REPO, env=env(broker), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip


def kill_group(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


class Ticker(threading.Thread):
    """Beat's part: the campaign tick every 0.5 s, the commands sweep every 10 s; a broker that is down is skipped."""

    def __init__(self, app: Celery) -> None:
        super().__init__(daemon=True)
        self.app, self.halt = app, threading.Event()

    def run(self) -> None:
        beat = 0
        while not self.halt.wait(0.5):
            with contextlib.suppress(Exception):  # the broker restarting: next round
                self.app.send_task("campaigns.tasks.tick", queue="regular")
                if beat % 20 == 0:
                    self.app.send_task("provisioning.tasks.commands_sweep", queue="devices")
            beat += 1


def noop_rate(app: Celery, count: int) -> float:
    started = time.perf_counter()
    results = [app.send_task("portal.kernel.tasks.noop", queue="devices") for _ in range(count)]
    for result in results:
        result.get(timeout=300)
    return count / (time.perf_counter() - started)


def counts(conn: psycopg.Connection, campaign_id: int) -> dict[str, int]:
    rows = conn.execute(
        "SELECT state, count(*) FROM campaigns_member WHERE campaign_id = %s GROUP BY state", [campaign_id]
    )
    return dict(rows.fetchall())


def freeze_only(count: int) -> None:
    """The start of a campaign over ``count`` boxes, twice (a cold and a warm cache), with nothing else running."""
    admin_sql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", f"CREATE DATABASE {DB}")
    broker = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/7")  # the start's kick goes there, unread
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=env(broker), check=True)
    load_boxes(count, 9998)
    os.environ.update(env(broker), DJANGO_SETTINGS_MODULE="portal.settings")
    import django

    django.setup()
    import resource

    from django.db import connections

    from campaigns import services

    with connections["default"].cursor() as cursor:
        cursor.execute("ANALYZE")
    for attempt in ("first", "second"):
        campaign = services.campaign_create(
            definition=services.Definition(
                name="bench", target_kind="devices", target_filters={}, action_kind="command", action="reprovision",
                params={"provision_type": "HARDWARE"}, waves=["1%", "10%", "rest"], rate_per_second=1000.0,
            )
        )  # fmt: skip
        t0 = time.perf_counter()
        services.campaign_start(campaign=campaign)
        seconds = time.perf_counter() - t0
        campaign.refresh_from_db()
        print(f"{attempt} start: {campaign.total} members frozen in {seconds:.2f} s ({campaign.total / seconds:.0f}/s)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process (the one that froze them): {peak:.0f} MiB")
    connections.close_all()
    admin_sql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    redis.Redis.from_url(broker).flushdb()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boxes", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=1000.0, help="the campaign's limit, members/s")
    parser.add_argument("--latency", type=int, default=20, help="ms the simulated boxes wait before answering")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument(
        "--freeze-only", action="store_true", help="time campaign_start (the freeze) on --boxes boxes, and stop"
    )
    args = parser.parse_args()
    if args.freeze_only:
        freeze_only(args.boxes)
        return

    redis_port, sim_port = free_port(), free_port()
    broker = f"redis://127.0.0.1:{redis_port}/0"
    admin_sql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", f"CREATE DATABASE {DB}")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=env(broker), check=True)
    load_boxes(args.boxes, sim_port)
    own_redis = start_redis(redis_port)
    simulator = subprocess.Popen(
        [sys.executable, "manage.py", "simulate_devices", "--count", str(args.boxes), "--loopback", LOOPBACK,
         "--port", str(sim_port), "--latency", str(args.latency), "--provision-seconds", "0", "--api-version", "3"],
        cwd=REPO, env=env(broker), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    started_sim = time.perf_counter()
    line = simulator.stdout.readline() if simulator.stdout else ""
    if not line.startswith("Simulating"):
        raise SystemExit(f"simulator did not start: {line!r}")
    sim_seconds = time.perf_counter() - started_sim
    worker = start_worker(broker, args.concurrency)
    sim_memory, worker_memory = MemorySampler(simulator.pid), MemorySampler(worker.pid)
    sim_memory.start()
    worker_memory.start()
    worker_peak = 0
    app = Celery(broker=broker, backend=broker)

    ticker = Ticker(app)
    try:
        os.environ.update(env(broker), DJANGO_SETTINGS_MODULE="portal.settings")
        import django

        django.setup()
        from campaigns import services

        noop_rate(app, 200)
        noops = noop_rate(app, max(1000, args.boxes // 10))
        campaign = services.campaign_create(
            definition=services.Definition(
                name="bench", target_kind="devices", target_filters={}, action_kind="command", action="reprovision",
                params={"provision_type": "HARDWARE"}, waves=["10%", "rest"], rate_per_second=args.rate,
                success_threshold=0.9,
            )
        )  # fmt: skip
        t0 = time.perf_counter()
        services.campaign_start(campaign=campaign)
        start_seconds = time.perf_counter() - t0
        ticker.start()
        killed = restarted = False
        marks: list[tuple[str, float, int]] = []  # (what happened, when, members done by then)
        deadline = time.monotonic() + args.timeout
        with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
            while time.monotonic() < deadline:
                seen = counts(conn, campaign.pk)
                done = seen.get("succeeded", 0) + seen.get("failed", 0) + seen.get("skipped", 0)
                state = conn.execute("SELECT state FROM campaigns_campaign WHERE id = %s", [campaign.pk]).fetchone()[0]
                if state in ("finished", "halted", "cancelled"):
                    marks.append(("the end", time.perf_counter(), done))
                    break
                if not marks and done:
                    marks.append(("first outcome", time.perf_counter(), done))
                if not killed and done >= args.boxes * 0.3:
                    marks.append(("worker SIGKILL", time.perf_counter(), done))
                    worker_peak = max(worker_peak, worker_memory.stop())
                    kill_group(worker)
                    worker = start_worker(broker, args.concurrency)
                    worker_memory = MemorySampler(worker.pid)
                    worker_memory.start()
                    killed = True
                    print(f"worker SIGKILLed at {done} members done: {seen}", flush=True)
                if killed and not restarted and done >= args.boxes * 0.6:
                    marks.append(("redis-server restart", time.perf_counter(), done))
                    own_redis.kill()
                    own_redis.wait(timeout=30)
                    own_redis = start_redis(redis_port)
                    restarted = True
                    print(f"redis-server restarted at {done} members done: {seen}", flush=True)
                time.sleep(0.5)
            first, last, state, total = conn.execute(
                "SELECT min(m.released_at), max(m.finished_at), c.state, c.total FROM campaigns_member m "
                "JOIN campaigns_campaign c ON c.id = m.campaign_id WHERE m.campaign_id = %s GROUP BY c.state, c.total",
                [campaign.pk],
            ).fetchone()
            final = counts(conn, campaign.pk)
            commands, distinct_members, distinct_boxes = conn.execute(
                "SELECT count(*), (SELECT count(DISTINCT command_id) FROM campaigns_member WHERE campaign_id = %s), "
                "count(DISTINCT box_id) FROM provisioning_command",
                [campaign.pk],
            ).fetchone()
            per_wave = conn.execute(
                "SELECT wave, count(*) FROM campaigns_member WHERE campaign_id = %s GROUP BY wave ORDER BY wave",
                [campaign.pk],
            ).fetchall()
    finally:
        ticker.halt.set()
        worker_peak = max(worker_peak, worker_memory.stop())
        sim_peak = sim_memory.stop()
        with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
            kill_group(worker)
        stop_processes([simulator, own_redis])
    from django.db import connections

    connections.close_all()
    admin_sql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")

    seconds = (last - first).total_seconds()
    rate = total / seconds
    print(
        f"{args.boxes} simulated boxes on one port (multi-box mode, started in {sim_seconds:.1f} s), "
        f"{args.latency} ms latency; worker: celery --pool threads --concurrency {args.concurrency}; PostgreSQL"
    )
    print(f"baseline (no-op tasks through the same pool): {noops:.0f} tasks/s")
    print(f"time to start (campaign_start: the freeze of {total} members, waves {per_wave}): {start_seconds:.2f} s")
    print(
        f"campaign: {state}; {total} members in {seconds:.1f} s = {rate:.0f} members/s "
        f"(limit {args.rate:.0f}/s: {rate / args.rate:.2f} of it); ratio members/no-op: {rate / noops:.2f}"
    )
    for (what, at, done), (until, end, later) in itertools.pairwise(marks):
        print(
            f"  from {what} to {until}: {later - done} members in {end - at:.1f} s"
            f" = {(later - done) / (end - at):.0f}/s"
        )
    print(f"peak memory (PSS): worker {worker_peak / 1024:.0f} MiB, simulator {sim_peak / 1024:.0f} MiB")
    lost = total - final.get("succeeded", 0)
    doubled = commands - distinct_members
    print(f"members: {final}; commands {commands} for {distinct_boxes} boxes; lost {lost}, doubled {doubled}")


if __name__ == "__main__":
    main()
