"""Staff REST API: ``GET /api/v1/fleet/summary/``, the dashboard's numbers (``portal.fleet``, one source of truth
with the admin's index): counts with the admin links that list exactly those rows, the latest failures, health and
queues, and the charts' series."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import fleet
from portal.kernel.api.rest import valid

TONE = "ok | warn | bad, or empty: how the dashboard colours it (warn and bad only when the count is not 0)."


class FleetTallyOutput(serializers.Serializer):
    key = serializers.CharField(help_text="A state, a bucket, or `total`.")
    label = serializers.CharField()
    count = serializers.IntegerField()
    url = serializers.CharField(help_text="The admin list of exactly these rows.")
    tone = serializers.CharField(help_text=TONE)


class FleetProvisioningOutput(serializers.Serializer):
    provision_type = serializers.CharField()
    states = FleetTallyOutput(many=True, help_text="Boxes per state of this type as last read, and `none`: never read.")


class FleetFailureOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["command", "request"])
    at = serializers.DateTimeField(allow_null=True)
    what = serializers.CharField()
    detail = serializers.CharField(help_text="What the box or the head-end reported.")
    url = serializers.CharField()


class FleetCheckOutput(serializers.Serializer):
    name = serializers.CharField()
    result = serializers.CharField(help_text="`ok`, `not configured` or `error: <name>`, as /readyz.")
    tone = serializers.CharField(help_text=TONE)


class FleetWorkersOutput(serializers.Serializer):
    workers_seen = serializers.IntegerField()
    last_heartbeat_age_s = serializers.FloatField(required=False)
    tone = serializers.CharField(help_text=f"`bad` past {fleet.HEARTBEAT_STALE_S} s without a heartbeat.")


class FleetQueueOutput(serializers.Serializer):
    name = serializers.CharField()
    depth = serializers.IntegerField(allow_null=True, help_text="Messages waiting; null when the broker is down.")


class FleetSeriesOutput(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    counts = serializers.ListField(child=serializers.IntegerField(), help_text="One count per bucket.")
    total = serializers.IntegerField()


class FleetChartOutput(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField()
    buckets = serializers.ListField(child=serializers.DateTimeField(), help_text="Each bucket's start.")
    series = FleetSeriesOutput(many=True)


class FleetSummaryOutput(serializers.Serializer):
    at = serializers.DateTimeField(help_text="When the numbers were read.")
    window_hours = serializers.IntegerField(help_text="Commands and requests: those created in this many hours.")
    devices = FleetTallyOutput(many=True)
    boxes_heard = FleetTallyOutput(many=True)
    provisioning = FleetProvisioningOutput(many=True)
    commands = FleetTallyOutput(many=True)
    requests = FleetTallyOutput(many=True)
    failures = FleetFailureOutput(many=True)
    checks = FleetCheckOutput(many=True)
    workers = FleetWorkersOutput()
    queues = FleetQueueOutput(many=True)
    range = serializers.CharField()
    charts = FleetChartOutput(many=True)


class FleetSummaryInput(serializers.Serializer):
    range = serializers.ChoiceField(choices=list(fleet.RANGES), default="24h", help_text="The charts' range.")


class FleetSummaryView(APIView):
    @extend_schema(parameters=[FleetSummaryInput], responses={200: FleetSummaryOutput}, tags=["fleet"])
    def get(self, request: Request) -> Response:
        """The fleet at a glance: the admin dashboard's numbers."""
        range_key = valid(FleetSummaryInput, request.query_params)["range"]
        body = fleet.summary().as_dict()
        body |= {"range": range_key, "charts": [chart.as_dict() for chart in fleet.charts(range_key=range_key)]}
        return Response(FleetSummaryOutput(body).data)
