#!/usr/bin/env python
"""Webhook deliveries per second to a local receiver, against a bare Celery no-op rate through the same worker.

    .venv/bin/python bench/webhooks.py [--deliveries 2000] [--objects 200] [--concurrency 4] [--pool prefork]

Creates a throwaway PostgreSQL database, one endpoint (a receiving HTTP server in this process, on loopback,
answering 204 at once) and ``--deliveries`` pending deliveries spread over ``--objects`` objects (so the per-object
ordering is exercised), and starts one Celery worker on ``regular`` (Redis broker). In one run:

1. baseline: ``--deliveries`` no-op tasks (``portal.kernel.tasks.noop``) through the worker, results awaited;
2. deliveries: the messages ``webhooks.services.emit`` queues for them after its commit (one
   ``webhooks.tasks.deliver_batch`` per WEBHOOK_BATCH_SIZE), sent at once; the rate is deliveries / (the time until
   every one is DELIVERED). A batch claims only each object's oldest pending delivery; a full batch asks for another
   at once and every batch for one more after recording, as in production. Every event must reach the receiver
   exactly once with a valid signature (exit non-zero otherwise).

Prints both rates and their ratio (deliveries/s ÷ no-op tasks/s): what signing and one HTTP POST per delivery, one
claim and one record per batch cost over Celery's own round trip per task.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from common import REDIS, REPO, drop_database, fresh_database, migrate, server_env, stop_processes

DB = os.environ.get("BENCH_WEBHOOKS_DB", "bench_webhooks")  # a name of its own per engineer on a shared machine
SECRET = secrets.token_urlsafe(24)


class Receiver:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ids: list[str] = []
        self.bad = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                from webhooks import signing

                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = signing.verify(SECRET, self.headers.get(signing.HEADER, ""), body, now=int(time.time()))
                with receiver.lock:
                    receiver.ids.append(self.headers["X-Portal-Event-Id"])
                    receiver.bad += not ok
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def start_worker(args, env: dict[str, str], log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", "regular", "--pool", args.pool]
    command += ["--concurrency", str(args.concurrency), "--without-mingle", "--without-gossip", "--loglevel", "WARNING"]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def noop_rate(app, count: int) -> float:
    started = time.perf_counter()
    results = [app.send_task("portal.kernel.tasks.noop", queue="regular") for _ in range(count)]
    for result in results:
        result.get(timeout=300)
    return count / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--pool", default="prefork")
    args = parser.parse_args()

    env = server_env(DB, CELERY_RESULT_BACKEND=REDIS, WEBHOOK_TIMEOUT="5")
    fresh_database(DB)
    procs: list[subprocess.Popen] = []
    try:
        migrate(env)
        os.environ.update(env)
        sys.path.insert(0, str(REPO))
        import django

        django.setup()
        from django.utils import timezone

        from portal.celery import app
        from webhooks import services
        from webhooks.models import Delivery

        receiver = Receiver()
        endpoint = services.endpoint_save(
            name="bench", url=receiver.url, event_types=["device.disabled"], secret=SECRET
        )
        log = REPO / "var" / "bench" / "webhooks-worker.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        procs.append(start_worker(args, env, log))
        noop_rate(app, 50)  # the worker is up and warm

        noop = noop_rate(app, args.deliveries)

        now = timezone.now()
        rows = [
            Delivery(
                event_type="device.disabled",
                object_key=f"device:{n % args.objects}",
                payload={"id": f"e{n}", "type": "device.disabled", "data": {"device_id": n % args.objects}},
                endpoint=endpoint,
                next_attempt_at=now,
            )
            for n in range(args.deliveries)
        ]
        ids = [row.pk for row in Delivery.objects.bulk_create(rows)]
        started = time.perf_counter()
        from django.conf import settings

        for _ in range(-(-len(ids) // settings.WEBHOOK_BATCH_SIZE)):  # as emit's _queue does
            app.send_task("webhooks.tasks.deliver_batch", queue="regular")
        while Delivery.objects.filter(state="PENDING").exists():
            if time.perf_counter() - started > 600:
                print("FAIL: deliveries still pending after 600 s")
                return 1
            time.sleep(0.05)
        rate = args.deliveries / (time.perf_counter() - started)

        expected = {str(e) for e in Delivery.objects.values_list("event_id", flat=True)}
        print(f"machine: {os.cpu_count()} cores; celery --pool {args.pool} --concurrency {args.concurrency}")
        print(f"baseline: no-op tasks through the same worker: {noop:.0f} tasks/s")
        print(f"deliveries ({args.deliveries} over {args.objects} objects, signed, to a local receiver): {rate:.0f}/s")
        print(f"deliveries/s / no-op tasks/s = {rate / noop:.2f}")
        if set(receiver.ids) != expected or len(receiver.ids) != len(expected) or receiver.bad:
            print(
                f"FAIL: received {len(receiver.ids)} ({len(set(receiver.ids))} distinct), {receiver.bad} bad signatures"
            )
            return 1
        print("every event received exactly once, every signature valid")
        return 0
    finally:
        stop_processes(procs)
        from django.db import connections

        connections.close_all()
        drop_database(DB)


if __name__ == "__main__":
    sys.exit(main())
