"""Staff REST API for webhooks: endpoints (the secret is write-only) and the delivery log, with redelivery."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal.kernel.api.openapi import error_response
from portal.kernel.api.viewsets import CreateMixin, DeleteMixin, StaffViewSet, UpdateMixin
from webhooks import selectors, services
from webhooks.choices import DeliveryState, EventType
from webhooks.filters import DeliveryFilter, EndpointFilter
from webhooks.models import Delivery, Endpoint

EXISTS = error_response("ENDPOINT_EXISTS: an endpoint has this name; nothing was written.")
NOT_REDELIVERABLE = error_response("NOT_REDELIVERABLE: the delivery is still pending; nothing changed.")


class EndpointOutput(serializers.ModelSerializer):
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=EventType.choices))

    class Meta:
        model = Endpoint
        fields = ["id", "name", "url", "event_types", "active", "created_at", "updated_at"]


class EndpointInput(serializers.Serializer):
    name = serializers.CharField(max_length=128)
    url = serializers.URLField(max_length=500)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices), min_length=1, max_length=len(EventType.values)
    )
    active = serializers.BooleanField(default=True)
    secret = serializers.CharField(
        min_length=services.MIN_SECRET,
        max_length=256,
        required=False,
        write_only=True,
        trim_whitespace=False,
        help_text="The HMAC key (docs/webhooks.md). Required on create; left out on update keeps the current one. "
        "Never returned.",
    )


class DeliveryOutput(serializers.ModelSerializer):
    endpoint = serializers.CharField(source="endpoint.name")
    state = serializers.ChoiceField(choices=DeliveryState.choices)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "event_id",
            "event_type",
            "object_key",
            "endpoint_id",
            "endpoint",
            "state",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "last_latency_ms",
            "created_at",
            "delivered_at",
            "payload",
        ]


@extend_schema_view(
    list=extend_schema(summary="List webhook endpoints"),
    retrieve=extend_schema(summary="Read a webhook endpoint"),
    create=extend_schema(summary="Register a webhook endpoint"),
    update=extend_schema(summary="Change a webhook endpoint"),
    partial_update=extend_schema(summary="Change a webhook endpoint (the same whole input as PUT)"),
    destroy=extend_schema(summary="Delete a webhook endpoint and its delivery log"),
)
class EndpointViewSet(CreateMixin, UpdateMixin, DeleteMixin, StaffViewSet):
    output_serializer_class, create_input_class, update_input_class = EndpointOutput, EndpointInput, EndpointInput
    selector, filterset_class = selectors.endpoint_list, EndpointFilter
    create_responses = update_responses = {409: EXISTS}

    def create_object(self, data: dict) -> Endpoint:
        return services.endpoint_save(**data)

    def update_object(self, endpoint: Endpoint, data: dict) -> Endpoint:
        return services.endpoint_save(endpoint=endpoint, **data)

    def delete_object(self, endpoint: Any) -> None:
        services.endpoint_delete(endpoint=endpoint)


@extend_schema_view(
    list=extend_schema(summary="List webhook deliveries (the delivery log)"),
    retrieve=extend_schema(summary="Read a webhook delivery"),
)
class DeliveryViewSet(StaffViewSet):
    output_serializer_class, selector, filterset_class = DeliveryOutput, selectors.delivery_list, DeliveryFilter

    @extend_schema(
        summary="Send a delivery again", request=None, responses={200: DeliveryOutput, 409: NOT_REDELIVERABLE}
    )
    @action(detail=True, methods=["post"])
    def redeliver(self, request: Request, pk=None) -> Response:
        """Send a delivered or dead delivery again (the same event id), with a fresh attempt budget."""
        delivery = self.get_object()
        services.deliveries_redeliver(ids=[delivery.pk])
        return Response(self.output(selectors.delivery_list().get(pk=delivery.pk)))
