#!/usr/bin/env python
"""Activation throughput on the production topology, against a bare one-row read on the same server.

    .venv/bin/python bench/activation.py [--serials 100000] [--duration 20] [--workers 4] [--connections 16]

What it does: creates a throwaway PostgreSQL database, migrates it, loads N enabled serial numbers, starts the
production HTTP server (gunicorn, sync workers: on this machine a sync WSGI server serves plain Django views 3-4x
faster than an ASGI server; WebSockets go to uvicorn processes in production), then drives it with wrk from a
second process on loopback:

1. the baseline: GET of a bare view that reads one row by primary key (same server, same middleware);
2. activations: POST /provision/activate, every request a first activation of a distinct serial;
and repeats the pair ``--rounds`` times, interleaved, because the machine is noisy: the ratio compares the totals
of all rounds, so a slow spell hurts both sides alike.

It prints activations/s, p50/p99 latency, peak server memory (PSS of the gunicorn master and workers), the ratio
to the baseline, and checks that every 200 activated exactly one device. Durability is the production default
(synchronous_commit on, fsync on). Needs PostgreSQL, Redis (rate-limit counters) and wrk (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass

import psycopg
from common import (  # bench/common.py: scripts run as `python bench/<name>.py`
    PG,
    REPO,
    MemorySampler,
    drop_database,
    free_port,
    fresh_database,
    migrate,
    server_env,
    start_server,
)

DB = "portal_bench"
VENDOR, MODEL = "bench", "m1"
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non2xx: int


def env() -> dict[str, str]:
    # Limits stay on (their Redis round trip is part of the cost) but high enough for one load generator.
    return server_env(
        DB,
        ACTIVATION_RATE_LIMIT_IP=os.environ.get("BENCH_LIMIT_IP", "100000000/60"),
        ACTIVATION_RATE_LIMIT_SERIAL=os.environ.get("BENCH_LIMIT_SERIAL", "10/60"),
    )


def load_serials(count: int, threads: int) -> int:
    """Bulk SQL, not the import service: setting up 100 000 rows is not what is measured."""
    per_thread = count // threads
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        conn.execute("INSERT INTO devices_vendor (name, created_at, updated_at) VALUES (%s, now(), now())", [VENDOR])
        conn.execute(
            "INSERT INTO devices_devicemodel (vendor_id, name, description, created_at, updated_at) "
            "SELECT id, %s, '', now(), now() FROM devices_vendor WHERE name = %s",
            [MODEL, VENDOR],
        )
        conn.execute(
            """
            INSERT INTO devices_device (model_id, serial_number, extra, state, enabled_at, activation_expires_at,
                                        configuration_version, created_at, updated_at)
            SELECT m.id, format('BENCH%%s-%%s', t, lpad(n::text, 7, '0')), '', 'notactivated', now(),
                   now() + interval '1 day', 0, now(), now()
              FROM devices_devicemodel m, generate_series(0, %s) t, generate_series(1, %s) n
             WHERE m.name = %s
            """,
            [threads - 1, per_thread, MODEL],
        )
        conn.execute("ANALYZE")
        return conn.execute("SELECT min(id) FROM devices_device").fetchone()[0]


def wrk(url: str, args: argparse.Namespace, script: tuple[str, ...] = (), duration: int | None = None) -> Run:
    """wrk's own numbers; ``script`` is a Lua file and its arguments."""
    command = [
        "wrk",
        "-t",
        str(args.threads),
        "-c",
        str(args.connections),
        "-d",
        f"{duration or args.duration}s",
        "--latency",
    ]
    command += ["-s", script[0], url, "--", *script[1:]] if script else [url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    pct = {p: float(v) * UNITS[u] for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)$", out, re.MULTILINE)}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Run(rps, pct["50"], pct["99"], requests, int(non2xx.group(1)) if non2xx else 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serials", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=8, help="seconds per measured run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved baseline/activation pairs")
    # Sync workers wait for each commit's WAL flush; three per core keep both cores busy through those waits.
    parser.add_argument("--workers", type=int, default=6, help="gunicorn worker processes")
    parser.add_argument("--server-threads", type=int, default=1, help="threads per worker (gthread when > 1)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")

    fresh_database(DB)
    port = free_port()
    migrate(env())
    first_id = load_serials(args.serials, args.threads)
    server = start_server(port, args.workers, args.server_threads, env())
    base = f"http://127.0.0.1:{port}"
    try:
        wrk(f"{base}/bench/read/{first_id}", args, duration=3)  # warm-up: connections, imports, caches
        baselines, activations = [], []
        sampler = MemorySampler(server.pid)
        sampler.start()
        per_round = args.serials // args.threads // args.rounds
        for n in range(args.rounds):
            baselines.append(wrk(f"{base}/bench/read/{first_id}", args))
            script = (str(REPO / "bench" / "activation.lua"), VENDOR, MODEL, str(n * per_round))
            activations.append(wrk(base, args, script=script))
        peak_mib = sampler.stop() / 1024
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    with psycopg.connect(f"{PG}/{DB}") as conn:
        activated = conn.execute("SELECT count(*) FROM devices_device WHERE state = 'activated'").fetchone()[0]
        logged = conn.execute("SELECT count(*) FROM devices_activationattempt").fetchone()[0]
    drop_database(DB)
    report(args, baselines, activations, peak_mib, activated, logged)


def report(args, baselines: list[Run], activations: list[Run], peak_mib: float, activated: int, logged: int) -> None:
    baseline = sum(run.rps for run in baselines) / len(baselines)
    rate = sum(run.rps for run in activations) / len(activations)
    requests = sum(run.requests for run in activations)
    ok = requests - sum(run.non2xx for run in activations)
    ratio = rate / baseline
    p50 = sorted(run.p50_ms for run in activations)[len(activations) // 2]
    p99 = max(run.p99_ms for run in activations)
    kind = f"gthread {args.workers}x{args.server_threads}" if args.server_threads > 1 else f"sync x{args.workers}"
    print(
        f"server: gunicorn {kind}; load: wrk -t{args.threads} -c{args.connections}, {args.rounds} rounds of "
        f"{args.duration}s each side; {args.serials} enabled serials; PostgreSQL, synchronous_commit on"
    )
    print(
        "baseline (bare one-row read): "
        + ", ".join(f"{run.rps:.0f}" for run in baselines)
        + f" req/s; mean {baseline:.0f}"
    )
    rates = ", ".join(f"{run.rps:.0f}" for run in activations)
    print(
        f"activations: {rates} /s; mean {rate:.0f}/s  p50 {p50:.2f} ms (median round)  "
        f"p99 {p99:.2f} ms (worst round)  ({requests} requests, {requests - ok} not 200)"
    )
    print(f"peak server memory: {peak_mib:.0f} MiB PSS (master + {args.workers} workers, code preloaded)")
    print(f"ratio activations/baseline: {ratio:.2f}  (target >= 0.75; activations target >= 500/s)")
    print(f"check: {ok} x 200, {activated} devices activated, {logged} attempts logged")
    # Requests still in flight when wrk stops are served but not counted by wrk: at most one per connection.
    if not ok <= activated <= ok + args.connections * args.rounds or logged < requests:
        raise SystemExit("MISMATCH: a 200 without an activated device, or an attempt not logged")


if __name__ == "__main__":
    main()
