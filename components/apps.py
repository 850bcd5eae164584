from django.apps import AppConfig


class ComponentsConfig(AppConfig):
    name = "components"
    verbose_name = "Provisioning components"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from components import operations  # noqa: F401  (registers activate / deactivate as bulk operations)
        from components.models import DeviceProvisioning, Parameter, ParameterGroup, Sensor

        for model in (Sensor, Parameter, ParameterGroup, DeviceProvisioning):
            auditlog.register(model)
