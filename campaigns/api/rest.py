"""Staff REST API for campaigns (``/api/v1/campaigns/``): define a draft, preview its target, move it through its
states, read its report and its members, export them as CSV. Every write is one ``campaigns.services`` call; the
core's named errors answer in the staff API's own ``{code, detail}`` body (an illegal state move is a 409 with the
error's code, a bad definition a 400 ``INVALID_CAMPAIGN``). Reads need ``view_campaign``, a new draft
``add_campaign``, every other write ``change_campaign``, on top of being support staff."""

from __future__ import annotations

import tempfile
from typing import Any

from auditlog.models import LogEntry
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns import selectors, services
from campaigns.choices import ActionKind, CampaignState, MemberState, TargetKind
from campaigns.filters import CampaignFilter, MemberFilter
from campaigns.models import Campaign, Member
from portal.kernel.api.openapi import error_response, invalid_response
from portal.kernel.api.viewsets import CreateMixin, StaffViewSet, UpdateMixin
from portal.kernel.filters import filtered
from portal.kernel.permissions import IsSupportStaff

INVALID = invalid_response(
    "INVALID_CAMPAIGN: the definition breaks a rule (target filter, action parameters, waves, window, rates); "
    "nothing was written. DRF's validation body when a field has the wrong type."
)


def refused(move: str, code: str, states: str) -> OpenApiResponse:
    return error_response(f"{code}: {move} applies only to a campaign that is {states}; the campaign is unchanged.")


NOT_EDITABLE = refused("a change", "CAMPAIGN_NOT_EDITABLE", "a draft")
NOT_SCHEDULABLE = refused("scheduling", "CAMPAIGN_NOT_SCHEDULABLE", "a draft")
NOT_STARTABLE = refused("starting", "CAMPAIGN_NOT_STARTABLE", "a draft or scheduled")
NOT_PAUSABLE = refused("pausing", "CAMPAIGN_NOT_PAUSABLE", "running")
NOT_RESUMABLE = refused("resuming", "CAMPAIGN_NOT_RESUMABLE", "paused or halted")
NOT_CANCELLABLE = refused("cancelling", "CAMPAIGN_NOT_CANCELLABLE", "not finished or cancelled")
NOT_RETRYABLE = error_response(
    "CAMPAIGN_NOT_RETRYABLE: retrying applies only to a halted, finished or paused campaign; "
    "CAMPAIGN_NOTHING_TO_RETRY: it has no failed member left that was not retried. The campaign is unchanged."
)


