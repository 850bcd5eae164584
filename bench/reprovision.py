#!/usr/bin/env python
"""Reprovision a fleet of simulated set-top boxes through the real worker pool.

    .venv/bin/python bench/reprovision.py [--boxes 2000] [--latency 20] [--batch 50] [--pool threads]
                                          [--concurrency 64] [--loopback]

Starts, as separate processes: the device simulator (``manage.py simulate_devices``, ``--latency`` ms before each
answer; every box on its own port, or with ``--loopback`` (automatic above 10 000 boxes) every box on its own
127.x address and one port) and a Celery worker on the ``devices`` queue (Redis broker, PostgreSQL). Then:

1. the baseline: no-op tasks through the same worker pool (as many as boxes, at most 2 000): the pool's own
   throughput, one message each;
2. N reprovision commands (one per box), dispatched at once as the portal does: one ``run_commands`` message per
   ``--batch`` ids (``--batch 1``: one ``run_command`` message per command, as before batches). Each batch is
   claimed in one statement, its boxes called concurrently (``COMMAND_BATCH_THREADS``) over JSON-RPC, its outcomes
   recorded in one transaction.

Prints commands/s, p50/p99 end-to-end time (command created → outcome recorded), no-op tasks/s and the ratio, the
final states, and the peak memory (PSS) of the worker and of the simulator, with the worker's at each tenth of the
run (flat memory: the tenths stay level as the run goes on).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from celery import Celery

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import MemorySampler
from portal.lib.net import free_port_range

REPO = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/12")
DB = "portal_bench_reprovision"
LOOPBACK = "127.1.0.0"  # box i answers at 127.1.0.0 + i with --loopback


def admin_sql(*statements: str) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def env(batch_size: int = 50) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE", "REDIS", "CELERY"))}
    out.update(
        DJANGO_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=f"{PG}/{DB}",
        REDIS_URL=REDIS,
        CELERY_BROKER_URL=REDIS,
        CELERY_RESULT_BACKEND=REDIS,
        SECURE_SSL_REDIRECT="false",
        CAS_GATEWAY_URL="inprocess:",  # production names its head-end; no Conax request is made here
        LOG_LEVEL="WARNING",
        COMMAND_BATCH_SIZE=str(batch_size),
        PORTAL_VAR_DIR=str(REPO / "var" / "bench"),
    )
    return out


def load_boxes(count: int, base_port: int, loopback: bool) -> None:
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        conn.execute("INSERT INTO devices_vendor (name, created_at, updated_at) VALUES ('sim', now(), now())")
        conn.execute(
            "INSERT INTO devices_devicemodel (vendor_id, name, description, clone_rid, clone_code, clone_options,"
            " created_at, updated_at) SELECT id, 'stb', '', '', '', '[]', now(), now() FROM devices_vendor"
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
               SELECT id, CASE WHEN %(loopback)s THEN host(%(first)s::inet + substr(serial_number, 4)::int)
                               ELSE '127.0.0.1' END,
                      CASE WHEN %(loopback)s THEN %(port)s ELSE %(port)s + substr(serial_number, 4)::int END,
                      '[]', '', '', '', now(), now()
                 FROM devices_device""",
            {"loopback": loopback, "first": LOOPBACK, "port": base_port},
        )


