from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"
    verbose_name = "Devices"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from devices import operations  # noqa: F401  (registers the inventory's bulk operations)
        from devices.models import Content, Device, DeviceModel, SerialRange, Vendor, VendorToken

        auditlog.register(Vendor)
        auditlog.register(DeviceModel)
        auditlog.register(Device, mask_fields=["cik_digest"])
        auditlog.register(VendorToken, exclude_fields=["last_used_at"], mask_fields=["digest"])
        auditlog.register(SerialRange)
        auditlog.register(Content, m2m_fields={"allowed"})
