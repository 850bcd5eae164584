from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal.demo import DEMO_USERS, demo_load


class Command(BaseCommand):
    help = "Load the demo data (idempotent) and print the demo users' credentials. Refused in production."

    def handle(self, *args, **options) -> None:
        if settings.PRODUCTION:
            raise CommandError("demo data is for the embedded default only")
        counts = demo_load()
        self.stdout.write(
            f"Demo data: {counts['vendors']} vendors, {counts['devices']} devices ({counts['created']} new)."
        )
        self.stdout.write("Demo users (username / password):")
        for user in DEMO_USERS:
            role = "support staff" if user.is_staff else "customer"
            self.stdout.write(f"  {user.username:<8} / {user.password:<20} {role}")
