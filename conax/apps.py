from django.apps import AppConfig


class ConaxConfig(AppConfig):
    name = "conax"
    verbose_name = "Conditional access (Conax)"
    default_auto_field = "django.db.models.BigAutoField"
