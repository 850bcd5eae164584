"""Run simulated set-top boxes (``provisioning.simulator``) until SIGINT or SIGTERM.

The same program as ``python -m provisioning.simulator`` (options and behaviour in ``provisioning/simulator/cli.py``),
started through Django's command line: ``manage.py serve`` runs it this way with ``--fd``.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from portal.lib.servekit import StartError
from provisioning.simulator import cli


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
