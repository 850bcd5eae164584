from django.apps import AppConfig


class ShellConfig(AppConfig):
    """The project shell as an app: its management commands (serve, demo_load). It has no models."""

    name = "portal"
    label = "shell"
    verbose_name = "Portal shell"

    def ready(self) -> None:
        # The Celery app is made current in every process that loads Django (web, workers, commands), so that
        # tasks queued anywhere go to the configured broker. Not imported by portal/__init__.py: the pure helpers
        # under portal.lib must import without Django or Celery.
        # The "migrations" check (portal.E100): a migration that would long-lock a big table while the old version
        # serves (portal/migration_safety.py).
        from portal import (
            celery,  # noqa: F401
            migration_safety,  # noqa: F401
        )
