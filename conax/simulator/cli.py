"""Run the CAS simulator over HTTP until SIGINT or SIGTERM: ``python -m conax.simulator`` (no Django settings needed)
and ``manage.py simulate_cas`` take the same options, defined here once.

It listens on ``--port`` (0: any free port), or serves on ``--fd``: a TCP socket its parent already bound and made
listen, inherited (``subprocess.Popen(..., pass_fds=[fd])``). With ``--fd`` the port belongs to the parent: a
restarted simulator keeps it, connections made while none runs wait in the socket's backlog, and two portals on one
machine never race for one port. Prints one line with its URL once it serves. Point the portal at it with
``CAS_GATEWAY_URL=<that URL>``. The protocol is documented in ``conax/simulator/__init__.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from conax.simulator.server import CasServer
from conax.simulator.state import CasSimulator
from portal.lib.cli import non_negative, share
from portal.lib.servekit import StartError, inherited_socket, serve_until_signalled


def add_arguments(parser: argparse.ArgumentParser) -> None:
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


def server_from_options(options: Mapping[str, Any]) -> CasServer:
    """The server the options describe; ``StartError`` for options that do not fit together."""
    simulator = CasSimulator(
        auto_register=options["auto_register"],
        latency_ms=options["latency"],
        unavailable_share=options["unavailable_share"],
        lost_reply_share=options["lost_reply_share"],
        refuse_share=options["refuse_share"],
        seed=options["seed"],
    )
    if options["fd"] is None:
        if not 0 <= options["port"] <= 65535:
            raise StartError("--port must be between 0 and 65535")
        return CasServer(simulator, host=options["host"] or "127.0.0.1", port=options["port"])
    if options["host"] is not None:
        raise StartError("--host goes with --port: an inherited socket is bound already")
    wanted = "a listening TCP socket (bind it and call listen() before passing it)"
    return CasServer(simulator, sock=inherited_socket(options["fd"], wanted=wanted))


def run(options: Mapping[str, Any], say: Callable[[str], None]) -> None:
    """Serve until SIGINT or SIGTERM; ``say`` writes one line of output (and flushes it)."""
    server = server_from_options(options)

    def announce() -> None:
        say(f"CAS simulator listening on {server.url}; Ctrl-C or SIGTERM stops it.")

    asyncio.run(serve_until_signalled(server, announce=announce))
    say("CAS simulator stopped.")


def say_line(line: str) -> None:
    sys.stdout.write(f"{line}\n")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> None:
    """The entry point: exits 1 with one line on stderr when the simulator cannot start, 0 once it stopped."""
    parser = argparse.ArgumentParser(
        prog="python -m conax.simulator", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    options = vars(parser.parse_args(argv))
    try:
        run(options, say_line)
    except StartError as exc:
        parser.exit(1, f"{parser.prog}: error: {exc}\n")
