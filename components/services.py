"""Writes of the provisioning-component catalog and records. Every request that changes a device's components bumps
its ``configuration_version`` once (F() expression: no lost update under concurrency). Each write is one transaction:
a request that fails validation part-way writes nothing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from components.choices import ActiveStatus, ComponentType
from components.exceptions import (
    AccountDoesNotExist,
    AccountPasswordIncorrect,
    CatalogEntryInUse,
    UnknownCatalogEntry,
    UnknownComponent,
    UnknownParameter,
    UnknownParameterGroup,
    UnknownProvisioning,
    UnknownSensor,
)
from components.models import DeviceProvisioning, ProvisioningComponent
from components.selectors import CATALOG, components_visible
from devices.models import Device
from devices.selectors import devices_visible
from portal.kernel import services as portal_services
from portal.kernel.authentication import api_authenticate
from portal.kernel.choices import TokenPurpose
from webhooks import events as webhook_events

UNKNOWN_CATALOG: dict[ComponentType, type[UnknownCatalogEntry]] = {
    ComponentType.SENSOR: UnknownSensor,
    ComponentType.PARAMETER: UnknownParameter,
    ComponentType.GROUP_PARAMETER: UnknownParameterGroup,
}
BATCH = 1000


@dataclass(frozen=True)
class Written:
    provisioning_id: int
    at: datetime


def provisioning_for_device(*, device: Device) -> DeviceProvisioning:
    """The device's provisioning record, created on first use."""
    record, _ = DeviceProvisioning.objects.get_or_create(device=device, defaults={"name": device.serial_number})
    return record


def devices_bump_configuration(*, provisioning_ids: Iterable[int]) -> int:
    """One configuration_version step for each device whose components this request changed."""
    ids = set(provisioning_ids)
    bumped = Device.objects.filter(pk__in=ids).update(configuration_version=F("configuration_version") + 1)
    webhook_events.components_changed(ids)  # the record's id is its device's
    return bumped


def _visible_provisioning(*, user: User, provisioning_id: int) -> DeviceProvisioning:
    device = devices_visible(user=user).filter(pk=provisioning_id).first()
    if device is None:
        raise UnknownProvisioning
    return provisioning_for_device(device=device)


def _check_catalog(*, component_type: ComponentType, component_ids: list[int]) -> None:
    known = set(CATALOG[component_type].objects.filter(pk__in=component_ids).values_list("pk", flat=True))
    unknown = [pk for pk in component_ids if pk not in known]
    if unknown:
        raise UNKNOWN_CATALOG[component_type](ids=unknown)


def components_upsert(
    *,
    user: User,
    provisioning_id: int,
    component_type: ComponentType,
    component_ids: list[int],
    active_status: ActiveStatus,
) -> Written:
    """The /v1/ insert: add the components to a device's record, or rewrite the ones it already has."""
    now = timezone.now()
    with transaction.atomic():
        record = _visible_provisioning(user=user, provisioning_id=provisioning_id)
        _check_catalog(component_type=component_type, component_ids=component_ids)
        rows = [
            ProvisioningComponent(
                provisioning=record,
                component_type=component_type,
                component_id=pk,
                active_status=active_status,
                last_modified_by=user,
                last_modified_datetime=now,
            )
            for pk in component_ids
        ]
        ProvisioningComponent.objects.bulk_create(
            rows,
            batch_size=BATCH,
            update_conflicts=True,
            unique_fields=["provisioning", "component_type", "component_id"],
            update_fields=["active_status", "last_modified_by", "last_modified_datetime"],
        )
        devices_bump_configuration(provisioning_ids=[record.pk])
    return Written(provisioning_id=record.pk, at=now)


def _set_status(
    components: QuerySet[ProvisioningComponent],
    *,
    expected: int,
    active_status: ActiveStatus,
    user: User,
    now: datetime,
) -> None:
    """Conditional update: if a row vanished since it was read, the count differs and the transaction rolls back."""
    if components.update(active_status=active_status, last_modified_by=user, last_modified_datetime=now) != expected:
        raise UnknownComponent(ids=[])


def components_update_by_triple(
    *,
    user: User,
    provisioning_id: int,
    component_type: ComponentType,
    component_ids: list[int],
    active_status: ActiveStatus,
) -> Written:
    """The /v1/ update by provisioning/type/component: every named component must exist, or nothing is written."""
    now = timezone.now()
    with transaction.atomic():
        if not devices_visible(user=user).filter(pk=provisioning_id).exists():
            raise UnknownProvisioning
        components = ProvisioningComponent.objects.filter(
            provisioning_id=provisioning_id, component_type=component_type, component_id__in=component_ids
        )
        found = set(components.values_list("component_id", flat=True))
        if missing := [pk for pk in component_ids if pk not in found]:
            raise UnknownComponent(ids=missing)
        _set_status(components, expected=len(component_ids), active_status=active_status, user=user, now=now)
        devices_bump_configuration(provisioning_ids=[provisioning_id])
    return Written(provisioning_id=provisioning_id, at=now)


