#!/usr/bin/env python
"""Live updates at fleet scale: WebSocket clients on device pages across two ASGI processes, events through
channels-redis.

    .venv/bin/python bench/live.py [--clients 1000] [--rate 200] [--duration 30]

Creates a throwaway PostgreSQL database with ``--clients`` devices owned by one customer, logs that customer in
through ``/login/`` (one session cookie for every client), starts two uvicorn processes serving ``portal.asgi`` with
channels-redis as their layer, and connects the clients to ``/ws/devices/<id>/``, half to each process (the real
consumer: session authentication, Origin check, the per-device access check, group join). Then a publisher sends
``--rate`` ``device.event`` messages a second for ``--duration`` seconds through channels-redis, each to one device's
group (round robin), stamped with its send time, exactly as ``portal.kernel.live.publish`` sends them.

Prints delivered/sent, p50/p99 publish→client latency, and the servers' peak memory (PSS), and the ratio of the
p99 to a baseline measured in the same run: the same publisher and rate to bare channels-redis receivers (one layer
instance, a channel per device, no ASGI server, no WebSocket). Target: nothing lost while connected, p99 < 250 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import httpx
import psycopg
import redis
import websockets
from channels_redis.core import RedisChannelLayer
from common import (  # bench/common.py: scripts run as `python bench/<name>.py`
    PG,
    REDIS,
    REPO,
    MemorySampler,
    drop_database,
    free_port,
    fresh_database,
    migrate,
    percentile,
    server_env,
)

DB = "portal_bench_live"
USER, PASSWORD = "bench-customer", "bench-customer-password-2026"
LAYER_REDIS = REDIS.rsplit("/", 1)[0] + "/11"


def load(clients: int, env: dict[str, str]) -> list[int]:
    script = (
        "from django.contrib.auth.models import Group, User; "
        f"u = User.objects.create_user({USER!r}, password={PASSWORD!r}); "
        "u.groups.add(Group.objects.get(name='customers'))"
    )
    subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=REPO, env=env, check=True)
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        conn.execute("INSERT INTO devices_vendor (name, created_at, updated_at) VALUES ('bench', now(), now())")
        conn.execute(
            "INSERT INTO devices_devicemodel (vendor_id, name, description, created_at, updated_at) "
            "SELECT id, 'stb', '', now(), now() FROM devices_vendor"
        )
        conn.execute(
            "INSERT INTO devices_device (model_id, serial_number, extra, state, configuration_version, owner_id, "
            "created_at, updated_at) SELECT m.id, format('LIVE-%%s', lpad(n::text, 6, '0')), '', 'notadded', 0, "
            "(SELECT id FROM auth_user WHERE username = %s), now(), now() "
            "FROM devices_devicemodel m, generate_series(1, %s) n",
            [USER, clients],
        )
        return [row[0] for row in conn.execute("SELECT id FROM devices_device ORDER BY id")]


def start_asgi(port: int, env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "portal.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--lifespan",
            "off",
            "--ws-max-queue",
            "64",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("uvicorn did not start") from None
            time.sleep(0.2)


def session_cookie(base: str) -> str:
    with httpx.Client(base_url=base) as http:
        page = http.get("/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        http.post(
            "/login/",
            data={"username": USER, "password": PASSWORD, "csrfmiddlewaretoken": token},
            headers={"Referer": base + "/login/"},
        )
        return f"sessionid={http.cookies['sessionid']}"


class Received:
    def __init__(self) -> None:
        self.latencies_ms: list[float] = []
        self.count = 0
        self.disconnects = 0


async def client(port: int, device_id: int, cookie: str, received: Received, ready: asyncio.Event, go) -> None:
    headers = [("Cookie", cookie), ("Origin", f"http://127.0.0.1:{port}")]
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/ws/devices/{device_id}/", additional_headers=headers, open_timeout=60, max_queue=None
    ) as socket:
        go()
        try:
            async for message in socket:
                now = time.time()
                sent = datetime.fromisoformat(_field(message, "at")).timestamp()
                received.latencies_ms.append((now - sent) * 1000)
                received.count += 1
        except websockets.ConnectionClosed:
            received.disconnects += 1


def _field(message: str, name: str) -> str:
    return re.search(rf'"{name}": "([^"]+)"', message).group(1)


async def publish(ids: list[int], rate: int, duration: int, send) -> int:
    """``rate`` events a second for ``duration`` seconds, in 10 ms ticks, round robin over the devices."""
    sent, started, tick = 0, time.monotonic(), 0.01
    total = rate * duration
    while sent < total:
        due = min(total, int((time.monotonic() - started) * rate) + 1)
        batch = []
        while sent < due:
            device_id = ids[sent % len(ids)]
            event = {
                "type": "device.event",
                "device_id": device_id,
                "event": "provisioningchange",
                "status": 200,
                "at": datetime.now(UTC).isoformat(),
            }
            batch.append(send(device_id, event))
            sent += 1
        await asyncio.gather(*batch)
        await asyncio.sleep(tick)
    return sent


async def run_asgi(ports: list[int], ids: list[int], cookie: str, args) -> tuple[int, Received]:
    received, connected = Received(), 0
    all_ready = asyncio.Event()

    def go() -> None:
        nonlocal connected
        connected += 1
        if connected == len(ids):
            all_ready.set()

    tasks = []
    for n, device_id in enumerate(ids):
        tasks.append(asyncio.create_task(client(ports[n % 2], device_id, cookie, received, all_ready, go)))
        if n % 50 == 49:
            await asyncio.sleep(0.05)  # connect in waves, as pages open
    await asyncio.wait_for(all_ready.wait(), timeout=120)
    await asyncio.sleep(1)  # every consumer has joined its group
    layer = RedisChannelLayer(hosts=[LAYER_REDIS])
    sent = await publish(ids, args.rate, args.duration, lambda pk, event: layer.group_send(f"device.{pk}", event))
    await asyncio.sleep(2)  # let the last events arrive
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await layer.flush()
    return sent, received


async def run_bare(ids: list[int], args) -> tuple[int, Received]:
    """Baseline: bare channels-redis receivers, one layer instance, a channel per device, no server."""
    received = Received()
    prefix = f"bench-bare-{os.getpid()}"
    receiver = RedisChannelLayer(hosts=[LAYER_REDIS], prefix=prefix)
    sender = RedisChannelLayer(hosts=[LAYER_REDIS], prefix=prefix)
    channels = {}
    for pk in ids:
        channels[pk] = await receiver.new_channel()
        await receiver.group_add(f"device.{pk}", channels[pk])

    async def listen(channel: str) -> None:
        while True:
            message = await receiver.receive(channel)
            received.latencies_ms.append((time.time() - datetime.fromisoformat(message["at"]).timestamp()) * 1000)
            received.count += 1

    listeners = [asyncio.create_task(listen(channel)) for channel in channels.values()]
    sent = await publish(ids, args.rate, args.duration, lambda pk, event: sender.group_send(f"device.{pk}", event))
    await asyncio.sleep(2)
    for task in listeners:
        task.cancel()
    await asyncio.gather(*listeners, return_exceptions=True)
    await sender.flush()
    return sent, received


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=200, help="events a second")
    parser.add_argument("--duration", type=int, default=30, help="seconds of publishing")
    args = parser.parse_args()

    redis.Redis.from_url(LAYER_REDIS).flushdb()
    fresh_database(DB)
    # The embedded profile on PostgreSQL and Redis: production's secure-only cookies would need HTTPS on loopback.
    env = {
        **server_env(DB, LOG_LEVEL="WARNING"),
        "REDIS_URL": LAYER_REDIS,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DJANGO_ENV": "embedded",
    }
    migrate(env)
    ids = load(args.clients, env)
    ports = [free_port(), free_port()]
    servers = [start_asgi(port, env) for port in ports]
    samplers = [MemorySampler(server.pid) for server in servers]
    try:
        cookie = session_cookie(f"http://127.0.0.1:{ports[0]}")
        baseline_sent, baseline = asyncio.run(run_bare(ids, args))
        for sampler in samplers:
            sampler.start()
        sent, received = asyncio.run(run_asgi(ports, ids, cookie, args))
        peak_mib = sum(sampler.stop() for sampler in samplers) / 1024
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            server.wait(timeout=30)
    drop_database(DB)
    redis.Redis.from_url(LAYER_REDIS).flushdb()
    report(args, sent, received, baseline_sent, baseline, peak_mib)


def report(args, sent, received, baseline_sent, baseline, peak_mib) -> None:
    p50, p99 = percentile(received.latencies_ms, 50), percentile(received.latencies_ms, 99)
    b50, b99 = percentile(baseline.latencies_ms, 50), percentile(baseline.latencies_ms, 99)
    print(
        f"setup: {args.clients} WebSocket clients on /ws/devices/<id>/ across 2 uvicorn processes; "
        f"{args.rate} events/s for {args.duration} s through channels-redis (Redis), PostgreSQL"
    )
    print(
        f"baseline (bare channels-redis receivers): delivered {baseline.count}/{baseline_sent}  "
        f"p50 {b50:.1f} ms  p99 {b99:.1f} ms"
    )
    print(
        f"live pages: delivered {received.count}/{sent}  p50 {p50:.1f} ms  p99 {p99:.1f} ms  "
        f"(disconnects while publishing: {received.disconnects})"
    )
    print(f"ratio p99 live/baseline: {p99 / b99:.2f}  (target: nothing lost, p99 < 250 ms)")
    print(f"peak server memory: {peak_mib:.0f} MiB PSS (2 uvicorn processes)")
    if received.count != sent or received.disconnects:
        raise SystemExit("LOST: not every event reached its connected client")


if __name__ == "__main__":
    main()
