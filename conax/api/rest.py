"""Staff REST API for conditional access: the catalog an integrator feeds (units, services, subscriptions,
smartcards, CAS set-top boxes), what the head-end made of it (pairings, entitlements: read only), and the bulk
upsert of smartcards and subscriptions.

Writes go through ``conax.services`` (``catalog_save``, ``catalog_delete``, ``*_upsert``), the same functions the
admin calls; their errors (``Duplicate``, ``InUse``, ``InvalidParameter``) come out in the staff API's
``{code, detail}`` body with the status of their category (``portal.kernel.api.errors``). Provisioning requests
themselves are raised through the CRM.COM API (``conax.api.crm``).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from conax import importing, selectors, services
from conax.filters import (
    EntitlementFilter,
    PairingFilter,
    ServiceFilter,
    SetTopBoxFilter,
    SmartcardFilter,
    SubscriptionFilter,
    UnitFilter,
)
from conax.models import Entitlement, Pairing, Service, SetTopBox, Smartcard, Subscription, Unit
from devices.models import Device
from portal.kernel.api.openapi import error_response
from portal.kernel.api.rest import valid
from portal.kernel.api.viewsets import CreateMixin, DeleteMixin, StaffViewSet, UpdateMixin

DUPLICATE = error_response("DUPLICATE: an identifier the head-end needs unique is taken; nothing was written.")
IN_USE = error_response(
    "IN_USE: a pending provisioning request (or an entitlement) refers to the record; nothing was deleted."
)
MAX_ROWS = 100_000

User = get_user_model()

# --- serializers ---------------------------------------------------------------------------------------------------


class UnitOutput(serializers.ModelSerializer):
    class Meta:
        model = Unit
        fields = ["id", "name", "alternative_code", "description", "group_name", "community_name"]


class UnitInput(serializers.Serializer):
    name = serializers.CharField(max_length=128)
    alternative_code = serializers.CharField(max_length=64, required=False, allow_null=True, default=None)
    description = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    group_name = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
    community_name = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")


class ServiceOutput(serializers.ModelSerializer):
    class Meta:
        model = Service
        fields = ["id", "code", "alternative_code", "name", "service_ca_id"]


class ServiceInput(serializers.Serializer):
    code = serializers.CharField(max_length=64)
    service_ca_id = serializers.CharField(max_length=64, help_text="The Conax service CA id; unique.")
    alternative_code = serializers.CharField(max_length=64, required=False, allow_null=True, default=None)
    name = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")


class ServiceBrief(serializers.ModelSerializer):
    class Meta:
        model = Service
        fields = ["id", "code", "service_ca_id"]


class SubscriptionOutput(serializers.ModelSerializer):
    customer = serializers.CharField(source="customer.username", allow_null=True, default=None)
    services = ServiceBrief(many=True)

    class Meta:
        model = Subscription
        fields = ["id", "number", "customer_id", "customer", "services", "created_at"]


class SubscriptionInput(serializers.Serializer):
    number = serializers.CharField(max_length=64)
    customer_id = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.all(), source="customer", required=False, allow_null=True, default=None
    )
    service_ids = serializers.PrimaryKeyRelatedField(
        queryset=Service.objects.all(), many=True, required=False, default=list, help_text="Replace its services."
    )


class DeviceBrief(serializers.ModelSerializer):
    class Meta:
        model = Device
        fields = ["id", "serial_number"]


class BoxBrief(serializers.ModelSerializer):
    device = DeviceBrief(allow_null=True)

    class Meta:
        model = SetTopBox
        fields = ["id", "serial_number", "ca_id", "device"]


class CardBrief(serializers.ModelSerializer):
    class Meta:
        model = Smartcard
        fields = ["id", "serial_number", "ca_id"]


class SmartcardOutput(serializers.ModelSerializer):
    subscription = serializers.CharField(source="subscription.number", allow_null=True, default=None)
    set_top_boxes = serializers.SerializerMethodField(help_text="The boxes it is paired with, and their devices.")

    class Meta:
        model = Smartcard
        fields = [
            "id",
            "serial_number",
            "ca_id",
            "alternative_code",
            "subscription_id",
            "subscription",
            "pairing_id",
            "set_top_boxes",
        ]

    @extend_schema(responses=BoxBrief(many=True))
    def get_set_top_boxes(self, card: Smartcard) -> list[dict]:
        # From the list's prefetch (selectors.smartcard_list); a card saved by a service has no pairing yet or reads it.
        return BoxBrief(card.pairing.set_top_boxes.all() if card.pairing_id else [], many=True).data


class InstalledItemInput(serializers.Serializer):
    serial_number = serializers.CharField(max_length=128)
    ca_id = serializers.CharField(max_length=64, help_text="The Conax CA id; unique.")
    alternative_code = serializers.CharField(max_length=64, required=False, allow_null=True, default=None)
    subscription_id = serializers.PrimaryKeyRelatedField(
        queryset=Subscription.objects.all(), source="subscription", required=False, allow_null=True, default=None
    )


class SetTopBoxOutput(serializers.ModelSerializer):
    subscription = serializers.CharField(source="subscription.number", allow_null=True, default=None)
    device = DeviceBrief(allow_null=True)

    class Meta:
        model = SetTopBox
        fields = [
            "id",
            "serial_number",
            "ca_id",
            "alternative_code",
            "subscription_id",
            "subscription",
            "pairing_id",
            "device_id",
            "device",
        ]


class SetTopBoxInput(InstalledItemInput):
    device_id = serializers.PrimaryKeyRelatedField(
        queryset=Device.objects.all(),
        source="device",
        required=False,
        allow_null=True,
        default=None,
        help_text="The inventory device this box is; a device is one box at most.",
    )


class PairingOutput(serializers.ModelSerializer):
    subscription = serializers.CharField(source="subscription.number", allow_null=True, default=None)
    smartcards = CardBrief(many=True)
    set_top_boxes = CardBrief(many=True)

    class Meta:
        model = Pairing
        fields = ["id", "subscription_id", "subscription", "smartcards", "set_top_boxes", "created_at"]


class EntitlementOutput(serializers.ModelSerializer):
    smartcard = serializers.CharField(source="smartcard.serial_number")
    service = serializers.CharField(source="service.code")
    service_ca_id = serializers.CharField(source="service.service_ca_id")
    subscription = serializers.CharField(source="subscription.number", allow_null=True, default=None)

    class Meta:
        model = Entitlement
        fields = [
            "id",
            "smartcard_id",
            "smartcard",
            "service_id",
            "service",
            "service_ca_id",
            "subscription_id",
            "subscription",
            "active",
            "changed_at",
        ]


class UpsertInput(serializers.Serializer):
    rows = serializers.JSONField(required=False, help_text=f"A list of objects (at most {MAX_ROWS}).")
    csv = serializers.CharField(
        required=False, trim_whitespace=False, help_text="CSV text whose first line names the columns."
    )
    dry_run = serializers.BooleanField(default=False)

    def validate_rows(self, value: Any) -> list:
        if not isinstance(value, list):
            raise serializers.ValidationError("must be a list of objects")
        if len(value) > MAX_ROWS:
            raise serializers.ValidationError(f"at most {MAX_ROWS} rows")
        return value

    def validate(self, attrs: dict) -> dict:
        if ("rows" in attrs) == ("csv" in attrs):
            raise serializers.ValidationError("give exactly one of rows, csv")
        return attrs


class SmartcardRow(serializers.Serializer):
    serial_number = serializers.CharField(max_length=128, help_text="The key: the card with this serial is changed.")
    ca_id = serializers.CharField(max_length=64)
    alternative_code = serializers.CharField(max_length=64, required=False, allow_null=True)
    subscription = serializers.CharField(max_length=64, required=False, allow_null=True, help_text="Its number.")


class SmartcardUpsertInput(UpsertInput):
    rows = serializers.ListField(child=SmartcardRow(), required=False, max_length=MAX_ROWS)
    csv = serializers.CharField(
        required=False,
        trim_whitespace=False,
        help_text="First line: column names among " + ", ".join(importing.CARD_COLUMNS) + ".",
    )


class SubscriptionRow(serializers.Serializer):
    number = serializers.CharField(max_length=64, help_text="The key.")
    customer = serializers.CharField(max_length=150, required=False, allow_null=True, help_text="A username.")
    services = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, help_text="Service codes; replace its services."
    )


class SubscriptionUpsertInput(UpsertInput):
    rows = serializers.ListField(child=SubscriptionRow(), required=False, max_length=MAX_ROWS)
    csv = serializers.CharField(
        required=False,
        trim_whitespace=False,
        help_text="First line: column names among "
        + ", ".join(importing.SUBSCRIPTION_COLUMNS)
        + " (services separated by spaces).",
    )


class UpsertInvalidRowOutput(serializers.Serializer):
    line = serializers.IntegerField()
    key = serializers.CharField()
    reason = serializers.CharField()


class UpsertOutput(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    invalid = UpsertInvalidRowOutput(many=True)
    dry_run = serializers.BooleanField()


# --- views ---------------------------------------------------------------------------------------------------------


def summaries(noun: str, plural: str, *, writes: bool = True) -> Any:
    """A summary for each operation of a collection (what Swagger UI and Redoc show as its title)."""
    views = {"list": extend_schema(summary=f"List {plural}"), "retrieve": extend_schema(summary=f"Read a {noun}")}
    if writes:
        views |= {
            "create": extend_schema(summary=f"Create a {noun}"),
            "update": extend_schema(summary=f"Change a {noun}"),
            "partial_update": extend_schema(summary=f"Change a {noun} (the same whole input as PUT)"),
            "destroy": extend_schema(summary=f"Delete a {noun}, unless a pending request refers to it"),
        }
    return extend_schema_view(**views)


class CatalogViewSet(CreateMixin, UpdateMixin, DeleteMixin, StaffViewSet):
    # One catalog model: every write is conax.services.catalog_save / catalog_delete, as in the admin.

    model: type[services.Catalog]
    create_responses = update_responses = {409: DUPLICATE}
    delete_responses = {409: IN_USE}

    def create_object(self, data: dict) -> Any:
        return self.save(self.model(), data)

    def update_object(self, instance: Any, data: dict) -> Any:
        return self.save(instance, data)

    def save(self, instance: Any, data: dict) -> Any:
        return services.catalog_save(instance=instance, values=data)

    def delete_object(self, instance: Any) -> None:
        services.catalog_delete(instance=instance)

    def fresh(self, instance: Any) -> Any:
        return type(self).selector().get(pk=instance.pk)


@summaries("unit", "units")
class UnitViewSet(CatalogViewSet):
    model, selector, filterset_class = Unit, selectors.unit_list, UnitFilter
    output_serializer_class, create_input_class, update_input_class = UnitOutput, UnitInput, UnitInput


@summaries("service", "services")
class ServiceViewSet(CatalogViewSet):
    model, selector, filterset_class = Service, selectors.service_list, ServiceFilter
    output_serializer_class, create_input_class, update_input_class = ServiceOutput, ServiceInput, ServiceInput


def _upsert(request: Request, columns: tuple[str, ...], upsert: Any) -> Response:
    # Checked as a whole here (UpsertInput: the *UpsertInput classes only document the rows' shape), then row by row
    # by the service, which reports each bad row with its line instead of refusing the lot.
    data = valid(UpsertInput, request.data)
    source = importing.rows_from_list(data["rows"]) if "rows" in data else importing.rows_from_csv(data["csv"], columns)
    result = upsert(rows=list(source), dry_run=data["dry_run"])
    return Response(UpsertOutput({**result.as_dict(), "dry_run": data["dry_run"]}).data)


@summaries("subscription", "subscriptions")
class SubscriptionViewSet(CatalogViewSet):
    model, selector, filterset_class = Subscription, selectors.subscription_list, SubscriptionFilter
    output_serializer_class = SubscriptionOutput
    create_input_class = update_input_class = SubscriptionInput

    def save(self, instance: Any, data: dict) -> Any:
        values = {name: value for name, value in data.items() if name != "service_ids"}
        return services.catalog_save(instance=instance, values=values, services=data["service_ids"])

    @extend_schema(
        summary="Create or change subscriptions in bulk",
        request=SubscriptionUpsertInput,
        responses=UpsertOutput,
        filters=False,
    )
    @action(detail=False, methods=["post"], url_path="import", filterset_class=None)
    def bulk_import(self, request: Request) -> Response:
        """Create or change subscriptions by number from a list or a CSV; idempotent. Bad rows are reported with
        their line and left out; the others are written."""
        return _upsert(request, importing.SUBSCRIPTION_COLUMNS, services.subscriptions_upsert)


@summaries("smartcard", "smartcards")
class SmartcardViewSet(CatalogViewSet):
    model, selector, filterset_class = Smartcard, selectors.smartcard_list, SmartcardFilter
    output_serializer_class = SmartcardOutput
    create_input_class = update_input_class = InstalledItemInput

    @extend_schema(
        summary="Create or change smartcards in bulk",
        request=SmartcardUpsertInput,
        responses=UpsertOutput,
        filters=False,
    )
    @action(detail=False, methods=["post"], url_path="import", filterset_class=None)
    def bulk_import(self, request: Request) -> Response:
        """Create or change smartcards by serial number from a list or a CSV (a migration from another CAS
        front-end: up to 100 000 per call); idempotent. Bad rows are reported with their line and left out."""
        return _upsert(request, importing.CARD_COLUMNS, services.smartcards_upsert)


@summaries("CAS set-top box", "CAS set-top boxes")
class SetTopBoxViewSet(CatalogViewSet):
    model, selector, filterset_class = SetTopBox, selectors.set_top_box_list, SetTopBoxFilter
    output_serializer_class = SetTopBoxOutput
    create_input_class = update_input_class = SetTopBoxInput


@summaries("pairing", "pairings", writes=False)
class PairingViewSet(StaffViewSet):
    """Read only: pairings are made by CREATE_PAIRING and ADD_TO_EXISTING_PAIRING requests (the CRM.COM API)."""

    output_serializer_class, selector, filterset_class = PairingOutput, selectors.pairing_list, PairingFilter


@summaries("entitlement", "entitlements", writes=False)
class EntitlementViewSet(StaffViewSet):
    """Read only: a service on a smartcard as the head-end last confirmed it (ADD / CANCEL_SUBSCRIPTIONS)."""

    output_serializer_class, selector = EntitlementOutput, selectors.entitlement_list
    filterset_class = EntitlementFilter
