"""Run simulated set-top boxes until SIGINT or SIGTERM: ``python -m provisioning.simulator`` (no Django settings
needed) and ``manage.py simulate_devices`` take the same options, defined here once.

Box i listens on port P+i (``--port 0``: ports chosen by the OS), or, with ``--fd FD`` given once per box, on the
i-th inherited descriptor: a TCP socket the parent already bound and put in listening state, so that a restarted
simulator keeps its ports and nobody can take them in between (``--count`` then defaults to the number of fds).
Up to 20 boxes get one line each; a bigger fleet gets a summary line with the port range. The wire behaviour is
documented in ``provisioning/simulator/__init__.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from portal.lib.cli import non_negative, share
from portal.lib.servekit import StartError, inherited_socket, serve_until_signalled
from provisioning.simulator.server import Fleet
from provisioning.simulator.state import Faults
from provisioning.thunder_protocol import API_VERSIONS

LIST_LIMIT = 20
DEFAULT_PORT = 9998  # as RDK boxes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--count", type=int, help="Number of boxes (default 1, or the number of --fd).")
    parser.add_argument("--port", type=int, help=f"First port (default {DEFAULT_PORT}, as RDK boxes); 0: any.")
    parser.add_argument(
        "--fd",
        type=int,
        action="append",
        default=[],
        metavar="FD",
        help="Serve the next box on this inherited listening TCP socket (repeatable).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
    parser.add_argument(
        "--loopback",
        metavar="ADDRESS",
        help="Multi-box mode: box i at ADDRESS+i (in 127/8), every box on the one --port (e.g. 127.1.0.0).",
    )
    parser.add_argument("--latency", type=non_negative, default=0.0, help="Milliseconds before every answer.")
    parser.add_argument("--api-version", type=int, choices=API_VERSIONS, help="Fix every box's API version.")
    parser.add_argument("--busy-share", type=share, default=0.0, help="Share of calls answered with error 12.")
    parser.add_argument("--unavailable-share", type=share, default=0.0, help="Share answered with error 2.")
    parser.add_argument("--drop-share", type=share, default=0.0, help="Share of calls whose connection drops.")
    parser.add_argument("--dead-share", type=share, default=0.0, help="Share of boxes that never answer.")
    parser.add_argument("--corrupt-share", type=share, default=0.0, help="Share of runs ending CORRUPTED.")
    parser.add_argument("--provision-seconds", type=non_negative, default=0.5, help="Length of a run.")
    parser.add_argument("--seed", type=int, help="Seed for every random draw (reproducible faults).")
    parser.add_argument("--portal-url", help="Activate each box there and push its events (optional).")


def fleet_from_options(options: Mapping[str, Any]) -> Fleet:
    """The fleet the options describe; ``StartError`` for options that do not fit together."""
    sockets = [inherited_socket(fd) for fd in options["fd"]]
    if sockets and options["port"] is not None:
        raise StartError("--fd and --port exclude each other")
    if sockets and options["count"] not in (None, len(sockets)):
        raise StartError(f"--count {options['count']} does not match the {len(sockets)} --fd given")
    count = len(sockets) or (1 if options["count"] is None else options["count"])
    port = 0 if sockets else (DEFAULT_PORT if options["port"] is None else options["port"])
    if count < 1 or not 0 <= port <= 65535:
        raise StartError("--count must be at least 1 and --port between 0 and 65535")
    if options.get("loopback") and sockets:
        raise StartError("--fd and --loopback exclude each other")
    if port and not options.get("loopback") and port + count - 1 > 65535:
        raise StartError("the port range passes 65535")
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
    try:
        return Fleet(
            count,
            host=options["host"],
            base_port=port,
            api_version=options["api_version"],
            faults=faults,
            portal_url=options["portal_url"],
            sockets=sockets,
            loopback=options.get("loopback"),
        )
    except ValueError as exc:
        raise StartError(str(exc)) from exc


def run(options: Mapping[str, Any], say: Callable[[str], None]) -> None:
    """Serve the fleet until SIGINT or SIGTERM; ``say`` writes one line of output (and flushes it)."""
    fleet = fleet_from_options(options)
    asyncio.run(serve_until_signalled(fleet, announce=lambda: announce(fleet, say)))
    say("Simulator stopped.")


def announce(fleet: Fleet, say: Callable[[str], None]) -> None:
    boxes = fleet.boxes
    say(f"Simulating {len(boxes)} set-top box(es); Ctrl-C or SIGTERM stops them.")
    if len(boxes) <= LIST_LIMIT:
        for box in boxes:
            types = ",".join(box.provision_types)
            dead = "  DEAD" if box.dead else ""
            say(f"box {box.index:>2}  {box.address}  api={box.api_version}  id={box.provision_id}  types={types}{dead}")
        return
    if fleet.loopback is not None:
        say(f"addresses {boxes[0].host}..{boxes[-1].host}, all on port {boxes[0].port} (multi-box mode)")
        return
    ports = sorted(box.port for box in boxes)
    layout = "contiguous" if fleet.base_port else "chosen by the OS, not contiguous"
    say(f"ports {fleet.host}:{ports[0]}..{ports[-1]} ({layout}); {sum(box.dead for box in boxes)} dead box(es)")
    say(f"box 0 at {boxes[0].address}, box {len(boxes) - 1} at {boxes[-1].address}")


def say_line(line: str) -> None:
    sys.stdout.write(f"{line}\n")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> None:
    """The entry point: exits 1 with one line on stderr when the simulator cannot start, 0 once it stopped."""
    parser = argparse.ArgumentParser(
        prog="python -m provisioning.simulator",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    options = vars(parser.parse_args(argv))
    try:
        run(options, say_line)
    except StartError as exc:
        parser.exit(1, f"{parser.prog}: error: {exc}\n")