def wait_ready(base_port: int, count: int, loopback: bool, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    last = str(ipaddress.IPv4Address(LOOPBACK) + count - 1)
    for host, port in (
        [(LOOPBACK, base_port), (last, base_port)]
        if loopback
        else [
            ("127.0.0.1", base_port),
            ("127.0.0.1", base_port + count - 1),
        ]
    ):
        while True:
            try:
                socket.create_connection((host, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("simulator did not start") from None
                time.sleep(0.2)


def noop_rate(app: Celery, count: int) -> float:
    started = time.perf_counter()
    results = [app.send_task("portal.kernel.tasks.noop", queue="devices") for _ in range(count)]
    for result in results:
        result.get(timeout=300)
    return count / (time.perf_counter() - started)


def reprovision(
    app: Celery, count: int, batch: int, worker: MemorySampler
) -> tuple[float, float, float, dict[str, int], list[int]]:
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        ids = [
            row[0]
            for row in conn.execute(
                """INSERT INTO provisioning_command (box_id, kind, params, state, attempts, last_error, created_at)
               SELECT id, 'reprovision', '{"provision_type": "HARDWARE"}', 'QUEUED', 0, '', now()
                 FROM provisioning_settopbox RETURNING id"""
            )
        ]
        started = time.perf_counter()
        with app.connection_for_write() as connection:
            for first in range(0, len(ids), batch):
                if batch == 1:
                    app.send_task("provisioning.tasks.run_command", args=[ids[first]], connection=connection)
                else:
                    chunk = ids[first : first + batch]
                    app.send_task("provisioning.tasks.run_commands", args=[chunk], connection=connection)
        tenths: list[int] = []  # the worker's memory (PSS, KiB) as each tenth of the commands finishes
        while left := conn.execute("SELECT count(*) FROM provisioning_command WHERE finished_at IS NULL").fetchone()[0]:
            while len(tenths) < 10 * (count - left) // count:
                tenths.append(worker.peak_kib)
            if time.perf_counter() - started > 1800:
                break
            time.sleep(0.1)
        tenths += [worker.peak_kib] * (10 - len(tenths))
        elapsed = time.perf_counter() - started
        p50, p99 = conn.execute(
            """SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at)),
                      percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at))
                 FROM provisioning_command WHERE finished_at IS NOT NULL"""
        ).fetchone()
        states = dict(conn.execute("SELECT state, count(*) FROM provisioning_command GROUP BY state").fetchall())
    return count / elapsed, (p50 or 0) * 1000, (p99 or 0) * 1000, states, tenths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boxes", type=int, default=2000)
    parser.add_argument("--latency", type=int, default=20, help="ms the simulated boxes wait before answering")
    parser.add_argument("--pool", default="threads", choices=["threads", "prefork", "solo"])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--batch", type=int, default=50, help="commands per message (COMMAND_BATCH_SIZE); 1: one each")
    parser.add_argument("--loopback", action="store_true", help="one 127.x address per box (default above 10 000)")
    args = parser.parse_args()
    loopback = args.loopback or args.boxes > 10_000

    admin_sql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", f"CREATE DATABASE {DB}")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=env(), check=True)
    base = free_port_range(1, start=21000) if loopback else free_port_range(args.boxes, start=21000)
    load_boxes(args.boxes, base, loopback)
    simulator = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "simulate_devices",
            "--count",
            str(args.boxes),
            "--port",
            str(base),
            "--latency",
            str(args.latency),
            "--provision-seconds",
            "0.05",
            "--api-version",
            "3",
            *(["--loopback", LOOPBACK] if loopback else []),
        ],
        cwd=REPO,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "-Q",
            "devices",
            "--pool",
            args.pool,
            "--concurrency",
            str(args.concurrency),
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "WARNING",
        ],
        cwd=REPO,
        env=env(args.batch),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    app = Celery(broker=REDIS, backend=REDIS)
    app.conf.task_default_queue = "devices"
    worker_memory, simulator_memory = MemorySampler(worker.pid), MemorySampler(simulator.pid)
    try:
        wait_ready(base, args.boxes, loopback)
        noop_rate(app, 200)  # warm-up: the pool's threads or processes, connections
        noops = noop_rate(app, min(args.boxes, 2000))
        worker_memory.start()
        simulator_memory.start()
        rate, p50, p99, states, tenths = reprovision(app, args.boxes, args.batch, worker_memory)
        worker_peak, simulator_peak = worker_memory.stop(), simulator_memory.stop()
    finally:
        for proc in (worker, simulator):
            proc.send_signal(signal.SIGTERM)
        for proc in (worker, simulator):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    admin_sql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    print(
        f"worker: celery --pool {args.pool} --concurrency {args.concurrency}; {args.boxes} simulated boxes, "
        f"{args.latency} ms latency{' (one 127.x address each)' if loopback else ''}; "
        f"{'one message per command' if args.batch == 1 else f'batches of {args.batch}'}; broker Redis; PostgreSQL"
    )
    print(f"baseline (no-op tasks through the same pool): {noops:.0f} tasks/s")
    print(f"reprovision: {rate:.0f} commands/s  end-to-end p50 {p50:.0f} ms  p99 {p99:.0f} ms")
    print(f"ratio commands/no-op: {rate / noops:.2f}")
    print(f"final states: {states}")
    print(f"peak memory (PSS): worker {worker_peak / 1024:.0f} MiB, simulator {simulator_peak / 1024:.0f} MiB")
    print("worker peak at each tenth of the run (MiB): " + " ".join(f"{kib / 1024:.0f}" for kib in tenths))


if __name__ == "__main__":
    main()
