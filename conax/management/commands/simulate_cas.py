"""Run the CAS simulator (``conax.simulator``) over HTTP until SIGINT or SIGTERM.

It listens on ``--port`` (0: any free port), or serves on ``--fd``: a TCP socket its parent already bound and made
listen, inherited (``subprocess.Popen(..., pass_fds=[fd])``). With ``--fd`` the port belongs to the parent: a
restarted simulator keeps it, connections made while none runs wait in the socket's backlog, and two portals on one
machine never race for one port. Prints one line with its URL once it serves. Point the portal at it with
``CAS_GATEWAY_URL=<that URL>``. The protocol is documented in ``conax/simulator.py``.
"""

from __future__ import annotations

import asyncio
import signal
import socket

from django.core.management.base import BaseCommand, CommandError

from conax.simulator import CasServer, CasSimulator
from portal.lib.cli import non_negative, share


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser) -> None:
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("--port", type=int, help="Port to listen on; 0: any free port.")
        where.add_argument("--fd", type=int, help="An inherited TCP socket, already bound and listening.")
        parser.add_argument("--host", help="Address to listen on with --port (default 127.0.0.1).")
        parser.add_argument("--latency", type=non_negative, default=0.0, help="Milliseconds before every answer.")
        parser.add_argument("--unavailable-share", type=share, default=0.0, help="Share answered 503 up front.")
        parser.add_argument("--lost-reply-share", type=share, default=0.0, help="Share carried out, then 503.")
        parser.add_argument("--refuse-share", type=share, default=0.0, help="Share REJECTED HEADEND_REFUSED.")
        parser.add_argument("--seed", type=int, help="Seed for every fault draw (reproducible faults).")
        parser.add_argument("--auto-register", action="store_true", help="Know every card and box when named.")

    def handle(self, *args, **options) -> None:
        simulator = CasSimulator(
            auto_register=options["auto_register"],
            latency_ms=options["latency"],
            unavailable_share=options["unavailable_share"],
            lost_reply_share=options["lost_reply_share"],
            refuse_share=options["refuse_share"],
            seed=options["seed"],
        )
        asyncio.run(self._serve(self._server(simulator, options)))

    def _server(self, simulator: CasSimulator, options: dict) -> CasServer:
        if options["fd"] is None:
            if not 0 <= options["port"] <= 65535:
                raise CommandError("--port must be between 0 and 65535")
            return CasServer(simulator, host=options["host"] or "127.0.0.1", port=options["port"])
        if options["host"] is not None:
            raise CommandError("--host goes with --port: an inherited socket is bound already")
        return CasServer(simulator, sock=inherited_socket(options["fd"]))

    async def _serve(self, server: CasServer) -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        try:
            await server.start()
        except OSError as exc:
            raise CommandError(f"cannot listen: {exc}") from exc
        try:
            self.stdout.write(f"CAS simulator listening on {server.url}; Ctrl-C or SIGTERM stops it.")
            self.stdout.flush()
            await stopping.wait()
        finally:
            await server.stop()
        self.stdout.write("CAS simulator stopped.")


def inherited_socket(fd: int) -> socket.socket:
    """The listening TCP socket open as ``fd``, or a CommandError saying what ``fd`` is instead."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise CommandError(f"--fd {fd}: not an open socket ({exc.strerror or exc})") from exc
    tcp = sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM
    if not (tcp and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)):
        sock.detach()  # not ours to close
        raise CommandError(f"--fd {fd}: not a listening TCP socket (bind it and call listen() before passing it)")
    return sock
