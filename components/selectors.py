"""Reads of the provisioning components. Who sees what is the inventory's one rule (``devices.selectors.
device_visibility``: support staff every device's records, an active user those of the devices they own); the /v1/
API, the staff REST API and the admin all read through here."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Case, CharField, OuterRef, QuerySet, Subquery, When

from components.choices import ComponentType
from components.filters import (
    DeviceProvisioningFilter,
    ParameterFilter,
    ParameterGroupFilter,
    ProvisioningComponentFilter,
    SensorFilter,
)
from components.models import DeviceProvisioning, Parameter, ParameterGroup, ProvisioningComponent, Sensor
from devices.selectors import device_visibility
from portal.kernel.filters import filtered

CATALOG: dict[ComponentType, type[Sensor | Parameter | ParameterGroup]] = {
    ComponentType.SENSOR: Sensor,
    ComponentType.PARAMETER: Parameter,
    ComponentType.GROUP_PARAMETER: ParameterGroup,
}
SELECT_FIELDS = (
    "pk",
    "provisioning_id",
    "component_type",
    "component_id",
    "name",
    "active_status",
    "last_modified_by_id",
    "last_modified_datetime",
)


def components_visible(*, user: User | AnonymousUser) -> QuerySet[ProvisioningComponent]:
    return ProvisioningComponent.objects.filter(device_visibility(user=user, prefix="provisioning__device__"))


def with_catalog_name(components: QuerySet[ProvisioningComponent]) -> QuerySet[ProvisioningComponent]:
    """Each component's catalog name, in the same query (one indexed sub-select per row)."""
    names = [
        When(component_type=kind, then=Subquery(model.objects.filter(pk=OuterRef("component_id")).values("name")[:1]))
        for kind, model in CATALOG.items()
    ]
    return components.annotate(name=Case(*names, output_field=CharField()))


def component_select(*, user: User | AnonymousUser, filters: dict, limit: int) -> list[dict]:
    """The /v1/ select: exact-match filters (ids as lists), first ``limit`` rows by id, as plain dicts."""
    lookups = {
        "provisioning_component_id": "pk__in",
        "provisioning_id": "provisioning_id",
        "component_type": "component_type",
        "component_id": "component_id__in",
        "active_status": "active_status",
    }
    components = components_visible(user=user).filter(**{lookups[name]: value for name, value in filters.items()})
    return list(with_catalog_name(components).order_by("pk").values(*SELECT_FIELDS)[:limit])


def component_list(*, filters: dict | None = None) -> QuerySet[ProvisioningComponent]:
    components = with_catalog_name(ProvisioningComponent.objects.order_by("pk"))
    return filtered(ProvisioningComponentFilter, filters, components)


def components_written(
    *, provisioning_id: int, component_type: ComponentType, component_ids: list[int]
) -> QuerySet[ProvisioningComponent]:
    """The rows an insert wrote (the staff API answers them), by id, with their catalog names."""
    components = ProvisioningComponent.objects.filter(
        provisioning_id=provisioning_id, component_type=component_type, component_id__in=component_ids
    )
    return with_catalog_name(components.order_by("pk"))


def provisioning_list(*, filters: dict | None = None) -> QuerySet[DeviceProvisioning]:
    records = DeviceProvisioning.objects.select_related("device").order_by("pk")
    return filtered(DeviceProvisioningFilter, filters, records)


def sensor_list(*, filters: dict | None = None) -> QuerySet[Sensor]:
    return filtered(SensorFilter, filters, Sensor.objects.order_by("pk"))


def parameter_list(*, filters: dict | None = None) -> QuerySet[Parameter]:
    return filtered(ParameterFilter, filters, Parameter.objects.order_by("pk"))


def parameter_group_list(*, filters: dict | None = None) -> QuerySet[ParameterGroup]:
    return filtered(ParameterGroupFilter, filters, ParameterGroup.objects.order_by("pk"))
