"""Reads of the inventory. List selectors apply the app's FilterSets, so every interface filters alike."""

from __future__ import annotations

from django.db.models import QuerySet

from devices.filters import ActivationAttemptFilter, DeviceFilter, DeviceModelFilter, VendorFilter
from devices.models import ActivationAttempt, Device, DeviceModel, Vendor


def device_list(*, filters: dict | None = None) -> QuerySet[Device]:
    qs = Device.objects.select_related("model__vendor", "owner").with_effective_state().order_by("pk")
    return DeviceFilter(filters or {}, qs).qs


def device_model_list(*, filters: dict | None = None) -> QuerySet[DeviceModel]:
    return DeviceModelFilter(filters or {}, DeviceModel.objects.select_related("vendor").order_by("pk")).qs


def vendor_list(*, filters: dict | None = None) -> QuerySet[Vendor]:
    return VendorFilter(filters or {}, Vendor.objects.order_by("pk")).qs


def attempt_list(*, filters: dict | None = None) -> QuerySet[ActivationAttempt]:
    return ActivationAttemptFilter(filters or {}, ActivationAttempt.objects.order_by("-at", "-pk")).qs
