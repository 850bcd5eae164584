"""Staff REST API for set-top boxes: status, timeline, and commands (``POST /api/v1/devices/{id}/…``)."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from devices import selectors as device_selectors
from devices.models import Device
from portal.kernel.api.rest import valid
from portal.kernel.api.viewsets import SelectorQuerysetMixin
from provisioning import selectors, services
from provisioning.choices import CommandKind, ProvisionType
from provisioning.exceptions import NoSetTopBox
from provisioning.filters import CommandFilter
from provisioning.models import BoxEvent, Command, SetTopBox, TypeStatus


class TypeStatusOutput(serializers.ModelSerializer):
    class Meta:
        model = TypeStatus
        fields = ["provision_type", "kind", "state", "reason", "refreshed_at"]


class CommandOutput(serializers.ModelSerializer):
    device_id = serializers.IntegerField(source="box.device_id")
    requested_by = serializers.CharField(source="requested_by.username", allow_null=True, default=None)

    class Meta:
        model = Command
        fields = [
            "id",
            "device_id",
            "kind",
            "params",
            "state",
            "attempts",
            "last_error",
            "result",
            "requested_by",
            "created_at",
            "next_attempt_at",
            "sent_at",
            "finished_at",
        ]


class EventOutput(serializers.ModelSerializer):
    class Meta:
        model = BoxEvent
        fields = ["id", "name", "status", "params", "source", "received_at"]


class BoxOutput(serializers.ModelSerializer):
    address = serializers.CharField()
    types = TypeStatusOutput(source="type_statuses", many=True)

    class Meta:
        model = SetTopBox
        fields = [
            "device_id",
            "address",
            "api_version",
            "soc_id",
            "netflix_esn",
            "provision_id",
            "platform_status",
            "platform_tokens",
            "last_event_status",
            "last_event_at",
            "refreshed_at",
            "types",
        ]


class BoxInput(serializers.Serializer):
    host = serializers.CharField(max_length=255)
    port = serializers.IntegerField(min_value=1, max_value=65535, default=9998)


class ReprovisionInput(serializers.Serializer):
    provision_type = serializers.ChoiceField(choices=ProvisionType.choices)


class SetIndexInput(serializers.Serializer):
    label = serializers.CharField(max_length=64)
    index = serializers.IntegerField(min_value=0, max_value=2**32 - 1)


def _device(pk: int) -> Device:
    device = device_selectors.device_find(pk=pk)
    if device is None:
        raise Http404("No Device matches the given query.")
    return device


def _box(pk: int) -> SetTopBox:
    device = _device(pk)
    box = selectors.box_for_device(device_id=device.pk)
    if box is None:
        raise NoSetTopBox(f"device {device.pk} has no set-top box registered")
    return box


def _timeline(box: SetTopBox) -> list[dict]:
    out = []
    for item in selectors.box_timeline(box=box):
        if "command" in item:
            out.append({"at": item["at"], "command": CommandOutput(item["command"]).data})
        else:
            out.append({"at": item["at"], "event": EventOutput(item["event"]).data})
    return out


class BoxView(APIView):
    @extend_schema(responses=BoxOutput)
    def get(self, request: Request, pk: int) -> Response:
        """The box's last known state per plugin and provision type, and its timeline of commands and events."""
        box = _box(pk)
        return Response({**BoxOutput(box).data, "timeline": _timeline(box)})

    @extend_schema(request=BoxInput, responses=BoxOutput)
    def put(self, request: Request, pk: int) -> Response:
        """Register or move the box's Thunder address."""
        data = valid(BoxInput, request.data)
        services.box_register(device=_device(pk), **data)
        return Response(BoxOutput(_box(pk)).data)


def _command_view(kind: str, input_serializer=None):
    class CommandView(APIView):
        @extend_schema(request=input_serializer, responses={202: CommandOutput}, operation_id=f"devices_{kind}")
        def post(self, request: Request, pk: int) -> Response:
            params = {} if input_serializer is None else valid(input_serializer, request.data)
            command = services.command_create(box=_box(pk), kind=kind, params=params, requested_by=request.user)
            return Response(CommandOutput(command).data, status=status.HTTP_202_ACCEPTED)

    CommandView.__name__ = f"{kind.title().replace('_', '')}CommandView"
    return CommandView


ReprovisionView = _command_view(CommandKind.REPROVISION, ReprovisionInput)
RefreshView = _command_view(CommandKind.REFRESH)
ProvisionView = _command_view(CommandKind.PROVISION)
SetIndexView = _command_view(CommandKind.SET_INDEX, SetIndexInput)


class CommandListView(SelectorQuerysetMixin, generics.ListAPIView):
    output_serializer_class, filterset_class = CommandOutput, CommandFilter
    selector = selectors.command_list
