import asyncio

from django.core.management.base import BaseCommand

from provisioning.listener import RESCAN_SECONDS, listen


class Command(BaseCommand):
    help = "Hold a provisioningchange subscription on every registered set-top box and store what they send."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--rescan", type=float, default=RESCAN_SECONDS, help="seconds between box-list reads")

    def handle(self, *args, rescan: float, **options) -> None:
        try:
            asyncio.run(listen(rescan=rescan))
        except KeyboardInterrupt:
            self.stdout.write("stopped")
