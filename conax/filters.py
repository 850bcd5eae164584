"""One FilterSet per listable model: the admin, the staff API, the CRM list and the pages filter the same way."""

from __future__ import annotations

import django_filters as filters
from django.contrib.auth import get_user_model
from django.db.models import Q

from conax.choices import LifeCycleState, Priority, RequestType
from conax.models import Entitlement, Pairing, ProvisioningRequest, Service, SetTopBox, Smartcard, Subscription, Unit
from devices.models import Device
from portal.kernel.filters import BooleanFilter, IdFilter, WindowedDateTimeFilter


class ProvisioningRequestFilter(filters.FilterSet):
    type = filters.ChoiceFilter(choices=RequestType.choices, label="Type")
    life_cycle_state = filters.ChoiceFilter(choices=LifeCycleState.choices, label="Life cycle state")
    priority = filters.ChoiceFilter(choices=Priority.choices, label="Priority")
    reference_number = filters.CharFilter(label="Conax reference number")
    smartcard = filters.CharFilter(field_name="smartcard__ca_id", label="Smartcard CA id")
    smartcard_id = filters.ModelChoiceFilter(
        field_name="smartcard", queryset=Smartcard.objects.all(), label="Smartcard id"
    )
    subscription = filters.CharFilter(field_name="subscription__number", label="Subscription number")
    subscription_id = filters.ModelChoiceFilter(
        field_name="subscription", queryset=Subscription.objects.all(), label="Subscription id"
    )
    created_after = WindowedDateTimeFilter(field_name="created_date", lookup_expr="gte", label="Created at or after")
    created_before = WindowedDateTimeFilter(field_name="created_date", lookup_expr="lt", label="Created before")
    scheduled_after = WindowedDateTimeFilter(field_name="scheduled_date", lookup_expr="gte", label="Due at or after")
    scheduled_before = WindowedDateTimeFilter(field_name="scheduled_date", lookup_expr="lt", label="Due before")

    class Meta:
        model = ProvisioningRequest
        fields = [
            "type",
            "life_cycle_state",
            "priority",
            "reference_number",
            "smartcard",
            "smartcard_id",
            "subscription",
            "subscription_id",
            "created_after",
            "created_before",
            "scheduled_after",
            "scheduled_before",
        ]


# --- the catalog (the staff REST API's collections; the admin searches its own way) --------------------------------


class UnitFilter(filters.FilterSet):
    q = filters.CharFilter(method="filter_q", label="Name or alternative code contains")

    class Meta:
        model = Unit
        fields = ["q"]

    def filter_q(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(alternative_code__icontains=value))


class ServiceFilter(filters.FilterSet):
    code = filters.CharFilter(label="Code")
    service_ca_id = filters.CharFilter(label="Service CA id")
    subscription_id = filters.ModelChoiceFilter(
        field_name="subscriptions", queryset=Subscription.objects.all(), label="In this subscription (id)"
    )
    subscription = filters.CharFilter(field_name="subscriptions__number", label="In this subscription (number)")
    q = filters.CharFilter(method="filter_q", label="Code, name or service CA id contains")

    class Meta:
        model = Service
        fields = ["code", "service_ca_id", "subscription_id", "subscription", "q"]

    def filter_q(self, queryset, name, value):
        return queryset.filter(Q(code__icontains=value) | Q(name__icontains=value) | Q(service_ca_id__icontains=value))


class SubscriptionFilter(filters.FilterSet):
    number = filters.CharFilter(label="Number")
    customer_id = filters.ModelChoiceFilter(
        field_name="customer", queryset=get_user_model().objects.all(), label="Customer (user id)"
    )
    customer = filters.CharFilter(field_name="customer__username", label="Customer username")
    service_id = filters.ModelChoiceFilter(
        field_name="services", queryset=Service.objects.all(), label="Has this service (id)"
    )
    service = filters.CharFilter(field_name="services__code", label="Has this service (code)")
    q = filters.CharFilter(field_name="number", lookup_expr="icontains", label="Number contains")

    class Meta:
        model = Subscription
        fields = ["number", "customer_id", "customer", "service_id", "service", "q"]


class InstalledItemFilter(filters.FilterSet):
    serial_number = filters.CharFilter(label="Serial number")
    ca_id = filters.CharFilter(label="CA id")
    subscription_id = filters.ModelChoiceFilter(
        field_name="subscription", queryset=Subscription.objects.all(), label="Subscription id"
    )
    subscription = filters.CharFilter(field_name="subscription__number", label="Subscription number")
    pairing_id = filters.ModelChoiceFilter(field_name="pairing", queryset=Pairing.objects.all(), label="Pairing id")
    paired = BooleanFilter(field_name="pairing", lookup_expr="isnull", exclude=True, label="Paired")
    q = filters.CharFilter(method="filter_q", label="Serial number, CA id or alternative code contains")

    FIELDS = ["serial_number", "ca_id", "subscription_id", "subscription", "pairing_id", "paired", "q"]

    def filter_q(self, queryset, name, value):
        return queryset.filter(
            Q(serial_number__icontains=value) | Q(ca_id__icontains=value) | Q(alternative_code__icontains=value)
        )


class SmartcardFilter(InstalledItemFilter):
    set_top_box_id = filters.ModelChoiceFilter(
        field_name="pairing__set_top_boxes", queryset=SetTopBox.objects.all(), label="Paired with this box (id)"
    )
    set_top_box = filters.CharFilter(
        field_name="pairing__set_top_boxes__serial_number", label="Paired with this box (serial number)"
    )

    class Meta:
        model = Smartcard
        fields = [*InstalledItemFilter.FIELDS, "set_top_box_id", "set_top_box"]


class SetTopBoxFilter(InstalledItemFilter):
    device_id = IdFilter(field_name="device_id", queryset=Device.objects.all(), label="Inventory device id")
    device = filters.CharFilter(field_name="device__serial_number", label="Inventory device serial number")
    has_device = BooleanFilter(field_name="device", lookup_expr="isnull", exclude=True, label="Linked to a device")

    class Meta:
        model = SetTopBox
        fields = [*InstalledItemFilter.FIELDS, "device_id", "device", "has_device"]


class PairingFilter(filters.FilterSet):
    subscription_id = filters.ModelChoiceFilter(
        field_name="subscription", queryset=Subscription.objects.all(), label="Subscription id"
    )
    subscription = filters.CharFilter(field_name="subscription__number", label="Subscription number")

    class Meta:
        model = Pairing
        fields = ["subscription_id", "subscription"]


class EntitlementFilter(filters.FilterSet):
    smartcard_id = filters.ModelChoiceFilter(
        field_name="smartcard", queryset=Smartcard.objects.all(), label="Smartcard id"
    )
    smartcard = filters.CharFilter(field_name="smartcard__serial_number", label="Smartcard serial number")
    service_id = filters.ModelChoiceFilter(field_name="service", queryset=Service.objects.all(), label="Service id")
    service = filters.CharFilter(field_name="service__code", label="Service code")
    subscription_id = filters.ModelChoiceFilter(
        field_name="subscription", queryset=Subscription.objects.all(), label="Subscription id"
    )
    subscription = filters.CharFilter(field_name="subscription__number", label="Subscription number")
    active = BooleanFilter(label="Active (not cancelled)")
    changed_after = WindowedDateTimeFilter(field_name="changed_at", lookup_expr="gte", label="Changed at or after")

    class Meta:
        model = Entitlement
        fields = [
            "smartcard_id",
            "smartcard",
            "service_id",
            "service",
            "subscription_id",
            "subscription",
            "active",
            "changed_after",
        ]
