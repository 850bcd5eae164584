"""One FilterSet per listable model: the admin, the staff API and the pages filter the same way."""

from __future__ import annotations

from datetime import timedelta

import django_filters as filters
from django import forms
from django.contrib.auth import get_user_model

from devices.choices import ActivationOutcome, ActivationState
from devices.models import ActivationAttempt, Device, DeviceModel, Vendor, VendorToken, stranded_q
from portal.kernel.filters import BooleanFilter, IdFilter, WindowedDateTimeFilter

MAX_SECONDS = 10 * 366 * 86400  # ten years: larger durations mean nothing here and overflow date arithmetic


class VendorFilter(filters.FilterSet):
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name contains")

    class Meta:
        model = Vendor
        fields = ["q"]


class DeviceModelFilter(filters.FilterSet):
    vendor_id = IdFilter(field_name="vendor_id", queryset=Vendor.objects.all(), label="Vendor id")
    vendor = filters.CharFilter(field_name="vendor__name", label="Vendor name")
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name contains")

    class Meta:
        model = DeviceModel
        fields = ["vendor_id", "vendor", "q"]


class SecondsFilter(filters.NumberFilter):
    field_class = forms.IntegerField


class DeviceFilter(filters.FilterSet):
    vendor_id = IdFilter(field_name="model__vendor_id", queryset=Vendor.objects.all(), label="Vendor id")
    vendor = filters.CharFilter(field_name="model__vendor__name", label="Vendor name")
    model_id = IdFilter(field_name="model_id", queryset=DeviceModel.objects.all(), label="Device model id")
    model = filters.CharFilter(field_name="model__name", label="Device model name")
    state = filters.ChoiceFilter(choices=ActivationState.choices, method="filter_state", label="Activation state")
    owner_id = filters.ModelChoiceFilter(
        field_name="owner", queryset=get_user_model().objects.all(), label="Owner (user id)"
    )
    owner = filters.CharFilter(field_name="owner__username", label="Owner username")
    has_owner = BooleanFilter(field_name="owner", lookup_expr="isnull", exclude=True, label="Has an owner")
    q = filters.CharFilter(method="filter_q", label="Serial number contains")
    stranded = BooleanFilter(
        method="filter_stranded", label="Stranded: activated, but its CIK never used (no authenticated call)"
    )
    stranded_for = SecondsFilter(
        method="filter_stranded_for",
        min_value=0,
        max_value=MAX_SECONDS,
        label="Stranded for at least this many seconds since activation",
    )

    class Meta:
        model = Device
        fields = [
            "vendor_id",
            "vendor",
            "model_id",
            "model",
            "state",
            "owner_id",
            "owner",
            "has_owner",
            "q",
            "stranded",
            "stranded_for",
        ]

    def filter_state(self, queryset, name, value):
        # The effective state: a pending device whose window has passed counts as expired.
        return queryset.in_effective_state(value)

    def filter_q(self, queryset, name, value):
        return queryset.filter(serial_number__icontains=value)

    def filter_stranded(self, queryset, name, value):
        return queryset.stranded() if value else queryset.exclude(stranded_q())

    def filter_stranded_for(self, queryset, name, value):
        return queryset.stranded(unused_for=timedelta(seconds=value))


class ActivationAttemptFilter(filters.FilterSet):
    device_id = IdFilter(field_name="device_id", queryset=Device.objects.all(), label="Device id")
    outcome = filters.ChoiceFilter(choices=ActivationOutcome.choices, label="Outcome")
    q = filters.CharFilter(field_name="serial_number", lookup_expr="icontains", label="Serial number contains")
    since = WindowedDateTimeFilter(field_name="at", lookup_expr="gte", label="At or after")

    class Meta:
        model = ActivationAttempt
        fields = ["device_id", "outcome", "q", "since"]


class VendorTokenFilter(filters.FilterSet):
    vendor_id = IdFilter(field_name="vendor_id", queryset=Vendor.objects.all(), label="Vendor id")
    vendor = filters.CharFilter(field_name="vendor__name", label="Vendor name")
    revoked = BooleanFilter(field_name="revoked_at", lookup_expr="isnull", exclude=True, label="Revoked")
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name contains")

    class Meta:
        model = VendorToken
        fields = ["vendor_id", "vendor", "revoked", "q"]
