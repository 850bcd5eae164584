from django.apps import AppConfig


class ConaxConfig(AppConfig):
    name = "conax"
    verbose_name = "Conditional access (Conax)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from conax import operations  # noqa: F401  (registers "process now" and "retry" as bulk operations)
        from conax.models import Service, SetTopBox, Smartcard, Subscription, Unit

        # What staff and integrations change; requests keep their own history (state, dates, outcome).
        for model in (Unit, Service, Smartcard, SetTopBox):
            auditlog.register(model)
        auditlog.register(Subscription, m2m_fields={"services"})
