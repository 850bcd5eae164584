from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from webhooks import operations  # noqa: F401  (registers "redeliver" as a bulk operation)
        from webhooks.models import Endpoint

        auditlog.register(Endpoint, mask_fields=["secret_encrypted"])
