from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


def _sync_groups(sender: AppConfig, **kwargs: object) -> None:
    # Permissions exist once every app's post_migrate has run; the kernel is the last installed app.
    from portal.kernel.services import groups_sync

    groups_sync()


class KernelConfig(AppConfig):
    name = "portal.kernel"
    # The label the app had before the split: its tables, migrations and permissions keep their names.
    label = "portal"
    verbose_name = "Portal"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers audited models, task log hooks and the signals that revoke tokens with their credentials.
        from portal.kernel import audit, logging, services  # noqa: F401

        post_migrate.connect(_sync_groups, sender=self, dispatch_uid="portal.groups_sync")
        from portal.kernel.db.sqlite import use_library_limit

        connection_created.connect(use_library_limit, dispatch_uid="portal.sqlite_limit")
