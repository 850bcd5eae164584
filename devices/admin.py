from django.contrib import admin

from devices.models import ActivationAttempt, Device, DeviceModel, Vendor


@admin.register(Vendor)
class VendorAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)


@admin.register(DeviceModel)
class DeviceModelAdmin(admin.ModelAdmin):
    list_display = ("name", "vendor", "description")
    list_filter = ("vendor",)
    search_fields = ("name", "vendor__name")
    autocomplete_fields = ("vendor",)
    list_select_related = ("vendor",)


class ActivationAttemptInline(admin.TabularInline):
    model = ActivationAttempt
    fields = ("at", "outcome", "remote_addr", "user_agent")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ("-at",)


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ("serial_number", "model", "state", "has_active_cik", "owner", "activation_expires_at")
    list_filter = ("state", "model__vendor", "model", ("owner", admin.RelatedOnlyFieldListFilter))
    search_fields = ("serial_number",)
    autocomplete_fields = ("model", "owner")
    list_select_related = ("model__vendor", "owner")
    readonly_fields = (
        "state",
        "has_active_cik",
        "enabled_at",
        "activation_expires_at",
        "activated_at",
        "disabled_at",
        "configuration_version",
        "created_at",
        "updated_at",
    )
    fields = ("model", "serial_number", "extra", "owner", *readonly_fields)
    inlines = (ActivationAttemptInline,)

    @admin.display(boolean=True, description="CIK active")
    def has_active_cik(self, obj: Device) -> bool:
        # The CIK itself is never stored in clear nor shown; only whether one is live.
        return obj.cik_digest is not None