def components_update_by_ids(*, user: User, ids: list[int], active_status: ActiveStatus) -> Written:
    """The /v1/ update by provisioning_component_id: all of them must exist, be visible and share one record."""
    now = timezone.now()
    with transaction.atomic():
        components = components_visible(user=user).filter(pk__in=ids)
        owners = dict(components.values_list("pk", "provisioning_id"))
        if missing := [pk for pk in ids if pk not in owners]:
            raise UnknownComponent(ids=missing)
        provisioning_id = owners[ids[0]]
        if others := [pk for pk in ids if owners[pk] != provisioning_id]:
            raise UnknownComponent(ids=others)
        rows = ProvisioningComponent.objects.filter(pk__in=ids)
        _set_status(rows, expected=len(ids), active_status=active_status, user=user, now=now)
        devices_bump_configuration(provisioning_ids=[provisioning_id])
    return Written(provisioning_id=provisioning_id, at=now)


def components_set_status(*, ids: Iterable[int], active_status: int, user: User | None) -> int:
    """Activate or deactivate components (the admin's buttons and bulk actions); returns how many changed. A
    conditional UPDATE sends no save signal, so each change is audited here."""
    return len(components_set_status_ids(ids=ids, active_status=active_status, user=user))


def components_set_status_ids(*, ids: Iterable[int], active_status: int, user: User | None) -> list[int]:
    """``components_set_status``, returning the ids of the components that changed."""
    status = ActiveStatus(active_status)
    with transaction.atomic():
        changing = ProvisioningComponent.objects.filter(pk__in=list(ids)).exclude(active_status=status)
        rows = list(changing.select_for_update().values("pk", "provisioning_id", "component_type", "component_id"))
        changed = [row["pk"] for row in rows]
        ProvisioningComponent.objects.filter(pk__in=changed).update(
            active_status=status, last_modified_by=user, last_modified_datetime=timezone.now()
        )
        devices_bump_configuration(provisioning_ids={row["provisioning_id"] for row in rows})
        for row in rows:
            component = ProvisioningComponent(
                pk=row["pk"], component_type=row["component_type"], component_id=row["component_id"]
            )
            component.provisioning_id = row["provisioning_id"]
            LogEntry.objects.log_create(
                component,
                action=LogEntry.Action.UPDATE,
                changes={"active_status": [str(ActiveStatus(1 - status).label), str(status.label)]},
                additional_data={"action": "set_status"},
            )
    return changed


def catalog_entry_save(*, kind: ComponentType, pk: int, name: str) -> object:
    """Create or rename a sensor, parameter or parameter group; the id is the operator's."""
    entry, _ = CATALOG[kind].objects.update_or_create(pk=pk, defaults={"name": name})
    return entry


def catalog_entry_delete(*, kind: ComponentType, pk: int) -> None:
    """Delete a catalog entry, unless components still refer to it (audited by the trail's delete hook)."""
    used = ProvisioningComponent.objects.filter(component_type=kind, component_id=pk).count()
    if used:
        raise CatalogEntryInUse(f"{used} component(s) still refer to {ComponentType(kind).label.lower()} {pk}")
    CATALOG[kind].objects.filter(pk=pk).delete()


def provisioning_save(*, device: Device, name: str | None = None, is_active: bool | None = None) -> DeviceProvisioning:
    """Create a device's record if needed, then rename or (de)activate it."""
    with transaction.atomic():
        record = provisioning_for_device(device=device)
        changes = {k: v for k, v in {"name": name, "is_active": is_active}.items() if v is not None}
        if changes:
            DeviceProvisioning.objects.filter(pk=record.pk).update(**changes)
            for key, value in changes.items():
                setattr(record, key, value)
    return record


MAX_PASSWORD = 256  # longer is no password of this API: refused before it is hashed


def components_login(*, request: HttpRequest, username: str, password: str) -> portal_services.IssuedToken:
    """A /v1/ token, as the original's login decides: AccountDoesNotExist unless an active account has this name
    (``""`` names none), AccountPasswordIncorrect when one has but the password is not its own. The password is
    only ever hashed, never stored or queried: one with a NUL is just a wrong one."""
    if not username or len(password) > MAX_PASSWORD:
        raise AccountDoesNotExist
    user = api_authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        exists = get_user_model().objects.filter(username=username, is_active=True).exists()
        raise AccountPasswordIncorrect if exists else AccountDoesNotExist
    return portal_services.token_issue(user=user, purpose=TokenPurpose.COMPONENTS)
