"""Staff REST API for the components: the catalog, provisioning records and their components, with FilterSets.

Writes go through ``components.services`` (the same rules and version bumps as the /v1/ API); errors come out in
the staff API's ``{code, detail}`` format via ``portal.kernel.api.errors``.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from components import selectors, services
from components.choices import ActiveStatus, ComponentType
from components.filters import (
    DeviceProvisioningFilter,
    ParameterFilter,
    ParameterGroupFilter,
    ProvisioningComponentFilter,
    SensorFilter,
)
from components.models import DeviceProvisioning, ProvisioningComponent
from devices.models import Device
from portal.kernel.api.rest import valid
from portal.kernel.api.viewsets import CreateMixin, PatchMixin, StaffViewSet, UpdateMixin

MAX_IDS = 10_000

# --- serializers ---------------------------------------------------------------------------------------------------


class CatalogOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class CatalogCreateInput(serializers.Serializer):
    id = serializers.IntegerField(min_value=0, max_value=2**31 - 1)
    name = serializers.CharField(max_length=128)


class CatalogUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=128)


class ProvisioningOutput(serializers.ModelSerializer):
    provisioning_id = serializers.IntegerField(source="pk")
    serial_number = serializers.CharField(source="device.serial_number")

    class Meta:
        model = DeviceProvisioning
        fields = ["provisioning_id", "device_id", "serial_number", "name", "is_active", "created_at"]


class ProvisioningCreateInput(serializers.Serializer):
    device_id = serializers.PrimaryKeyRelatedField(queryset=Device.objects.all(), source="device")
    name = serializers.CharField(max_length=128, required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False)


class ProvisioningUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=128, required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False)


class ComponentOutput(serializers.ModelSerializer):
    name = serializers.CharField(allow_null=True)

    class Meta:
        model = ProvisioningComponent
        fields = [
            "id",
            "provisioning_id",
            "component_type",
            "component_id",
            "name",
            "active_status",
            "last_modified_by",
            "last_modified_datetime",
        ]


class ComponentsInsertInput(serializers.Serializer):
    provisioning_id = serializers.IntegerField(min_value=0)
    component_type = serializers.ChoiceField(choices=ComponentType.choices)
    component_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=2**31 - 1), min_length=1, max_length=MAX_IDS
    )
    active_status = serializers.ChoiceField(choices=ActiveStatus.choices, default=ActiveStatus.ACTIVE)


class SetStatusInput(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1, max_length=MAX_IDS)
    active_status = serializers.ChoiceField(choices=ActiveStatus.choices)


class CountOutput(serializers.Serializer):
    changed = serializers.IntegerField()


# --- views ---------------------------------------------------------------------------------------------------------


@extend_schema_view(
    partial_update=extend_schema(description="The same input as PUT: every field is checked (no partial input).")
)
class CatalogViewSet(CreateMixin, UpdateMixin, StaffViewSet):
    """Sensors, parameters or parameter groups (one subclass each); the id is chosen by the operator."""

    output_serializer_class = CatalogOutput
    create_input_class, update_input_class = CatalogCreateInput, CatalogUpdateInput
    kind: ComponentType

    def create_object(self, data: dict):
        return services.catalog_entry_save(kind=self.kind, pk=data["id"], name=data["name"])

    def update_object(self, entry, data: dict):
        return services.catalog_entry_save(kind=self.kind, pk=entry.pk, **data)


class SensorViewSet(CatalogViewSet):
    kind, filterset_class, selector = ComponentType.SENSOR, SensorFilter, selectors.sensor_list


class ParameterViewSet(CatalogViewSet):
    kind, filterset_class, selector = ComponentType.PARAMETER, ParameterFilter, selectors.parameter_list


class ParameterGroupViewSet(CatalogViewSet):
    kind, filterset_class = ComponentType.GROUP_PARAMETER, ParameterGroupFilter
    selector = selectors.parameter_group_list


PROVISIONING_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="= the device id")


@extend_schema_view(
    retrieve=extend_schema(parameters=[PROVISIONING_ID]), partial_update=extend_schema(parameters=[PROVISIONING_ID])
)
class ProvisioningViewSet(CreateMixin, PatchMixin, StaffViewSet):
    output_serializer_class, filterset_class = ProvisioningOutput, DeviceProvisioningFilter
    create_input_class, update_input_class = ProvisioningCreateInput, ProvisioningUpdateInput
    selector = selectors.provisioning_list

    def create_object(self, data: dict) -> DeviceProvisioning:
        return services.provisioning_save(**data)

    def update_object(self, record: DeviceProvisioning, data: dict) -> DeviceProvisioning:
        return services.provisioning_save(device=record.device, **data)


class ComponentViewSet(StaffViewSet):
    output_serializer_class, filterset_class = ComponentOutput, ProvisioningComponentFilter
    selector = selectors.component_list

    @property
    def pagination_class(self):
        # create answers the written rows as a plain list: no paginator, so that its schema says so too.
        return None if getattr(self, "action", None) == "create" else api_settings.DEFAULT_PAGINATION_CLASS

    @extend_schema(request=ComponentsInsertInput, responses={201: ComponentOutput(many=True)}, filters=False)
    def create(self, request: Request) -> Response:
        """Add components to a record, or rewrite the ones it has (the /v1/ insert's rules)."""
        data = valid(ComponentsInsertInput, request.data)
        written = {
            "provisioning_id": data["provisioning_id"],
            "component_type": ComponentType(data["component_type"]),
            "component_ids": data["component_ids"],
        }
        services.components_upsert(user=request.user, active_status=ActiveStatus(data["active_status"]), **written)
        rows = selectors.components_written(**written)
        return Response(ComponentOutput(rows, many=True).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=SetStatusInput, responses=CountOutput)
    @action(detail=False, methods=["post"], url_path="set-status")
    def set_status(self, request: Request) -> Response:
        data = valid(SetStatusInput, request.data)
        changed = services.components_set_status(
            ids=data["ids"], active_status=data["active_status"], user=request.user
        )
        return Response({"changed": changed})
