"""One FilterSet per listable model: the admin, the staff API and the pages filter the same way."""

from __future__ import annotations

import django_filters as filters

from components.choices import ActiveStatus, ComponentType
from components.models import DeviceProvisioning, Parameter, ParameterGroup, ProvisioningComponent, Sensor
from portal.kernel.filters import BooleanFilter, IdFilter


class CatalogFilter(filters.FilterSet):
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name contains")

    class Meta:
        fields = ["q"]


class SensorFilter(CatalogFilter):
    class Meta(CatalogFilter.Meta):
        model = Sensor


class ParameterFilter(CatalogFilter):
    class Meta(CatalogFilter.Meta):
        model = Parameter


class ParameterGroupFilter(CatalogFilter):
    class Meta(CatalogFilter.Meta):
        model = ParameterGroup


class DeviceProvisioningFilter(filters.FilterSet):
    device_id = IdFilter(
        field_name="device_id", queryset=DeviceProvisioning.objects.all(), label="Device id (= provisioning id)"
    )
    serial_number = filters.CharFilter(field_name="device__serial_number", label="Device serial number")
    is_active = BooleanFilter(label="Active")
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name contains")

    class Meta:
        model = DeviceProvisioning
        fields = ["device_id", "serial_number", "is_active", "q"]


class ProvisioningComponentFilter(filters.FilterSet):
    provisioning_id = IdFilter(
        field_name="provisioning_id", queryset=DeviceProvisioning.objects.all(), label="Provisioning id"
    )
    provisioning = filters.CharFilter(field_name="provisioning__device__serial_number", label="Device serial number")
    component_type = filters.ChoiceFilter(choices=ComponentType.choices, label="Component type")
    component_id = filters.NumberFilter(label="Catalog id")
    active_status = filters.ChoiceFilter(choices=ActiveStatus.choices, label="Active status")
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", label="Catalog name contains")

    class Meta:
        model = ProvisioningComponent
        fields = ["provisioning_id", "provisioning", "component_type", "component_id", "active_status", "q"]
