from django.contrib import admin, messages

from components import services
from components.choices import ActiveStatus
from components.filters import (
    DeviceProvisioningFilter,
    ParameterFilter,
    ParameterGroupFilter,
    ProvisioningComponentFilter,
    SensorFilter,
)
from components.models import DeviceProvisioning, Parameter, ParameterGroup, ProvisioningComponent, Sensor
from portal.kernel.adminexport import ExportAdminMixin
from portal.kernel.adminfilters import FilterSetAdminMixin


@admin.register(Sensor, Parameter, ParameterGroup)
class CatalogAdmin(FilterSetAdminMixin, admin.ModelAdmin):
    list_display = ("id", "name")
    FILTERSETS = {Sensor: SensorFilter, Parameter: ParameterFilter, ParameterGroup: ParameterGroupFilter}

    def get_filterset_class(self):
        return self.FILTERSETS[self.model]

    search_fields = ("name",)


class ComponentInline(admin.TabularInline):
    """Read-only here: changes go through the actions or the /v1/ API, which bump the configuration version."""

    model = ProvisioningComponent
    fields = ("component_type", "component_id", "active_status", "last_modified_by", "last_modified_datetime")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False


@admin.register(DeviceProvisioning)
class DeviceProvisioningAdmin(FilterSetAdminMixin, ExportAdminMixin, admin.ModelAdmin):
    filterset_class = DeviceProvisioningFilter
    list_display = ("pk", "name", "device", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "device__serial_number")
    autocomplete_fields = ("device",)
    list_select_related = ("device",)
    inlines = (ComponentInline,)


@admin.register(ProvisioningComponent)
class ProvisioningComponentAdmin(FilterSetAdminMixin, ExportAdminMixin, admin.ModelAdmin):
    filterset_class = ProvisioningComponentFilter
    list_display = (
        "id",
        "provisioning",
        "component_type",
        "component_id",
        "active_status",
        "last_modified_by",
        "last_modified_datetime",
    )
    list_filter = ("component_type", "active_status", ("provisioning", admin.RelatedOnlyFieldListFilter))
    search_fields = ("provisioning__name", "provisioning__device__serial_number")
    list_select_related = ("provisioning__device", "last_modified_by")
    readonly_fields = (
        "provisioning",
        "component_type",
        "component_id",
        "active_status",
        "last_modified_by",
        "last_modified_datetime",
    )
    actions = ("activate", "deactivate")

    def has_add_permission(self, request) -> bool:
        return False

    def _set(self, request, queryset, status: ActiveStatus) -> None:
        changed = services.components_set_status(
            ids=queryset.values_list("pk", flat=True), active_status=status, user=request.user
        )
        self.message_user(request, f"{changed} component(s) now {status.label.lower()}.", messages.SUCCESS)

    @admin.action(description="Activate selected components", permissions=["change"])
    def activate(self, request, queryset) -> None:
        self._set(request, queryset, ActiveStatus.ACTIVE)

    @admin.action(description="Deactivate selected components", permissions=["change"])
    def deactivate(self, request, queryset) -> None:
        self._set(request, queryset, ActiveStatus.INACTIVE)
