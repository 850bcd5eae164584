from django.contrib import admin

from components import services
from components.choices import ActiveStatus, ComponentType
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
from portal.kernel.console import ConsoleAdmin, ConsoleInline, ObjectAction, badge


@admin.register(Sensor, Parameter, ParameterGroup)
class CatalogAdmin(FilterSetAdminMixin, ConsoleAdmin):
    list_display = ("id", "name")
    FILTERSETS = {Sensor: SensorFilter, Parameter: ParameterFilter, ParameterGroup: ParameterGroupFilter}
    KINDS = {
        Sensor: ComponentType.SENSOR,
        Parameter: ComponentType.PARAMETER,
        ParameterGroup: ComponentType.GROUP_PARAMETER,
    }

    def get_readonly_fields(self, request, obj=None):
        return ("id",) if obj is not None else ()  # the operator's id is the entry's identity

    def service_save(self, request, obj, form, change):
        pk = obj.pk if change else form.cleaned_data["id"]
        return services.catalog_entry_save(kind=self.KINDS[self.model], pk=pk, name=form.cleaned_data["name"])

    def service_delete(self, request, obj):
        services.catalog_entry_delete(kind=self.KINDS[self.model], pk=obj.pk)

    def get_filterset_class(self):
        return self.FILTERSETS[self.model]

    search_fields = ("name",)


class ComponentInline(ConsoleInline):
    """Read-only here: changes go through the actions or the /v1/ API, which bump the configuration version."""

    model = ProvisioningComponent
    fields = ("component_type", "component_id", "active_status", "last_modified_by", "last_modified_datetime")
    readonly_fields = fields


@admin.register(DeviceProvisioning)
class DeviceProvisioningAdmin(FilterSetAdminMixin, ExportAdminMixin, ConsoleAdmin):
    filterset_class = DeviceProvisioningFilter
    list_display = ("pk", "name", "device", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "device__serial_number")
    autocomplete_fields = ("device",)
    list_select_related = ("device",)
    inlines = (ComponentInline,)

    def get_readonly_fields(self, request, obj=None):
        return ("device",) if obj is not None else ()

    def service_save(self, request, obj, form, change):
        data = form.cleaned_data
        device = obj.device if change else data["device"]
        return services.provisioning_save(device=device, name=data.get("name", ""), is_active=data.get("is_active"))


@admin.register(ProvisioningComponent)
class ProvisioningComponentAdmin(FilterSetAdminMixin, ExportAdminMixin, ConsoleAdmin):
    filterset_class = ProvisioningComponentFilter
    list_display = (
        "id",
        "provisioning",
        "component_type",
        "component_id",
        "status_badge",
        "last_modified_by",
        "last_modified_datetime",
    )
    # Not a filter per provisioning record: there is one per device (a list of 100 000 is no filter); search by serial.
    list_filter = ("component_type", "active_status")
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
    object_actions = (
        ObjectAction("activate", "Activate", run="activate_one", shown="is_inactive"),
        ObjectAction(
            "deactivate",
            "Deactivate",
            run="deactivate_one",
            shown="is_active",
            confirm="The device stops using this component at its next configuration read.",
        ),
    )

    @admin.display(description="Status", ordering="active_status")
    def status_badge(self, component: ProvisioningComponent) -> str:
        status = ActiveStatus(component.active_status)
        return badge("active" if status == ActiveStatus.ACTIVE else "inactive", status.label)

    def is_active(self, obj: ProvisioningComponent) -> bool:
        return obj.active_status == ActiveStatus.ACTIVE

    def is_inactive(self, obj: ProvisioningComponent) -> bool:
        return obj.active_status == ActiveStatus.INACTIVE

    def activate_one(self, request, obj, data) -> str:
        return self.run_one(request, "components.activate", obj)

    def deactivate_one(self, request, obj, data) -> str:
        return self.run_one(request, "components.deactivate", obj)

    @admin.action(description="Activate selected components", permissions=["change"])
    def activate(self, request, queryset):
        return self.bulk(request, queryset, "components.activate")

    @admin.action(description="Deactivate selected components", permissions=["change"])
    def deactivate(self, request, queryset):
        return self.bulk(request, queryset, "components.deactivate")
