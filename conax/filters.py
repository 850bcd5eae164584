"""One FilterSet per listable model: the admin, the staff API, the CRM list and the pages filter the same way."""

from __future__ import annotations

import django_filters as filters

from conax.choices import LifeCycleState, Priority, RequestType
from conax.models import ProvisioningRequest, Smartcard, Subscription
from portal.kernel.filters import WindowedDateTimeFilter


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
