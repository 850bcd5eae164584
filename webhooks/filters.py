"""One FilterSet per listable model: the admin and the staff API filter the same way."""

from __future__ import annotations

import django_filters as filters

from portal.kernel.filters import IdFilter, WindowedDateTimeFilter
from webhooks.choices import DeliveryState, EventType
from webhooks.models import Delivery, Endpoint


class EndpointFilter(filters.FilterSet):
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name contains")
    active = filters.BooleanFilter(label="Active")

    class Meta:
        model = Endpoint
        fields = ["q", "active"]


class DeliveryFilter(filters.FilterSet):
    endpoint_id = IdFilter(field_name="endpoint_id", queryset=Endpoint.objects.all(), label="Endpoint id")
    endpoint = filters.CharFilter(field_name="endpoint__name", label="Endpoint name")
    state = filters.ChoiceFilter(choices=DeliveryState.choices, label="State")
    event_type = filters.ChoiceFilter(choices=EventType.choices, label="Event type")
    event_id = filters.UUIDFilter(label="Event id")
    q = filters.CharFilter(field_name="object_key", lookup_expr="icontains", label="Object key contains")
    created_after = WindowedDateTimeFilter(field_name="created_at", lookup_expr="gte", label="Created at or after")

    class Meta:
        model = Delivery
        fields = ["endpoint_id", "endpoint", "state", "event_type", "event_id", "q", "created_after"]