class CampaignPermission(IsSupportStaff):
    """Support staff holding the model permission the method needs (the admin asks for the same ones)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not super().has_permission(request, view):
            return False
        if request.method in ("GET", "HEAD", "OPTIONS"):
            needed = "view"
        else:
            needed = "add" if getattr(view, "action", None) == "create" else "change"
        return request.user.has_perm(f"campaigns.{needed}_campaign")


class CsvRenderer(BaseRenderer):
    media_type, format, charset = "text/csv", "csv", "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return JSONRenderer().render(data)  # only errors reach a renderer: the file itself is a FileResponse


# --- serializers ---------------------------------------------------------------------------------------------------


class CampaignOutput(serializers.ModelSerializer):
    state = serializers.ChoiceField(choices=CampaignState.choices)
    target_kind = serializers.ChoiceField(choices=TargetKind.choices)
    action_kind = serializers.ChoiceField(choices=ActionKind.choices)
    waves = serializers.ListField(child=serializers.CharField())
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)

    class Meta:
        model = Campaign
        fields = [
            "id", "name", "state", "target_kind", "target_filters", "action_kind", "action", "params", "waves",
            "rate_per_second", "rate_per_group", "success_threshold", "start_at", "window_start", "window_end",
            "window_timezone", "current_wave", "wave_count", "total", "halt_reason", "created_by", "created_at",
            "updated_at", "started_at", "finished_at",
        ]  # fmt: skip


class CampaignInput(serializers.Serializer):
    name = serializers.CharField(max_length=128)
    target_kind = serializers.ChoiceField(choices=TargetKind.choices)
    target_filters = serializers.DictField(
        child=serializers.CharField(allow_blank=True), default=dict, help_text="The target FilterSet's parameters."
    )
    action_kind = serializers.ChoiceField(choices=ActionKind.choices)
    action = serializers.CharField(max_length=48, help_text="A command kind, or a Conax request type.")
    params = serializers.DictField(default=dict, help_text="The action's parameters.")
    waves = serializers.ListField(
        child=serializers.JSONField(), min_length=1, max_length=20, help_text='Sizes, "N%" shares, a last "rest".'
    )
    rate_per_second = serializers.FloatField(min_value=0, max_value=100_000)
    rate_per_group = serializers.FloatField(min_value=0, max_value=100_000, required=False, allow_null=True)
    success_threshold = serializers.FloatField(min_value=0, max_value=1, default=0.95)
    start_at = serializers.DateTimeField(required=False, allow_null=True)
    window_start = serializers.TimeField(required=False, allow_null=True)
    window_end = serializers.TimeField(required=False, allow_null=True)
    window_timezone = serializers.CharField(max_length=64, default="UTC")


class PreviewOutput(serializers.Serializer):
    count = serializers.IntegerField(help_text="Members the target holds now; the start freezes them as they are then.")


class WaveReport(serializers.Serializer):
    wave = serializers.IntegerField()
    total = serializers.IntegerField()
    pending = serializers.IntegerField()
    sent = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField()


class FailureGroup(serializers.Serializer):
    error = serializers.CharField()
    count = serializers.IntegerField()


class SkippedGroup(serializers.Serializer):
    note = serializers.CharField()
    count = serializers.IntegerField()


class ReportOutput(serializers.Serializer):
    campaign_id = serializers.IntegerField()
    state = serializers.ChoiceField(choices=CampaignState.choices)
    halt_reason = serializers.CharField(help_text="Why it halted itself (empty otherwise).")
    total = serializers.IntegerField()
    waves = WaveReport(many=True, help_text="Counts by outcome, per wave.")
    failures = FailureGroup(many=True, help_text="Failed members grouped by error, most frequent first (top 50).")
    skipped = SkippedGroup(many=True)
    started_at = serializers.DateTimeField(allow_null=True)
    first_release_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    seconds_to_finish = serializers.FloatField(allow_null=True)


class MemberOutput(serializers.ModelSerializer):
    outcome = serializers.ChoiceField(source="state", choices=MemberState.choices)

    class Meta:
        model = Member
        fields = [
            "id", "wave", "label", "outcome", "box_id", "smartcard_id", "cas_box_id", "command_id", "request_id",
            "retry_of_id", "error", "note", "released_at", "finished_at",
        ]  # fmt: skip


MEMBER_FILTERS = [
    OpenApiParameter(name, type=kind, description=str(MemberFilter.base_filters[name].label))
    for name, kind in (("outcome", str), ("wave", int), ("q", str))
]
MEMBER_FILTERS[0] = OpenApiParameter("outcome", enum=MemberState.values, description="Outcome (member state)")


def _filter_params(request: Request) -> dict[str, str]:
    return {name: request.query_params[name] for name in MemberFilter.base_filters if name in request.query_params}


# --- the view ------------------------------------------------------------------------------------------------------


def _move(summary: str, refusal: OpenApiResponse, description: str) -> Any:
    return extend_schema(
        summary=summary, description=description, request=None, responses={200: CampaignOutput, 409: refusal}
    )


@extend_schema_view(
    list=extend_schema(summary="List campaigns", description="Campaigns, newest first, filtered by their FilterSet."),
    retrieve=extend_schema(summary="Read a campaign", description="A campaign's definition, state and totals."),
    create=extend_schema(
        summary="Define a draft campaign",
        description="A draft: nothing is sent until it is started (or scheduled). The definition is checked by the "
        "core's rules: the target filter by its FilterSet, the parameters by the action's own app.",
    ),
    update=extend_schema(summary="Change a draft campaign", description="The whole definition; a draft only."),
    partial_update=extend_schema(
        summary="Change a draft campaign (the same whole input as PUT)", description="The whole definition."
    ),
)
class CampaignViewSet(CreateMixin, UpdateMixin, StaffViewSet):
    output_serializer_class, create_input_class, update_input_class = CampaignOutput, CampaignInput, CampaignInput
    selector, filterset_class = selectors.campaign_list, CampaignFilter
    permission_classes = [CampaignPermission]
    create_responses = {400: INVALID}
    update_responses = {400: INVALID, 409: NOT_EDITABLE}

    def handle_exception(self, exc: Exception) -> Response:
        # An error answer of the CSV export is JSON (as documented), whatever the negotiation chose for the file.
        response = super().handle_exception(exc)
        if getattr(self, "action", None) == "export":
            self.request.accepted_renderer, self.request.accepted_media_type = JSONRenderer(), "application/json"
        return response

    def create_object(self, data: dict) -> Campaign:
        return services.campaign_create(definition=services.Definition(**data), created_by=self.request.user)

    def update_object(self, campaign: Campaign, data: dict) -> Campaign:
        return services.campaign_update(campaign=campaign, definition=services.Definition(**data))

    def _answer(self, campaign: Campaign) -> Response:
        return Response(self.output(selectors.campaign_list().get(pk=campaign.pk)))

    @extend_schema(
        summary="Count a campaign's target now",
        description="How many members the saved filter selects now (the start freezes them as they are then).",
        responses={200: PreviewOutput, 400: INVALID},
    )
    @action(detail=True, methods=["get"])
    def preview(self, request: Request, pk: Any = None) -> Response:
        return Response({"count": services.campaign_preview(campaign=self.get_object())})

    @_move("Start a campaign", NOT_STARTABLE, "draft | scheduled → running: the members are frozen now.")
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: Any = None) -> Response:
        return self._answer(services.campaign_start(campaign=self.get_object(), actor=request.user))

    @_move("Schedule a campaign", NOT_SCHEDULABLE, "draft → scheduled: the engine starts it at start_at.")
    @action(detail=True, methods=["post"])
    def schedule(self, request: Request, pk: Any = None) -> Response:
        return self._answer(services.campaign_schedule(campaign=self.get_object(), actor=request.user))

    @_move("Pause a campaign", NOT_PAUSABLE, "running → paused: nothing more is sent; members in flight finish.")
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: Any = None) -> Response:
        return self._answer(services.campaign_pause(campaign=self.get_object(), actor=request.user))

    @_move(
        "Resume a campaign",
        NOT_RESUMABLE,
        "paused | halted → running. Resuming a halted campaign overrides its threshold: it goes on with the next wave.",
    )
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: Any = None) -> Response:
        return self._answer(services.campaign_resume(campaign=self.get_object(), actor=request.user))

    @_move(
        "Cancel a campaign",
        NOT_CANCELLABLE,
        "→ cancelled: members not yet sent are skipped; members in flight finish and are recorded.",
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: Any = None) -> Response:
        return self._answer(services.campaign_cancel(campaign=self.get_object(), actor=request.user))

    @_move(
        "Retry a campaign's failed members",
        NOT_RETRYABLE,
        "halted | finished | paused → running, the failed members not yet retried sent again as a new wave first.",
    )
    @action(detail=True, methods=["post"], url_path="retry-failed")
    def retry_failed(self, request: Request, pk: Any = None) -> Response:
        return self._answer(services.campaign_retry_failed(campaign=self.get_object(), actor=request.user))

    @extend_schema(
        summary="A campaign's report",
        description="Counts by outcome per wave, failures grouped by error, time to finish, the halt reason.",
        responses={200: ReportOutput},
    )
    @action(detail=True, methods=["get"])
    def report(self, request: Request, pk: Any = None) -> Response:
        return Response(ReportOutput(services.campaign_report(campaign=self.get_object())).data)

    @extend_schema(
        summary="List a campaign's members",
        description="Members and their outcomes, in id order, paginated; filter by outcome, wave, label.",
        responses={200: MemberOutput(many=True)},
        parameters=MEMBER_FILTERS,
        filters=False,
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def members(self, request: Request, pk: Any = None) -> Response:
        campaign = self.get_object()
        # The members' FilterSet, applied as every selector does (an invalid value is a 400 with its field).
        queryset = filtered(MemberFilter, _filter_params(request), selectors.member_list(campaign=campaign))
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(MemberOutput(page, many=True).data)

    @extend_schema(
        summary="Export a campaign's members as CSV",
        description="One row per member and its outcome (member_id, wave, label, state, command_id, request_number, "
        "error, note, released_at, finished_at, retry_of); audited.",
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="The CSV file.")},
        filters=False,
    )
    @action(detail=True, methods=["get"], renderer_classes=[CsvRenderer, JSONRenderer], filter_backends=[])
    def export(self, request: Request, pk: Any = None) -> FileResponse:
        campaign = self.get_object()
        out = tempfile.TemporaryFile(mode="w+", encoding="utf-8", newline="")  # noqa: SIM115 - FileResponse closes it
        rows = services.campaign_export_csv(campaign=campaign, out=out)
        raw = out.detach()  # the text layer would close the file when it goes; the response closes it
        raw.seek(0)
        LogEntry.objects.log_create(
            campaign,
            action=LogEntry.Action.ACCESS,
            force_log=True,
            changes={},
            actor=request.user,
            additional_data={"action": "campaign_export_csv", "format": "csv", "rows": rows, "via": "api"},
        )
        return FileResponse(
            raw, as_attachment=True, filename=f"campaign-{campaign.pk}-members.csv", content_type="text/csv"
        )
