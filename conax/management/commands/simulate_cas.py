"""Run the CAS simulator (``conax.simulator``) over HTTP until SIGINT or SIGTERM.

The same program as ``python -m conax.simulator`` (options and behaviour in ``conax/simulator/cli.py``), started
through Django's command line: ``manage.py serve`` runs it this way with ``--fd``.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from conax.simulator import cli
from portal.lib.servekit import StartError


class Command(BaseCommand):
    help = cli.__doc__

    def add_arguments(self, parser) -> None:
        cli.add_arguments(parser)

    def handle(self, *args, **options) -> None:
        try:
            cli.run(options, self._say)
        except StartError as exc:
            raise CommandError(str(exc)) from exc

    def _say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()
