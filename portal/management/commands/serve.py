"""Run the embedded default: migrate, collect static files, load demo data, then serve the ASGI app (HTTP and
WebSocket) with a Celery worker and beat beside it. Ctrl-C (SIGINT) or SIGTERM stops everything it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from portal.net import free_port_range

STOP_GRACE_SECONDS = 15


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--no-demo", action="store_true", help="Do not load the demo data.")
        parser.add_argument("--boxes", type=int, default=5, help="Simulated set-top boxes for the demo (0: none).")

    def handle(self, *args, host: str, port: int, no_demo: bool, boxes: int, **options) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        demo = not no_demo and not settings.PRODUCTION
        if demo:
            call_command("demo_load")
        children = self._start(host, port)
        if demo and boxes > 0:
            children += self._start_simulator(boxes)
        self.stdout.write(f"Portal at http://{host}:{port}/admin/  (Ctrl-C stops the server and the worker)")
        self.stdout.flush()
        code = self._supervise(children)
        sys.exit(code)

    def _start(self, host: str, port: int) -> list[subprocess.Popen]:
        python = sys.executable
        worker = [
            python, "-m", "celery", "-A", "portal", "worker", "--beat",
            "--queues", "express,regular,devices", "--concurrency", "2", "--loglevel", "INFO",
            "--schedule", str(settings.VAR_DIR / "celerybeat-schedule"),
        ]  # fmt: skip
        children = []
        env = dict(os.environ)
        if settings.CAS_GATEWAY_URL == "inprocess:":
            # One head-end for every worker process (an in-process simulator per pool child would split its state).
            cas_port = free_port_range(1, start=18765)
            cas = [python, str(settings.BASE_DIR / "manage.py"), "simulate_cas", "--port", str(cas_port),
                   "--auto-register", "--latency", "200"]  # fmt: skip
            children.append(subprocess.Popen(cas))
            env["CAS_GATEWAY_URL"] = f"http://127.0.0.1:{cas_port}"
        # uvicorn's access log would print query strings, where CRM.COM clients put tokens; the portal logs its own.
        web = [
            python, "-m", "uvicorn", "portal.asgi:application", "--host", host, "--port", str(port),
            "--no-access-log", "--lifespan", "off",
        ]  # fmt: skip
        return [*children, subprocess.Popen(worker, env=env), subprocess.Popen(web)]

    def _start_simulator(self, count: int) -> list[subprocess.Popen]:
        """A few simulated set-top boxes for the demo devices, and the process that listens to their events."""
        from portal.demo import demo_register_boxes

        base = free_port_range(count)
        registered = demo_register_boxes(host="127.0.0.1", base_port=base, count=count)
        self.stdout.write(f"{registered} simulated set-top boxes on 127.0.0.1:{base}-{base + count - 1}")
        python = sys.executable
        manage = str(settings.BASE_DIR / "manage.py")
        simulator = [python, manage, "simulate_devices", "--count", str(count), "--port", str(base),
                     "--latency", "50", "--provision-seconds", "3"]  # fmt: skip
        listener = [python, manage, "listen_devices", "--rescan", "10"]
        return [subprocess.Popen(simulator), subprocess.Popen(listener)]

    def _supervise(self, children: list[subprocess.Popen]) -> int:
        stopping = {"signal": None}

        def _on_signal(signum, frame) -> None:
            stopping["signal"] = signum

        signal.signal(signal.SIGINT, _on_signal)
        signal.signal(signal.SIGTERM, _on_signal)
        while stopping["signal"] is None and all(child.poll() is None for child in children):
            time.sleep(0.2)
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        return 0 if stopping["signal"] is not None else 1
