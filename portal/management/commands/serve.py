"""Run the embedded default: migrate, collect static files, load demo data, then serve the ASGI app (HTTP and
WebSocket) with a Celery worker and beat beside it, the CAS simulator, and simulated set-top boxes for the demo.

``serve`` binds every listening port itself (web, CAS simulator, simulated boxes) and hands the sockets to its
children as inherited file descriptors: a port is never probed and then bound by someone else, two portals on one
machine never race for one, and a restarted child serves on the very same port. It supervises its children: one
that dies is started again with backoff and one log line; only Ctrl-C (SIGINT) or SIGTERM stops everything.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from portal.kernel import queues
from portal.lib.supervise import Child, Supervisor

DEMO_CAS_LATENCY_MS = 200
# Longer than clients keep idle connections (httpx: 5 s, uvicorn's default too): with equal timeouts a client can
# reuse a connection just as the server closes it (seen in the soak as one RemoteProtocolError in 30 minutes).
KEEP_ALIVE_SECONDS = 30


def listening(host: str, port: int) -> socket.socket:
    """A bound, listening, inheritable TCP socket (port 0: any free one)."""
    from portal.lib.net import bound_socket

    try:
        sock = bound_socket(host, port)
    except OSError as exc:
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def consecutive(host: str, count: int, base: int) -> list[socket.socket]:
    """``count`` listening sockets on consecutive ports from ``base`` (0: the first free run from 20000)."""
    starts = [base] if base else range(20000, 60000 - count, count + 1)
    for start in starts:
        socks: list[socket.socket] = []
        try:
            for offset in range(count):
                socks.append(listening(host, start + offset))
            return socks
        except CommandError:
            for sock in socks:
                sock.close()
            if base:
                raise
    raise CommandError(f"no {count} free consecutive ports on {host}")


def web_command(fd: int) -> list[str]:
    """The embedded web server on an inherited listening socket (see ``Command._plan_web`` for the flags)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "portal.asgi:application",
        "--fd",
        str(fd),
        "--http",
        "h11",
        "--no-proxy-headers",
        "--no-server-header",
        "--no-date-header",
        "--no-access-log",
        "--lifespan",
        "off",
        "--timeout-keep-alive",
        str(KEEP_ALIVE_SECONDS),
    ]


@dataclass
class Plan:
    host: str
    port: int
    children: list[Child] = field(default_factory=list)
    sockets: list[socket.socket] = field(default_factory=list)


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser) -> None:
        env = os.environ.get
        parser.add_argument("--host", default=env("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(env("PORT", "8000")))
        parser.add_argument("--no-demo", action="store_true", help="Do not load the demo data.")
        parser.add_argument("--boxes", type=int, default=5, help="Simulated set-top boxes for the demo (0: none).")
        parser.add_argument(
            "--cas-port",
            type=int,
            default=int(env("CAS_SIMULATOR_PORT", "0")),
            help="Port of the CAS simulator (default: any free port; variable CAS_SIMULATOR_PORT).",
        )
        parser.add_argument(
            "--boxes-port",
            type=int,
            default=int(env("SIMULATOR_PORT", "0")),
            help="First port of the simulated boxes (default: a free run of ports; variable SIMULATOR_PORT).",
        )

    def handle(
        self, *args, host: str, port: int, no_demo: bool, boxes: int, cas_port: int, boxes_port: int, **options
    ) -> None:
        plan = Plan(host, port)
        web = listening(host, port)  # first: a port that is taken stops the start before anything else runs
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        # Metrics count afresh with every start: the folder holds one file per process (docs/operations.md#metrics).
        for stale in Path(settings.PROMETHEUS_MULTIPROC_DIR).glob("*.db"):
            stale.unlink()
        demo = not no_demo and not settings.PRODUCTION
        if demo:
            call_command("demo_load")
        env = dict(os.environ)
        if settings.CAS_GATEWAY_URL == "inprocess:":
            env["CAS_GATEWAY_URL"] = self._plan_cas(plan, cas_port)
        self._plan_worker(plan, env)
        self._plan_web(plan, web)
        if demo and boxes > 0:
            self._plan_boxes(plan, boxes, boxes_port)
        self._greet(host, port, demo)
        supervisor = Supervisor(plan.children, log=self._log)
        code = supervisor.run()
        for sock in plan.sockets:
            sock.close()
        sys.exit(code)

    def _log(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()

    def _greet(self, host: str, port: int, demo: bool) -> None:
        base = f"http://{host}:{port}"
        self._log(f"Portal at {base}/admin/  (Ctrl-C stops the server and the worker)")
        if demo:
            self._log(f"Customer pages at {base}/login/  (alice / bob, passwords above)")
        self._log(f"API docs at {base}/api/docs/")

    def _plan_cas(self, plan: Plan, port: int) -> str:
        """One head-end for every worker process (an in-process simulator per pool child would split its state)."""
        sock = listening("127.0.0.1", port)
        plan.sockets.append(sock)
        fd = sock.fileno()
        command = [
            sys.executable,
            str(settings.BASE_DIR / "manage.py"),
            "simulate_cas",
            "--fd",
            str(fd),
            "--auto-register",
            "--latency",
            str(DEMO_CAS_LATENCY_MS),
        ]
        plan.children.append(Child("cas-simulator", command, pass_fds=(fd,)))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    def _plan_worker(self, plan: Plan, env: dict[str, str]) -> None:
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--beat",
            "--queues",
            ",".join(queues.ALL),
            "--concurrency",
            "2",
            "--loglevel",
            "INFO",
            "--schedule",
            str(settings.VAR_DIR / "celerybeat-schedule"),
        ]
        plan.children.append(Child("worker", command, env=env))

    def _plan_web(self, plan: Plan, sock: socket.socket) -> None:
        """uvicorn on the socket bound above. ``--http h11`` keeps the application's header names as written
        (httptools lower-cases them; device libraries search for ``Content-Length: `` case-sensitively);
        uvicorn's own Date and Server headers would be lower case, so the portal's edge sends Date and no one
        names the server; proxy headers are the portal's business (``TRUSTED_PROXIES``), not uvicorn's; uvicorn's
        access log would print query strings, where CRM.COM clients put tokens: the portal logs its own."""
        plan.sockets.append(sock)
        fd = sock.fileno()
        plan.children.append(Child("web", web_command(fd), pass_fds=(fd,)))

    def _plan_boxes(self, plan: Plan, count: int, base: int) -> None:
        """A few simulated set-top boxes for the demo devices, and the process that listens to their events."""
        from portal.demo import demo_register_boxes

        socks = consecutive("127.0.0.1", count, base)
        plan.sockets += socks
        first = socks[0].getsockname()[1]
        registered = demo_register_boxes(host="127.0.0.1", base_port=first, count=count)
        self._log(f"{registered} simulated set-top boxes on 127.0.0.1:{first}-{first + count - 1}")
        manage = str(settings.BASE_DIR / "manage.py")
        fds = tuple(sock.fileno() for sock in socks)
        simulator = [
            sys.executable,
            manage,
            "simulate_devices",
            *(arg for fd in fds for arg in ("--fd", str(fd))),
            "--latency",
            "50",
            "--provision-seconds",
            "3",
        ]
        plan.children.append(Child("box-simulator", simulator, pass_fds=fds))
        plan.children.append(Child("listener", [sys.executable, manage, "listen_devices", "--rescan", "10"]))
