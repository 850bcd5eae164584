import django_filters as filters

from provisioning.choices import CommandKind, CommandState
from provisioning.models import Command


class CommandFilter(filters.FilterSet):
    device_id = filters.NumberFilter(field_name="box__device_id", label="Device id")
    box_id = filters.NumberFilter(field_name="box_id", label="Set-top box id")
    state = filters.ChoiceFilter(choices=CommandState.choices, label="State")
    kind = filters.ChoiceFilter(choices=CommandKind.choices, label="Kind")
    q = filters.CharFilter(field_name="box__device__serial_number", lookup_expr="icontains", label="Serial contains")

    class Meta:
        model = Command
        fields = ["device_id", "box_id", "state", "kind", "q"]
