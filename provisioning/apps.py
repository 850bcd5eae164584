from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = "Set-top-box provisioning"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from provisioning import operations  # noqa: F401  (registers the box commands as bulk operations)
        from provisioning.models import SetTopBox

        # Staff change a box's Thunder address; what the portal reads from the box is not a staff change.
        auditlog.register(SetTopBox, include_fields=["device", "thunder_host", "thunder_port"])
