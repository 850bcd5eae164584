"""Run simulated set-top boxes (``provisioning.simulator``) until SIGINT or SIGTERM.

Box i listens on port P+i (``--port 0``: ports chosen by the OS), or, with ``--fd FD`` given once per box, on the
i-th inherited descriptor: a TCP socket the parent already bound and put in listening state, so that a restarted
simulator keeps its ports and nobody can take them in between (``--count`` then defaults to the number of fds).
Up to 20 boxes get one line each; a bigger fleet gets a summary line with the port range. The wire behaviour is
documented in ``provisioning/simulator.py``.
"""

from __future__ import annotations

import asyncio
import signal
import socket

from django.core.management.base import BaseCommand, CommandError

from portal.lib.cli import non_negative, share
from provisioning.simulator import Faults, Fleet

LIST_LIMIT = 20


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser) -> None:
        parser.add_argument("--count", type=int, help="Number of boxes (default 1, or the number of --fd).")
        parser.add_argument("--port", type=int, help="First port (default 9998, as RDK boxes); 0: any.")
        parser.add_argument("--fd", type=int, action="append", default=[], metavar="FD",
                            help="Serve the next box on this inherited listening TCP socket (repeatable).")  # fmt: skip
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
        parser.add_argument("--latency", type=non_negative, default=0.0, help="Milliseconds before every answer.")
        parser.add_argument("--api-version", type=int, choices=(1, 2, 3), help="Fix every box's API version.")
        parser.add_argument("--busy-share", type=share, default=0.0, help="Share of calls answered with error 12.")
        parser.add_argument("--unavailable-share", type=share, default=0.0, help="Share answered with error 2.")
        parser.add_argument("--drop-share", type=share, default=0.0, help="Share of calls whose connection drops.")
        parser.add_argument("--dead-share", type=share, default=0.0, help="Share of boxes that never answer.")
        parser.add_argument("--corrupt-share", type=share, default=0.0, help="Share of runs ending CORRUPTED.")
        parser.add_argument("--provision-seconds", type=non_negative, default=0.5, help="Length of a run.")
        parser.add_argument("--seed", type=int, help="Seed for every random draw (reproducible faults).")
        parser.add_argument("--portal-url", help="Activate each box there and push its events (optional).")

    def handle(self, *args, **options) -> None:
        sockets = [inherited_socket(fd) for fd in options["fd"]]
        if sockets and options["port"] is not None:
            raise CommandError("--fd and --port exclude each other")
        if sockets and options["count"] not in (None, len(sockets)):
            raise CommandError(f"--count {options['count']} does not match the {len(sockets)} --fd given")
        options["count"] = len(sockets) or (1 if options["count"] is None else options["count"])
        options["port"] = 0 if sockets else (9998 if options["port"] is None else options["port"])
        if options["count"] < 1 or not 0 <= options["port"] <= 65535:
            raise CommandError("--count must be at least 1 and --port between 0 and 65535")
        if options["port"] and options["port"] + options["count"] - 1 > 65535:
            raise CommandError("the port range passes 65535")
        faults = Faults(
            latency=options["latency"] / 1000,
            busy_share=options["busy_share"],
            unavailable_share=options["unavailable_share"],
            drop_share=options["drop_share"],
            dead_share=options["dead_share"],
            corrupt_share=options["corrupt_share"],
            provision_seconds=options["provision_seconds"],
            seed=options["seed"],
        )
        fleet = Fleet(
            options["count"],
            host=options["host"],
            base_port=options["port"],
            api_version=options["api_version"],
            faults=faults,
            portal_url=options["portal_url"],
            sockets=sockets,
        )
        asyncio.run(self._serve(fleet))

    async def _serve(self, fleet: Fleet) -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        try:
            await fleet.start()
        except OSError as exc:
            raise CommandError(f"cannot listen: {exc}") from exc
        try:
            self._announce(fleet)
            await stopping.wait()
        finally:
            await fleet.stop()
        self.stdout.write("Simulator stopped.")

    def _announce(self, fleet: Fleet) -> None:
        boxes = fleet.boxes
        self.stdout.write(f"Simulating {len(boxes)} set-top box(es); Ctrl-C or SIGTERM stops them.")
        if len(boxes) <= LIST_LIMIT:
            for box in boxes:
                types = ",".join(box.provision_types)
                dead = "  DEAD" if box.dead else ""
                self.stdout.write(
                    f"box {box.index:>2}  {box.address}  api={box.api_version}  id={box.provision_id}  "
                    f"types={types}{dead}"
                )
        else:
            ports = sorted(box.port for box in boxes)
            layout = "contiguous" if fleet.base_port else "chosen by the OS, not contiguous"
            dead = sum(box.dead for box in boxes)
            self.stdout.write(f"ports {fleet.host}:{ports[0]}..{ports[-1]} ({layout}); {dead} dead box(es)")
            self.stdout.write(f"box 0 at {boxes[0].address}, box {len(boxes) - 1} at {boxes[-1].address}")
        self.stdout.flush()


def inherited_socket(fd: int) -> socket.socket:
    """The listening TCP socket behind an inherited descriptor; CommandError for anything else."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise CommandError(f"--fd {fd}: not an open socket ({exc.strerror or exc})") from exc
    try:
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        usable = sock.type == socket.SOCK_STREAM and sock.family in (socket.AF_INET, socket.AF_INET6) and listening
    except OSError:
        usable = False
    if not usable:
        sock.detach()  # the descriptor stays the parent's business
        raise CommandError(f"--fd {fd}: not a bound and listening TCP socket")
    return sock
