"""Reads of the provisioning components. Who sees what: support staff see every device's records, anyone else only
the records of the devices they own; the /v1/ API, the staff REST API and the admin all read through here."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Case, CharField, OuterRef, QuerySet, Subquery, When

from components.choices import ComponentType
from components.filters import DeviceProvisioningFilter, ProvisioningComponentFilter
from components.models import DeviceProvisioning, Parameter, ParameterGroup, ProvisioningComponent, Sensor
from devices.models import Device
from portal.kernel.permissions import is_support_staff

CATALOG = {ComponentType.SENSOR: Sensor, ComponentType.PARAMETER: Parameter,
           ComponentType.GROUP_PARAMETER: ParameterGroup}  # fmt: skip
SELECT_FIELDS = ("pk", "provisioning_id", "component_type", "component_id", "name", "active_status",
                 "last_modified_by_id", "last_modified_datetime")  # fmt: skip


def devices_visible(*, user: AbstractBaseUser) -> QuerySet[Device]:
    return Device.objects.all() if is_support_staff(user) else Device.objects.filter(owner=user)


def components_visible(*, user: AbstractBaseUser) -> QuerySet[ProvisioningComponent]:
    components = ProvisioningComponent.objects.all()
    return components if is_support_staff(user) else components.filter(provisioning__device__owner=user)


def with_catalog_name(components: QuerySet[ProvisioningComponent]) -> QuerySet[ProvisioningComponent]:
    """Each component's catalog name, in the same query (one indexed sub-select per row)."""
    names = [
        When(component_type=kind, then=Subquery(model.objects.filter(pk=OuterRef("component_id")).values("name")[:1]))
        for kind, model in CATALOG.items()
    ]
    return components.annotate(name=Case(*names, output_field=CharField()))


def component_select(*, user: AbstractBaseUser, filters: dict, limit: int) -> list[dict]:
    """The /v1/ select: exact-match filters (ids as lists), first ``limit`` rows by id, as plain dicts."""
    lookups = {
        "provisioning_component_id": "pk__in", "provisioning_id": "provisioning_id", "component_type": "component_type",
        "component_id": "component_id__in", "active_status": "active_status",
    }  # fmt: skip
    components = components_visible(user=user).filter(**{lookups[name]: value for name, value in filters.items()})
    return list(with_catalog_name(components).order_by("pk").values(*SELECT_FIELDS)[:limit])


def component_list(*, filters: dict | None = None) -> QuerySet[ProvisioningComponent]:
    components = with_catalog_name(ProvisioningComponent.objects.order_by("pk"))
    return ProvisioningComponentFilter(filters or {}, components).qs


def provisioning_list(*, filters: dict | None = None) -> QuerySet[DeviceProvisioning]:
    records = DeviceProvisioning.objects.select_related("device").order_by("pk")
    return DeviceProvisioningFilter(filters or {}, records).qs
