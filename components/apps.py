from django.apps import AppConfig


class ComponentsConfig(AppConfig):
    name = "components"
    verbose_name = "Provisioning components"
    default_auto_field = "django.db.models.BigAutoField"
