"""The FilterSet of the set-top-box commands: the staff API lists them through it (``selectors.command_list``)."""

from __future__ import annotations

import django_filters as filters

from devices.models import Device
from portal.kernel.filters import IdFilter
from provisioning.choices import CommandKind, CommandState
from provisioning.models import Command, SetTopBox


class CommandFilter(filters.FilterSet):
    device_id = IdFilter(field_name="box__device_id", queryset=Device.objects.all(), label="Device id")
    box_id = IdFilter(field_name="box_id", queryset=SetTopBox.objects.all(), label="Set-top box id")
    state = filters.ChoiceFilter(choices=CommandState.choices, label="State")
    kind = filters.ChoiceFilter(choices=CommandKind.choices, label="Kind")
    q = filters.CharFilter(field_name="box__device__serial_number", lookup_expr="icontains", label="Serial contains")

    class Meta:
        model = Command
        fields = ["device_id", "box_id", "state", "kind", "q"]
