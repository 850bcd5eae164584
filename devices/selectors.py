"""Reads of the inventory, and the one rule of who may see a device. List selectors apply the app's FilterSets
through ``portal.kernel.filters.filtered`` (an invalid value is an error), so every interface filters alike."""

from __future__ import annotations

import hashlib
from datetime import datetime

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet

from devices.choices import ActivationState
from devices.filters import ActivationAttemptFilter, DeviceFilter, DeviceModelFilter, VendorFilter, VendorTokenFilter
from devices.models import ActivationAttempt, Device, DeviceModel, Vendor, VendorToken, stranded_q, window_elapsed
from portal.kernel.filters import filtered
from portal.kernel.permissions import is_support_staff
from portal.kernel.series import Period, Series, time_series


def device_visibility(*, user: User | AnonymousUser | None, prefix: str = "") -> Q:
    """Who may see a device, as a condition on ``<prefix>`` (a path to a device, ``""`` for the device itself):
    support staff (``is_support_staff``: active staff of the support group, or superusers) see every device; an
    active, logged-in user the devices they own; anyone else (anonymous, deactivated) none. Every surface that shows
    devices to someone asks this: the customer pages and their WebSockets, the /v1/ API, the staff REST API."""
    if is_support_staff(user):
        return Q()
    if user is None or not user.is_authenticated or not user.is_active:
        return Q(**{f"{prefix}pk__in": []})
    return Q(**{f"{prefix}owner": user})


def devices_visible(*, user: User | AnonymousUser | None) -> QuerySet[Device]:
    return Device.objects.filter(device_visibility(user=user))


def device_list(*, filters: dict | None = None) -> QuerySet[Device]:
    qs = Device.objects.select_related("model__vendor", "owner").with_effective_state().order_by("pk")
    return filtered(DeviceFilter, filters, qs)


def device_model_list(*, filters: dict | None = None) -> QuerySet[DeviceModel]:
    return filtered(DeviceModelFilter, filters, DeviceModel.objects.select_related("vendor").order_by("pk"))


def vendor_list(*, filters: dict | None = None) -> QuerySet[Vendor]:
    return filtered(VendorFilter, filters, Vendor.objects.order_by("pk"))


def attempt_list(*, filters: dict | None = None) -> QuerySet[ActivationAttempt]:
    return filtered(ActivationAttemptFilter, filters, ActivationAttempt.objects.order_by("-at", "-pk"))


def device_find(*, pk: int | str) -> Device | None:
    """The device ``pk`` names, or None (also for what is no id at all: a malformed id in a path is a 404)."""
    try:
        return Device.objects.filter(pk=pk).first()
    except (TypeError, ValueError, ValidationError):
        return None


def device_attempts(*, device_id: int) -> QuerySet[ActivationAttempt]:
    """One device's activation attempts, newest first (the staff API's device log)."""
    return ActivationAttempt.objects.filter(device_id=device_id).order_by("-at", "-pk")


# --- the fleet dashboard (portal.fleet): counts and series, each one aggregate query -------------------------------


def device_state_q() -> dict[str, Q]:
    """Each effective state as a condition (``DeviceQuerySet.in_effective_state``), plus ``stranded`` (activated,
    CIK never used): the dashboard counts these and the admin's state and CIK-use filters list the same rows."""
    elapsed = window_elapsed()
    return {
        ActivationState.NOT_ADDED.value: Q(state=ActivationState.NOT_ADDED),
        ActivationState.NOT_ACTIVATED.value: Q(state=ActivationState.NOT_ACTIVATED) & ~elapsed,
        ActivationState.ACTIVATED.value: Q(state=ActivationState.ACTIVATED),
        ActivationState.EXPIRED.value: Q(state=ActivationState.EXPIRED) | elapsed,
        ActivationState.DISABLED.value: Q(state=ActivationState.DISABLED),
        "stranded": stranded_q(),
    }


def device_state_counts() -> dict[str, int]:
    """How many devices are in each effective state, how many are stranded, and ``total``: one query."""
    counts = {name: Count("pk", filter=condition) for name, condition in device_state_q().items()}
    return Device.objects.aggregate(total=Count("pk"), **counts)


def attempt_series(*, since: datetime, unit: Period) -> Series:
    """Activation attempts since ``since`` per ``unit`` (in the current time zone) and outcome: one GROUP BY."""
    return time_series(ActivationAttempt.objects.all(), at="at", by="outcome", since=since, unit=unit)


def vendor_choices() -> list[tuple[int, str]]:
    """Every vendor, by name: the admin's vendor filters offer these."""
    return list(Vendor.objects.order_by("name").values_list("pk", "name"))


def device_model_choices(*, vendor_id: int | None = None) -> list[tuple[int, str]]:
    """Every device model (of one vendor when given) as ``vendor/model``: the admin's model filters offer these."""
    models = DeviceModel.objects.order_by("vendor__name", "name")
    if vendor_id is not None:
        models = models.filter(vendor_id=vendor_id)
    return [(pk, f"{vendor}/{name}") for pk, vendor, name in models.values_list("pk", "vendor__name", "name")]


# --- Exosite fleet management (docs/exosite.md) -------------------------------------------------------------------


def device_rid(device_id: int) -> str:
    """A device's client id in the Exosite dialect (``<rid>``): 40 hex characters derived from its primary key, so
    stable for the device's life, through a remap to a new serial too. An identifier, not a secret."""
    return hashlib.sha1(f"portal-device:{device_id}".encode(), usedforsecurity=False).hexdigest()


def model_serials(*, model: DeviceModel, offset: int, limit: int, state: str | None = None) -> list[tuple]:
    """One page of a model's serials in serial order (the (model, serial) unique index serves it):
    ``(pk, serial, state, extra)``."""
    rows = Device.objects.filter(model=model)
    if state is not None:
        rows = rows.in_effective_state(state)
    rows = rows.with_effective_state().order_by("serial_number")
    return list(rows.values_list("pk", "serial_number", "effective_state", "extra")[offset : offset + limit])


def model_device(*, model: DeviceModel, serial: str) -> Device | None:
    return Device.objects.with_effective_state().filter(model=model, serial_number=serial).first()


def device_log(*, device_id: int, limit: int = 1000) -> list[ActivationAttempt]:
    """The latest ``limit`` activation attempts, oldest first (how the original's ``?show=log`` reads)."""
    return list(reversed(device_attempts(device_id=device_id)[:limit]))


def vendor_token_list(*, filters: dict | None = None) -> QuerySet[VendorToken]:
    qs = VendorToken.objects.select_related("vendor", "created_by").order_by("pk")
    return filtered(VendorTokenFilter, filters, qs)
