"""Staff REST API for the inventory: vendors, device models, devices, their actions, bulk import, activation log."""

from __future__ import annotations

import io

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response

from devices import importing, selectors, services
from devices.choices import ActivationState
from devices.filters import ActivationAttemptFilter, DeviceFilter, DeviceModelFilter, VendorFilter
from devices.models import ActivationAttempt, Device, DeviceModel, Vendor
from portal.kernel.api.openapi import error_response
from portal.kernel.api.rest import valid

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
            "id", "serial_number", "vendor", "model", "model_id", "state", "has_active_cik", "cik_first_used_at",
            "cik_stranded", "cik_unused_for", "owner_id", "owner", "extra", "enabled_at", "activation_expires_at",
            "activated_at", "disabled_at", "configuration_version", "created_at", "updated_at",
        ]  # fmt: skip

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
    serials = serializers.ListField(child=serializers.CharField(allow_blank=True, trim_whitespace=False),
                                    required=False, max_length=100_000)  # fmt: skip
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


# PATCH validates the same input as PUT (every field), and the schema says so.
@extend_schema_view(partial_update=extend_schema(request=VendorInput, responses=VendorOutput))
class VendorViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):  # fmt: skip
    serializer_class = VendorOutput
    filterset_class = VendorFilter
    queryset = Vendor.objects.order_by("pk")

    @extend_schema(request=VendorInput, responses={201: VendorOutput})
    def create(self, request: Request) -> Response:
        data = valid(VendorInput, request.data)
        return Response(VendorOutput(services.vendor_save(**data)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=VendorInput, responses=VendorOutput)
    def update(self, request: Request, pk=None, partial=False) -> Response:
        data = valid(VendorInput, request.data)
        return Response(VendorOutput(services.vendor_save(vendor=self.get_object(), **data)).data)


@extend_schema_view(partial_update=extend_schema(request=DeviceModelInput, responses=DeviceModelOutput))
class DeviceModelViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):  # fmt: skip
    serializer_class = DeviceModelOutput
    filterset_class = DeviceModelFilter
    queryset = DeviceModel.objects.select_related("vendor").order_by("pk")

    @extend_schema(request=DeviceModelInput, responses={201: DeviceModelOutput})
    def create(self, request: Request) -> Response:
        data = valid(DeviceModelInput, request.data)
        return Response(DeviceModelOutput(services.device_model_save(**data)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=DeviceModelInput, responses=DeviceModelOutput)
    def update(self, request: Request, pk=None, partial=False) -> Response:
        data = valid(DeviceModelInput, request.data)
        saved = services.device_model_save(device_model=self.get_object(), **data)
        return Response(DeviceModelOutput(saved).data)


class DeviceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = DeviceOutput
    filterset_class = DeviceFilter

    def get_queryset(self):
        return selectors.device_list()

    @extend_schema(request=DeviceCreateInput, responses={201: DeviceOutput, 409: EXISTS})
    def create(self, request: Request) -> Response:
        device = services.device_create(**valid(DeviceCreateInput, request.data))
        return Response(DeviceOutput(self._fresh(device.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=DeviceUpdateInput, responses=DeviceOutput)
    def partial_update(self, request: Request, pk=None) -> Response:
        data = valid(DeviceUpdateInput, request.data)
        device = services.device_assign_owner(device=self.get_object(), owner=data["owner"])
        return Response(DeviceOutput(self._fresh(device.pk)).data)

    @extend_schema(request=EnableInput, responses={200: DeviceOutput, 409: ILLEGAL})
    @action(detail=True, methods=["post"])
    def enable(self, request: Request, pk=None) -> Response:
        window = valid(EnableInput, request.data).get("window")
        return self._respond(services.device_enable(device=self.get_object(), window=window))

    @extend_schema(request=EnableInput, responses={200: DeviceOutput, 409: ILLEGAL})
    @action(detail=True, methods=["post"])
    def reenable(self, request: Request, pk=None) -> Response:
        window = valid(EnableInput, request.data).get("window")
        return self._respond(services.device_reenable(device=self.get_object(), window=window))

    @extend_schema(request=None, responses={200: DeviceOutput, 409: ILLEGAL})
    @action(detail=True, methods=["post"])
    def disable(self, request: Request, pk=None) -> Response:
        return self._respond(services.device_disable(device=self.get_object()))

    @extend_schema(request=None, responses=AttemptOutput(many=True), filters=False)
    @action(detail=True, methods=["get"], filterset_class=None)
    def log(self, request: Request, pk=None) -> Response:
        """The device's activation attempts, newest first (the original's ``?show=log``)."""
        device = get_object_or_404(Device.objects.only("pk"), pk=pk)
        page = self.paginate_queryset(ActivationAttempt.objects.filter(device=device).order_by("-at", "-pk"))
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

    def _fresh(self, pk: int) -> Device:
        return selectors.device_list().get(pk=pk)

    def _respond(self, device: Device) -> Response:
        return Response(DeviceOutput(self._fresh(device.pk)).data)


class ActivationAttemptViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = AttemptOutput
    filterset_class = ActivationAttemptFilter
    queryset = ActivationAttempt.objects.order_by("-at", "-pk")


def _rows(data: dict) -> list[tuple[int, str, str]]:
    """Materialised, so that a source that turns out malformed half-way is refused before anything is written."""
    if "serials" in data:
        return list(importing.rows_from_list(data["serials"]))
    if "csv" in data:
        return list(importing.rows_from_csv(io.StringIO(data["csv"])))
    spec = data["range"]
    return list(importing.rows_from_range(spec["start"], spec["end"], base=int(spec["base"])))
