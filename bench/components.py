#!/usr/bin/env python
"""The /v1/ components API at fleet size, against a bare DRF endpoint reading one row on the same server.

    .venv/bin/python bench/components.py [--records 100000] [--per-record 10] [--duration 8] [--rounds 3]

Creates a throwaway PostgreSQL database with ``--records`` devices, each with a provisioning record and
``--per-record`` components (1 000 000 by default), and a catalog; starts the production HTTP server (gunicorn sync
workers, code preloaded) and logs in through ``POST /v1/Login/`` as a support-staff user. Then, ``--rounds`` times,
interleaved because the machine is noisy, for ``--duration`` seconds each with ``--clients`` client threads:

1. the baseline: ``GET /bench/drf-read/<pk>``, a bare DRF view reading one row by primary key;
2. ``select`` by ``provisioning_id`` of a random record (its components with their catalog names);
3. ``insert`` of 100 component ids into a random record (an upsert: new rows, or rewrites once a record has them).

Prints p50/p99 latency and requests/s of each, and the ratios of the p50s to the baseline's. Every answer is checked
(a select must return the record's rows, an insert ``NO_ERROR``).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import httpx
import psycopg
from common import (  # bench/common.py: scripts run as `python bench/<name>.py`
    PG,
    REPO,
    MemorySampler,
    drop_database,
    free_port,
    fresh_database,
    migrate,
    percentile,
    server_env,
    start_server,
)
from psycopg import sql

DB = os.environ.get("BENCH_DB", "portal_bench_components")  # a name of your own when several run at once
USER, PASSWORD = "bench-support", "bench-support-password-2026"
INSERT_IDS = 100


@dataclass
class Run:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    errors: int = 0

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0


def load(records: int, per_record: int) -> tuple[int, int]:
    """Bulk SQL (setting up a million rows is not what is measured); returns the first and last device ids."""
    half = max(1, per_record // 2)
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        conn.execute("INSERT INTO devices_vendor (name, created_at, updated_at) VALUES ('bench', now(), now())")
        conn.execute(
            "INSERT INTO devices_devicemodel (vendor_id, name, description, clone_rid, clone_code, clone_options, "
            "created_at, updated_at) SELECT id, 'node', '', '', '', '[]', now(), now() FROM devices_vendor"
        )
        conn.execute(
            "INSERT INTO devices_device (model_id, serial_number, extra, state, configuration_version, created_at, "
            "updated_at) SELECT m.id, format('NODE-%%s', lpad(n::text, 7, '0')), '', 'notadded', 0, now(), now() "
            "FROM devices_devicemodel m, generate_series(1, %s) n",
            [records],
        )
        conn.execute(
            "INSERT INTO components_deviceprovisioning (device_id, name, is_active, created_at) "
            "SELECT id, serial_number, true, now() FROM devices_device"
        )
        for table, count in (("sensor", 500), ("parameter", 500), ("parametergroup", 200)):
            statement = sql.SQL("INSERT INTO {} (id, name) SELECT n, %s || n FROM generate_series(1, %s) n")
            conn.execute(statement.format(sql.Identifier(f"components_{table}")), [f"{table} ", count])
        conn.execute(
            "INSERT INTO components_provisioningcomponent (provisioning_id, component_type, component_id, "
            "active_status, last_modified_datetime) SELECT p.device_id, t, c, 0, now() "
            "FROM components_deviceprovisioning p, generate_series(0, 1) t, generate_series(1, %s) c "
            "WHERE t = 0 OR c <= %s",
            [half, per_record - half],
        )
        conn.execute("VACUUM ANALYZE")
        return conn.execute("SELECT min(id), max(id) FROM devices_device").fetchone()


def create_user(env: dict[str, str]) -> None:
    script = (
        "from django.contrib.auth.models import Group, User; "
        f"u = User.objects.create_user({USER!r}, password={PASSWORD!r}, is_staff=True); "
        "u.groups.add(Group.objects.get(name='support'))"
    )
    subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=REPO, env=env, check=True)


def drive(name: str, base: str, token: str, ids: tuple[int, int], args) -> Run:
    run, lock, stop = Run(name), threading.Lock(), time.monotonic() + args.duration

    def client(seed: int) -> None:
        rnd = random.Random(seed)
        with httpx.Client(base_url=base, headers={"token": token}, timeout=30) as http:
            while time.monotonic() < stop:
                pk = rnd.randint(*ids)
                started = time.perf_counter()
                ok = one(http, name, pk, rnd, args)
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    run.latencies_ms.append(elapsed)
                    run.errors += not ok

    threads = [threading.Thread(target=client, args=(n + hash(name),)) for n in range(args.clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.seconds = time.monotonic() - began
    return run


def one(http: httpx.Client, name: str, pk: int, rnd: random.Random, args) -> bool:
    if name == "baseline":
        return http.get(f"/bench/drf-read/{pk}").json()["id"] == pk
    if name == "select":
        body = http.post("/v1/DeviceProvisioningComponents/", json={"action": "select", "provisioning_id": pk}).json()
        return len(body.get("responses", ())) >= args.per_record
    ids = rnd.sample(range(1, 201), INSERT_IDS)
    body = http.post(
        "/v1/DeviceProvisioningComponents/",
        json={"action": "insert", "provisioning_id": pk, "component_type": "Group Parameter", "component_id": ids},
    ).json()
    return body.get("error") == "NO_ERROR"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--per-record", type=int, default=10)
    parser.add_argument("--duration", type=int, default=8, help="seconds per measured run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--clients", type=int, default=4, help="client threads (one request in flight each)")
    args = parser.parse_args()

    fresh_database(DB)
    env = server_env(DB, LOG_LEVEL="WARNING")
    migrate(env)
    started = time.monotonic()
    ids = load(args.records, args.per_record)
    loaded_s = time.monotonic() - started
    create_user(env)
    port = free_port()
    server = start_server(port, args.workers, 1, env)
    base = f"http://127.0.0.1:{port}"
    try:
        token = httpx.post(f"{base}/v1/Login/", data={"username": USER, "password": PASSWORD}).json()["token"]
        sampler = MemorySampler(server.pid)
        sampler.start()
        for name in ("baseline", "select", "insert"):  # warm-up: connections, imports, caches
            drive(name, base, token, ids, argparse.Namespace(**{**vars(args), "duration": 2}))
        runs: dict[str, list[Run]] = {"baseline": [], "select": [], "insert": []}
        for _ in range(args.rounds):
            for name in runs:
                runs[name].append(drive(name, base, token, ids, args))
        peak_mib = sampler.stop() / 1024
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    with psycopg.connect(f"{PG}/{DB}") as conn:
        components = conn.execute("SELECT count(*) FROM components_provisioningcomponent").fetchone()[0]
    drop_database(DB)
    report(args, runs, peak_mib, loaded_s, components)


def report(args, runs: dict, peak_mib: float, loaded_s: float, components: int) -> None:
    print(
        f"data: {args.records} provisioning records, {args.records * args.per_record} components at start "
        f"(loaded in {loaded_s:.0f} s), {components} at the end; PostgreSQL, synchronous_commit on"
    )
    print(
        f"server: gunicorn sync x{args.workers}; load: {args.clients} client threads, {args.rounds} interleaved "
        f"rounds of {args.duration}s each"
    )
    p50, p99 = {}, {}
    for name, rounds in runs.items():
        latencies = [ms for run in rounds for ms in run.latencies_ms]
        rps = sum(run.rps for run in rounds) / len(rounds)
        errors = sum(run.errors for run in rounds)
        p50[name], p99[name] = percentile(latencies, 50), percentile(latencies, 99)
        print(
            f"{name:9} p50 {p50[name]:6.2f} ms  p99 {percentile(latencies, 99):6.2f} ms  {rps:6.0f} req/s  "
            f"({len(latencies)} requests, {errors} wrong answers)"
        )
    ratio = p99["select"] / p99["baseline"]
    print(
        f"ratio p99 select/baseline: {ratio:.2f} (target <= 2: {'PASS' if ratio <= 2 else 'FAIL'}); "
        f"p50 select/baseline: {p50['select'] / p50['baseline']:.2f}; "
        f"insert of {INSERT_IDS} ids/baseline: {p50['insert'] / p50['baseline']:.2f}"
    )
    print(f"peak server memory: {peak_mib:.0f} MiB PSS (master + {args.workers} workers)")
    if any(run.errors for rounds in runs.values() for run in rounds):
        raise SystemExit("WRONG ANSWERS: see the counts above")


if __name__ == "__main__":
    main()
