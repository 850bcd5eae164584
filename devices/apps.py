from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"
    verbose_name = "Devices"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from devices import operations  # noqa: F401  (registers the inventory's bulk operations)
        from devices.models import Device, DeviceModel, Vendor

        auditlog.register(Vendor)
        auditlog.register(DeviceModel)
        auditlog.register(Device, mask_fields=["cik_digest"])
