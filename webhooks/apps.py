from django.apps import AppConfig
from django.db import transaction
from django.db.models.signals import post_delete, post_save


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from webhooks import operations  # noqa: F401  (registers "redeliver" as a bulk operation)
        from webhooks.models import Endpoint

        auditlog.register(Endpoint, mask_fields=["secret_encrypted"])
        # Any save or delete of an endpoint (the services, a fixture, a shell) makes every process re-read them.
        post_save.connect(_endpoints_changed, sender=Endpoint, dispatch_uid="webhooks-endpoints-saved")
        post_delete.connect(_endpoints_changed, sender=Endpoint, dispatch_uid="webhooks-endpoints-deleted")


def _endpoints_changed(sender, using: str = "default", **kwargs) -> None:
    from webhooks.services import endpoints_changed, endpoints_forget

    endpoints_forget()  # this process at once (its own transaction sees the change), the others after the commit
    transaction.on_commit(endpoints_changed, using=using)
