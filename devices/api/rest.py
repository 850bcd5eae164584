"""Staff REST API for the inventory: vendors, device models, devices, their actions, bulk import, activation log."""

from __future__ import annotations

import io

from django.contrib.auth import get_user_model
from django.http import Http404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from devices import importing, selectors, services, vendor_tokens
from devices.choices import ActivationState
from devices.exceptions import IllegalTransition
from devices.filters import ActivationAttemptFilter, DeviceFilter, DeviceModelFilter, VendorFilter, VendorTokenFilter
from devices.models import ActivationAttempt, Device, DeviceModel, Vendor, VendorToken
from portal.kernel.api.openapi import error_response
from portal.kernel.api.rest import valid
from portal.kernel.api.viewsets import CreateMixin, PatchMixin, SelectorQuerysetMixin, StaffViewSet, UpdateMixin

ILLEGAL = error_response("ILLEGAL_TRANSITION: the device's state does not allow this change; nothing changed.")
EXISTS = error_response("DEVICE_EXISTS: the model already has this serial number; nothing was written.")

User = get_user_model()

# --- serializers ---------------------------------------------------------------------------------------------------


class VendorOutput(serializers.ModelSerializer):
    class Meta:
        model = Vendor
        fields = ["id", "name", "created_at", "updated_at"]


class VendorInput(serializers.Serializer):
    name = serializers.CharField(max_length=64)


class DeviceModelOutput(serializers.ModelSerializer):
    vendor = serializers.CharField(source="vendor.name")

    class Meta:
        model = DeviceModel
        fields = ["id", "vendor_id", "vendor", "name", "description", "created_at", "updated_at"]


class DeviceModelInput(serializers.Serializer):
    vendor_id = serializers.PrimaryKeyRelatedField(queryset=Vendor.objects.all(), source="vendor")
    name = serializers.CharField(max_length=64)
    description = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class DeviceOutput(serializers.ModelSerializer):
    vendor = serializers.CharField(source="model.vendor.name")
    model = serializers.CharField(source="model.name")
    state = serializers.ChoiceField(source="current_state", choices=ActivationState.choices)
    has_active_cik = serializers.BooleanField()
    owner = serializers.CharField(source="owner.username", allow_null=True, default=None)
    cik_stranded = serializers.BooleanField(help_text="Activated, but no call has authenticated with its CIK yet.")
    cik_unused_for = serializers.SerializerMethodField(help_text="Seconds since activation of a stranded CIK.")

    class Meta:
        model = Device
        fields = [
            "id",
            "serial_number",
            "vendor",
            "model",
            "model_id",
            "state",
            "has_active_cik",
            "cik_first_used_at",
            "cik_stranded",
            "cik_unused_for",
            "owner_id",
            "owner",
            "extra",
            "enabled_at",
            "activation_expires_at",
            "activated_at",
            "disabled_at",
            "configuration_version",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_cik_unused_for(self, device: Device) -> int | None:
        unused = device.cik_unused_for
        return None if unused is None else int(unused.total_seconds())


class DeviceCreateInput(serializers.Serializer):
    model_id = serializers.PrimaryKeyRelatedField(queryset=DeviceModel.objects.all(), source="model")
    serial_number = serializers.CharField(max_length=128, trim_whitespace=False)
    extra = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    owner_id = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), source="owner", required=False)


class DeviceUpdateInput(serializers.Serializer):
    owner_id = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), source="owner", allow_null=True)


class EnableInput(serializers.Serializer):
    window = serializers.IntegerField(
        min_value=60, max_value=90 * 86400, required=False, help_text="Activation window in seconds."
    )


class RangeInput(serializers.Serializer):
    start = serializers.CharField(max_length=128)
    end = serializers.CharField(max_length=128)
    base = serializers.ChoiceField(choices=[10, 16], default=10)


