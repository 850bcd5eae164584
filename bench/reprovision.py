#!/usr/bin/env python
"""Reprovision a fleet of simulated set-top boxes through the real worker pool.

    .venv/bin/python bench/reprovision.py [--boxes 2000] [--latency 20] [--pool threads] [--concurrency 64]

Starts, as separate processes: the device simulator (``manage.py simulate_devices``, every box on its own port,
``--latency`` ms before each answer) and a Celery worker on the ``devices`` queue (Redis broker, PostgreSQL). Then:

1. the baseline: N no-op tasks through the same worker pool — the pool's own throughput;
2. N reprovision commands (one per box), dispatched at once; each is claimed, sent over JSON-RPC, and its
   outcome recorded by the worker.

Prints commands/s, p50/p99 end-to-end time (command dispatched → outcome recorded), no-op tasks/s and the ratio,
and the final states. A box call waits ``--latency`` ms, so a pool that holds one call per process needs a process
per concurrent call; the thread pool holds many calls per process (the work is waiting on sockets), which is why
it is the default for the ``devices`` queue. ``--pool prefork --concurrency 2`` shows the difference.
"""

from __future__ import annotations

import argparse
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

from portal.lib.net import free_port_range

REPO = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/12")
DB = "portal_bench_reprovision"


def admin_sql(*statements: str) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def env() -> dict[str, str]:
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
        PORTAL_VAR_DIR=str(REPO / "var" / "bench"),
    )
    return out


def load_boxes(count: int, base_port: int) -> None:
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
               SELECT id, '127.0.0.1', %s + substr(serial_number, 4)::int, '[]', '', '', '', now(), now()
                 FROM devices_device""",
            [base_port],
        )


def wait_ready(base_port: int, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    for port in (base_port, base_port + count - 1):
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
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


def reprovision(app: Celery, count: int) -> tuple[float, float, float, dict[str, int]]:
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
        for pk in ids:
            app.send_task("provisioning.tasks.run_command", args=[pk], queue="devices")
        while conn.execute("SELECT count(*) FROM provisioning_command WHERE finished_at IS NULL").fetchone()[0]:
            if time.perf_counter() - started > 600:
                break
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
        p50, p99 = conn.execute(
            """SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at)),
                      percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at))
                 FROM provisioning_command WHERE finished_at IS NOT NULL"""
        ).fetchone()
        states = dict(conn.execute("SELECT state, count(*) FROM provisioning_command GROUP BY state").fetchall())
    return count / elapsed, (p50 or 0) * 1000, (p99 or 0) * 1000, states


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boxes", type=int, default=2000)
    parser.add_argument("--latency", type=int, default=20, help="ms the simulated boxes wait before answering")
    parser.add_argument("--pool", default="threads", choices=["threads", "prefork", "solo"])
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()

    admin_sql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", f"CREATE DATABASE {DB}")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=env(), check=True)
    base = free_port_range(args.boxes, start=21000)
    load_boxes(args.boxes, base)
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
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    app = Celery(broker=REDIS, backend=REDIS)
    try:
        wait_ready(base, args.boxes)
        noop_rate(app, 200)  # warm-up: the pool's threads or processes, connections
        noops = noop_rate(app, args.boxes)
        rate, p50, p99, states = reprovision(app, args.boxes)
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
        f"{args.latency} ms latency; broker Redis; PostgreSQL"
    )
    print(f"baseline (no-op tasks through the same pool): {noops:.0f} tasks/s")
    print(f"reprovision: {rate:.0f} commands/s  end-to-end p50 {p50:.0f} ms  p99 {p99:.0f} ms")
    print(f"ratio commands/no-op: {rate / noops:.2f}")
    print(f"final states: {states}")


if __name__ == "__main__":
    main()
