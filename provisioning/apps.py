from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = "Set-top-box provisioning"
    default_auto_field = "django.db.models.BigAutoField"