class ImportInput(serializers.Serializer):
    model_id = serializers.PrimaryKeyRelatedField(queryset=DeviceModel.objects.all(), source="model")
    serials = serializers.ListField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False), required=False, max_length=100_000
    )
    csv = serializers.CharField(required=False, trim_whitespace=False, help_text="Lines of `sn,extra`.")
    range = RangeInput(required=False)
    enable = serializers.BooleanField(default=False)
    dry_run = serializers.BooleanField(default=False)

    def validate(self, attrs):
        sources = [name for name in ("serials", "csv", "range") if name in attrs]
        if len(sources) != 1:
            raise serializers.ValidationError("give exactly one of serials, csv, range")
        return attrs


class InvalidRowOutput(serializers.Serializer):
    line = serializers.IntegerField()
    value = serializers.CharField()
    reason = serializers.CharField()


class ImportOutput(serializers.Serializer):
    created = serializers.IntegerField()
    existing = serializers.IntegerField()
    enabled = serializers.IntegerField()
    invalid = InvalidRowOutput(many=True)
    dry_run = serializers.BooleanField()


class AttemptOutput(serializers.ModelSerializer):
    class Meta:
        model = ActivationAttempt
        fields = ["id", "device_id", "vendor", "model", "serial_number", "at", "remote_addr", "user_agent", "outcome"]


# --- views ---------------------------------------------------------------------------------------------------------


class VendorViewSet(CreateMixin, UpdateMixin, StaffViewSet):
    output_serializer_class, create_input_class, update_input_class = VendorOutput, VendorInput, VendorInput
    selector, filterset_class = selectors.vendor_list, VendorFilter

    def create_object(self, data: dict) -> Vendor:
        return services.vendor_save(**data)

    def update_object(self, vendor: Vendor, data: dict) -> Vendor:
        return services.vendor_save(vendor=vendor, **data)


class DeviceModelViewSet(CreateMixin, UpdateMixin, StaffViewSet):
    output_serializer_class, filterset_class = DeviceModelOutput, DeviceModelFilter
    create_input_class = update_input_class = DeviceModelInput
    selector = selectors.device_model_list

    def create_object(self, data: dict) -> DeviceModel:
        return services.device_model_save(**data)

    def update_object(self, device_model: DeviceModel, data: dict) -> DeviceModel:
        return services.device_model_save(device_model=device_model, **data)


class DeviceViewSet(CreateMixin, PatchMixin, StaffViewSet):
    output_serializer_class, create_input_class, update_input_class = DeviceOutput, DeviceCreateInput, DeviceUpdateInput
    selector, filterset_class = selectors.device_list, DeviceFilter
    create_responses = {409: EXISTS}

    def create_object(self, data: dict) -> Device:
        return services.device_create(**data)

    def update_object(self, device: Device, data: dict) -> Device:
        return services.device_assign_owner(device=device, owner=data["owner"])

    def fresh(self, device: Device) -> Device:
        # The list's annotations (effective state, CIK use), which the services' rows do not carry.
        return selectors.device_list().get(pk=device.pk)

    @extend_schema(request=EnableInput, responses={200: DeviceOutput, 409: ILLEGAL})
    @action(detail=True, methods=["post"])
    def enable(self, request: Request, pk=None) -> Response:
        window = valid(EnableInput, request.data).get("window")
        return Response(self.output(services.device_enable(device=self.get_object(), window=window)))

    @extend_schema(request=EnableInput, responses={200: DeviceOutput, 409: ILLEGAL})
    @action(detail=True, methods=["post"])
    def reenable(self, request: Request, pk=None) -> Response:
        window = valid(EnableInput, request.data).get("window")
        return Response(self.output(services.device_reenable(device=self.get_object(), window=window)))

    @extend_schema(request=None, responses={200: DeviceOutput, 409: ILLEGAL})
    @action(detail=True, methods=["post"])
    def disable(self, request: Request, pk=None) -> Response:
        return Response(self.output(services.device_disable(device=self.get_object())))

    @extend_schema(request=None, responses=AttemptOutput(many=True), filters=False)
    @action(detail=True, methods=["get"], filterset_class=None)
    def log(self, request: Request, pk=None) -> Response:
        """The device's activation attempts, newest first (the original's ``?show=log``)."""
        device = selectors.device_find(pk=pk)
        if device is None:
            raise Http404  # DRF answers {"detail": "Not found."}, as its get_object_or_404 did
        page = self.paginate_queryset(selectors.device_attempts(device_id=device.pk))
        return self.get_paginated_response(AttemptOutput(page, many=True).data)

    @extend_schema(request=ImportInput, responses=ImportOutput)
    @action(detail=False, methods=["post"], url_path="import", filterset_class=None)
    def bulk_import(self, request: Request) -> Response:
        """Add serial numbers to a model from a list, a CSV (`sn,extra`) or a range; existing ones are counted."""
        data = valid(ImportInput, request.data)
        result = services.devices_import(
            model=data["model"], rows=_rows(data), enable=data["enable"], dry_run=data["dry_run"]
        )
        return Response(ImportOutput({**result.as_dict(), "dry_run": data["dry_run"]}).data)


