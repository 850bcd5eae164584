"""Run the CAS simulator (``conax.simulator``) over HTTP until SIGINT or SIGTERM.

Prints one line with its URL once it listens (``--port 0``: the port the OS chose). Point the portal at it with
``CAS_GATEWAY_URL=<that URL>``. The protocol is documented in ``conax/simulator.py``.
"""

from __future__ import annotations

import asyncio
import signal

from django.core.management.base import BaseCommand, CommandError

from conax.simulator import CasServer, CasSimulator
from portal.cli import non_negative, share


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, required=True, help="Port to listen on; 0: any free port.")
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
        parser.add_argument("--latency", type=non_negative, default=0.0, help="Milliseconds before every answer.")
        parser.add_argument("--unavailable-share", type=share, default=0.0, help="Share answered 503 up front.")
        parser.add_argument("--lost-reply-share", type=share, default=0.0, help="Share carried out, then 503.")
        parser.add_argument("--refuse-share", type=share, default=0.0, help="Share REJECTED HEADEND_REFUSED.")
        parser.add_argument("--seed", type=int, help="Seed for every fault draw (reproducible faults).")
        parser.add_argument("--auto-register", action="store_true", help="Know every card and box when named.")

    def handle(self, *args, **options) -> None:
        if not 0 <= options["port"] <= 65535:
            raise CommandError("--port must be between 0 and 65535")
        simulator = CasSimulator(
            auto_register=options["auto_register"],
            latency_ms=options["latency"],
            unavailable_share=options["unavailable_share"],
            lost_reply_share=options["lost_reply_share"],
            refuse_share=options["refuse_share"],
            seed=options["seed"],
        )
        asyncio.run(self._serve(CasServer(simulator, host=options["host"], port=options["port"])))

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
