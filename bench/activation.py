#!/usr/bin/env python
"""Activation throughput on the production topology, against a bare one-row read on the same server.

    .venv/bin/python bench/activation.py [--serials 100000] [--duration 20] [--workers 4] [--connections 16]

What it does: creates a throwaway PostgreSQL database, migrates it, loads N enabled serial numbers, starts the
production HTTP server (gunicorn, sync workers: on this machine a sync WSGI server serves plain Django views 3-4x
faster than an ASGI server; WebSockets go to uvicorn processes in production), then drives it with wrk from a
second process on loopback:

1. the baseline: GET of a bare view that reads one row by primary key (same server, same middleware);
2. activations: POST /provision/activate, every request a first activation of a distinct serial;
3. the same activations through the project's nginx (deploy/nginx.conf.template, as `make prod` runs it) in front of
   the same server, when nginx is installed (``--no-nginx`` skips it): the proxy's cost as a ratio;
and repeats them ``--rounds`` times, interleaved, because the machine is noisy: the ratio compares the totals
of all rounds, so a slow spell hurts both sides alike.

It prints activations/s, p50/p99 latency, peak server memory (PSS of the gunicorn master and workers), the ratio
to the baseline, the ratio through nginx to direct, and checks that every 200 activated exactly one device.
Durability is the production default (synchronous_commit on, fsync on). Needs PostgreSQL, Redis (rate-limit
counters) and wrk (apt-get install wrk); nginx for the proxied runs (apt-get install nginx).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

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

DB = os.environ.get("BENCH_DB", "portal_bench")
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
        TRUSTED_PROXIES="127.0.0.1",  # nginx, when it is in front
    )


def start_nginx(port: int, upstream_port: int, folder: Path) -> subprocess.Popen:
    """Debian's nginx with the project's config (as `make prod` renders it) in front of the gunicorn server."""
    import sys

    sys.path.insert(0, str(REPO))
    from portal.management.commands.prod import render_nginx  # no settings needed with both values given

    conf = render_nginx(
        folder,
        host="127.0.0.1",
        port=port,
        web=f"127.0.0.1:{upstream_port}",
        asgi="127.0.0.1:9",
        static_root=str(folder / "static"),
        body_limit=32 * 1024 * 1024,
    )
    # Its access log off for the measurement (the portal logs its own lines; wrk would fill the terminal).
    conf.write_text(conf.read_text().replace("access_log /dev/stdout portal;", "access_log off;"))
    proc = subprocess.Popen(
        ["nginx", "-p", str(folder), "-c", str(conf), "-e", "stderr", "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import time

    import httpx

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("nginx did not start")


def load_serials(count: int, threads: int) -> int:
    """Bulk SQL, not the import service: setting up 100 000 rows is not what is measured."""
    per_thread = count // threads
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        conn.execute("INSERT INTO devices_vendor (name, created_at, updated_at) VALUES (%s, now(), now())", [VENDOR])
        conn.execute(
            "INSERT INTO devices_devicemodel (vendor_id, name, description, clone_rid, clone_code, clone_options,"
            " created_at, updated_at)"
            " SELECT id, %s, '', '', '', '[]', now(), now() FROM devices_vendor WHERE name = %s",
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
    if os.environ.get("BENCH_DEBUG"):
        print(out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    pct = {p: float(v) * UNITS[u] for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Run(rps, pct["50"], pct["99"], requests, int(non2xx.group(1)) if non2xx else 0)


def add_endpoint(kind: str) -> None:
    """An endpoint row by SQL; its secret is never read (no worker sends here)."""
    if kind == "none":
        return
    types = '["device.activated"]' if kind == "activated" else '["device.disabled"]'
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        conn.execute(
            "INSERT INTO webhooks_endpoint (name, url, secret_encrypted, event_types, active, created_at, updated_at)"
            " VALUES ('bench', 'http://127.0.0.1:9/hook', 'unused', %s::jsonb, true, now(), now())",
            [types],
        )


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
    parser.add_argument("--no-nginx", action="store_true", help="do not measure through nginx")
    parser.add_argument(
        "--webhook",
        choices=("none", "other", "activated"),
        default="none",
        help="a webhook endpoint: none, one taking another event type, one taking device.activated (the deliveries "
        "are queued, not sent: no worker runs)",
    )
    args = parser.parse_args()
    with_nginx = not args.no_nginx and shutil.which("nginx") is not None
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")

    fresh_database(DB)
    port = free_port()
    migrate(env())
    first_id = load_serials(args.serials, args.threads)
    add_endpoint(args.webhook)
    server = start_server(port, args.workers, args.server_threads, env())
    base = f"http://127.0.0.1:{port}"
    folder = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    proxy = None
    try:
        if with_nginx:
            nginx_port = free_port()
            proxy = start_nginx(nginx_port, port, folder)
        wrk(f"{base}/bench/read/{first_id}", args, duration=3)  # warm-up: connections, imports, caches
        baselines, activations, proxied = [], [], []
        sampler = MemorySampler(server.pid)
        sampler.start()
        runs = 2 if with_nginx else 1
        per_round = args.serials // args.threads // (args.rounds * runs)
        for n in range(args.rounds):
            baselines.append(wrk(f"{base}/bench/read/{first_id}", args))
            script = (str(REPO / "bench" / "activation.lua"), VENDOR, MODEL, str(n * runs * per_round))
            activations.append(wrk(base, args, script=script))
            if proxy is not None:
                script = (*script[:3], str((n * runs + 1) * per_round))
                proxied.append(wrk(f"http://127.0.0.1:{nginx_port}", args, script=script))
        peak_mib = sampler.stop() / 1024
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    with psycopg.connect(f"{PG}/{DB}") as conn:
        activated = conn.execute("SELECT count(*) FROM devices_device WHERE state = 'activated'").fetchone()[0]
        logged = conn.execute("SELECT count(*) FROM devices_activationattempt").fetchone()[0]
    drop_database(DB)
    if proxied:
        report_proxied(activations, proxied)
    report(args, baselines, activations, peak_mib, activated, logged, proxied)


def report_proxied(direct: list[Run], proxied: list[Run]) -> None:
    rate = sum(run.rps for run in proxied) / len(proxied)
    direct_rate = sum(run.rps for run in direct) / len(direct)
    p50 = sorted(run.p50_ms for run in proxied)[len(proxied) // 2]
    p99 = max(run.p99_ms for run in proxied)
    not_ok = sum(run.non2xx for run in proxied)
    print(
        "through nginx: "
        + ", ".join(f"{run.rps:.0f}" for run in proxied)
        + f" /s; mean {rate:.0f}/s  p50 {p50:.2f} ms  p99 {p99:.2f} ms  ({not_ok} not 200)"
    )
    print(f"ratio through nginx/direct: {rate / direct_rate:.2f}  (the proxy's cost, same server, same run)")


def report(
    args, baselines: list[Run], activations: list[Run], peak_mib: float, activated: int, logged: int, proxied: list[Run]
) -> None:
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
    # Every activation run counts, direct and through nginx. Requests still in flight when wrk stops are served but
    # not counted by wrk: at most one per connection and run.
    ok += sum(run.requests - run.non2xx for run in proxied)
    requests += sum(run.requests for run in proxied)
    print(f"check: {ok} x 200, {activated} devices activated, {logged} attempts logged")
    if not ok <= activated <= ok + args.connections * (len(activations) + len(proxied)) or logged < requests:
        raise SystemExit("MISMATCH: a 200 without an activated device, or an attempt not logged")


if __name__ == "__main__":
    main()