class ActivationAttemptViewSet(SelectorQuerysetMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    output_serializer_class, filterset_class = AttemptOutput, ActivationAttemptFilter
    selector = selectors.attempt_list


def _rows(data: dict) -> list[tuple[int, str, str]]:
    """Materialised, so that a source that turns out malformed half-way is refused before anything is written."""
    if "serials" in data:
        return list(importing.rows_from_list(data["serials"]))
    if "csv" in data:
        return list(importing.rows_from_csv(io.StringIO(data["csv"])))
    spec = data["range"]
    return list(importing.rows_from_range(spec["start"], spec["end"], base=int(spec["base"])))


# --- Exosite vendor tokens (docs/exosite.md) ------------------------------------------------------------------------


class VendorTokenOutput(serializers.ModelSerializer):
    vendor = serializers.CharField(source="vendor.name")
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)

    class Meta:
        model = VendorToken
        fields = ["id", "vendor_id", "vendor", "name", "created_at", "created_by", "last_used_at", "revoked_at"]


class VendorTokenIssuedOutput(VendorTokenOutput):
    token = serializers.CharField(help_text="The token itself: shown this once, never again (only a digest is kept).")

    class Meta(VendorTokenOutput.Meta):
        fields = [*VendorTokenOutput.Meta.fields, "token"]


class VendorTokenInput(serializers.Serializer):
    vendor_id = serializers.PrimaryKeyRelatedField(queryset=Vendor.objects.all(), source="vendor")
    name = serializers.CharField(max_length=64)


REVOKED = error_response("ILLEGAL_TRANSITION: the token was already revoked; nothing changed.")


class VendorTokenViewSet(StaffViewSet):
    """Vendor tokens of the Exosite fleet management API (``X-Exosite-Token``): each scoped to one vendor."""

    output_serializer_class, filterset_class = VendorTokenOutput, VendorTokenFilter
    selector = selectors.vendor_token_list

    @extend_schema(request=VendorTokenInput, responses={201: VendorTokenIssuedOutput})
    def create(self, request: Request) -> Response:
        """Create a token; the answer carries it, once."""
        data = valid(VendorTokenInput, request.data)
        issued = vendor_tokens.vendor_token_create(vendor=data["vendor"], name=data["name"], created_by=request.user)
        token = issued.token
        token.token = issued.raw  # type: ignore[attr-defined]  # read by the issued serializer only
        return Response(VendorTokenIssuedOutput(token).data, status=201)

    @extend_schema(request=None, responses={200: VendorTokenOutput, 409: REVOKED})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk=None) -> Response:
        token = self.get_object()
        if not vendor_tokens.vendor_token_revoke(token=token):
            raise IllegalTransition("the token was already revoked", token_id=token.pk)
        return Response(self.output(token))
