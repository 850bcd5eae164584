"""Writes of the provisioning-component catalog and records. Every change of a device's components bumps its
``configuration_version`` once per request (F() expression: no lost update under concurrency)."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from components.choices import ActiveStatus, ComponentType
from components.models import DeviceProvisioning, Parameter, ParameterGroup, ProvisioningComponent, Sensor
from devices.models import Device

CATALOG = {ComponentType.SENSOR: Sensor, ComponentType.PARAMETER: Parameter,
           ComponentType.GROUP_PARAMETER: ParameterGroup}  # fmt: skip


def provisioning_for_device(*, device: Device) -> DeviceProvisioning:
    """The device's provisioning record, created on first use."""
    record, _ = DeviceProvisioning.objects.get_or_create(device=device, defaults={"name": device.serial_number})
    return record


def devices_bump_configuration(*, provisioning_ids: Iterable[int]) -> int:
    """One configuration_version step for each device whose components this request changed."""
    ids = set(provisioning_ids)
    return Device.objects.filter(provisioning__id__in=ids).update(configuration_version=F("configuration_version") + 1)


def components_set_status(*, ids: Iterable[int], active_status: int, user: AbstractBaseUser | None) -> int:
    """Activate or deactivate components (staff bulk action); returns how many changed."""
    status = ActiveStatus(active_status)
    with transaction.atomic():
        changing = ProvisioningComponent.objects.filter(pk__in=list(ids)).exclude(active_status=status)
        provisioning_ids = set(changing.values_list("provisioning_id", flat=True))
        changed = changing.update(active_status=status, last_modified_by=user, last_modified_datetime=timezone.now())
        devices_bump_configuration(provisioning_ids=provisioning_ids)
    return changed
