from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from portal.demo import DEMO_USERS, demo_load


class Command(BaseCommand):
    help = "Load the demo data (idempotent) and print the demo users' credentials. Refused in production."

    def handle(self, *args, **options) -> None:
        if settings.PRODUCTION:
            raise CommandError("demo data is for the embedded default only")
        try:
            counts = demo_load()
        except DatabaseError as exc:
            # `make run` loads the demo before it starts the portal: a demo that cannot load (one transaction, so
            # nothing half-loaded) must not keep the portal from starting with the data it already has.
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            self.stderr.write(f"Demo data not loaded ({reason}); starting with the data there.")
            return
        self.stdout.write(
            f"Demo data: {counts['vendors']} vendors, {counts['devices']} devices ({counts['created']} new)."
        )
        self.stdout.write("Demo users (username / password):")
        for user in DEMO_USERS:
            role = "support staff" if user.is_staff else "customer"
            self.stdout.write(f"  {user.username:<8} / {user.password:<20} {role}")
