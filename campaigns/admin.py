"""The campaigns' console page (docs/campaigns-console.md).

A draft is a form (its definition, saved through ``campaign_create`` / ``campaign_update``) above its panel; from the
start on, the page *is* the live panel (``admin/campaigns/campaign/panel.html``, served alone at ``<pk>/panel/``):
state, progress, the report and the buttons that apply, re-read whenever the staff socket says this campaign moved
(``campaign.progress``), so no field can sit stale under a live one. Every button is a service move; one that no
longer applies says so (``ConsoleAdmin.object_action_view``), and the service refuses a move that raced it.
"""

from __future__ import annotations

import dataclasses
import tempfile
from typing import Any

from auditlog.models import LogEntry
from django import forms
from django.contrib import admin
from django.db.models import Exists, OuterRef, QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from campaigns import engine, services
from campaigns.actions import BOX_REQUESTS, CARD_REQUESTS
from campaigns.choices import ActionKind, CampaignState, MemberState, TargetKind
from campaigns.exceptions import CampaignError
from campaigns.filters import CampaignFilter
from campaigns.models import Campaign, Member
from campaigns.targets import FILTERSETS
from portal.kernel.adminfilters import FilterSetAdminMixin
from portal.kernel.console import ConsoleAdmin, ObjectAction
from provisioning.choices import CommandKind

S = CampaignState
TONES = {S.DRAFT: "idle", S.SCHEDULED: "busy", S.RUNNING: "busy", S.PAUSED: "idle", S.HALTED: "bad"}
TONES |= {S.CANCELLED: "idle", S.FINISHED: "ok"}
TARGETS = {  # what staff read (the choices' labels name the FilterSet classes)
    TargetKind.DEVICES: "Devices",
    TargetKind.SET_TOP_BOXES: "CAS set-top boxes",
    TargetKind.SMARTCARDS: "Smartcards",
    TargetKind.SUBSCRIPTIONS: "Subscriptions (their smartcards)",
}
DEFINITION = [f.name for f in dataclasses.fields(services.Definition)]
OUTCOMES = (  # the report's columns, in the words staff read
    (MemberState.PENDING, "Not sent yet"),
    (MemberState.SENT, "In flight"),
    (MemberState.SUCCEEDED, "Succeeded"),
    (MemberState.FAILED, "Failed"),
    (MemberState.SKIPPED, "Skipped"),
)


def action_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    conax = sorted(str(t) for t in CARD_REQUESTS | BOX_REQUESTS)
    return [
        (str(ActionKind.COMMAND.label), [(k, label) for k, label in CommandKind.choices]),
        (str(ActionKind.CONAX.label), [(t, t.replace("_", " ").capitalize()) for t in conax]),
    ]


def filter_help() -> str:
    """Which keys each target kind's filter takes: the fields of that model's own FilterSet, with their labels."""
    rows = []
    for kind, (filterset, _model) in FILTERSETS.items():
        names = ", ".join(f"{name} ({f.label})" if f.label else name for name, f in filterset.base_filters.items())
        rows.append((TARGETS[kind], names))
    items = format_html_join("", "<li><strong>{}</strong>: {}</li>", rows)
    return format_html(
        'The target\'s FilterSet parameters as a JSON object, e.g. {{"model": "X1", "state": "activated"}}; '
        "empty selects every one. Keys by target kind:<ul>{}</ul>",
        items,
    )


class CampaignForm(forms.ModelForm):
    target_kind = forms.ChoiceField(choices=list(TARGETS.items()), label="Target")
    action = forms.ChoiceField(choices=action_choices, help_text="A set-top-box command, or a Conax request type.")
    waves = forms.JSONField(
        initial=["1%", "10%", "rest"],
        help_text='Wave sizes as a JSON list: numbers, "N%" shares of the target; the last is "rest".',
    )
    params = forms.JSONField(
        required=False,
        initial=dict,
        help_text='The action\'s parameters as a JSON object, e.g. {"provision_type": "HARDWARE"} for reprovision, '
        '{"service": "SPORT"} for ADD_SUBSCRIPTIONS, {"message": "…"} for a mail message.',
    )

    class Meta:
        model = Campaign
        fields = DEFINITION

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "target_filters" in self.fields:
            self.fields["target_filters"].help_text = filter_help()
            self.fields["target_filters"].required = False

    def clean_target_filters(self) -> dict:
        return self.cleaned_data.get("target_filters") or {}

    def clean_params(self) -> dict:
        return self.cleaned_data.get("params") or {}


class TargetListFilter(admin.SimpleListFilter):
    title, parameter_name = "target", "target_kind"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(kind), words) for kind, words in TARGETS.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> QuerySet[Campaign]:
        return queryset.filter(target_kind=self.value()) if self.value() else queryset


@admin.register(Campaign)
class CampaignAdmin(FilterSetAdminMixin, ConsoleAdmin):
    form = CampaignForm
    filterset_class = CampaignFilter
    list_display = ("name", "state_badge", "action_words", "target_words", "total", "started_at", "finished_at")
    list_filter = ("state", "action_kind", TargetListFilter)
    search_fields = ("name",)
    fieldsets = (
        (None, {"fields": ("name", "target_kind", "target_filters")}),
        ("Action", {"fields": ("action_kind", "action", "params")}),
        ("Plan", {"fields": ("waves", "rate_per_second", "rate_per_group", "success_threshold")}),
        ("When", {"fields": ("start_at", "window_start", "window_end", "window_timezone")}),
    )
    object_actions = (
        ObjectAction(
            "start",
            "Start",
            run="start_one",
            shown="can_start",
            confirm="Starting freezes them as they are now: anything added to the fleet later is not part of it. "
            "The first wave is released at once, at the campaign's rate.",
        ),
        ObjectAction("schedule", "Schedule", run="schedule_one", shown="can_schedule"),
        ObjectAction("pause", "Pause", run="pause_one", shown="can_pause"),
        ObjectAction(
            "resume",
            "Resume",
            run="resume_one",
            shown="can_resume",
            confirm="Releasing goes on at the campaign's rate. A halted campaign goes on with its next wave although "
            "the last one was below its success threshold.",
        ),
        ObjectAction(
            "retry_failed",
            "Retry failed",
            run="retry_one",
            shown="can_retry",
            confirm="Every failed member not yet retried is sent again, as a new wave that goes first; the campaign "
            "runs again.",
        ),
        ObjectAction(
            "cancel",
            "Cancel",
            run="cancel_one",
            shown="can_cancel",
            danger=True,
            confirm="Members not yet sent are skipped and will never be sent; members in flight finish and their "
            "outcomes are still recorded. A cancelled campaign cannot be started or resumed again.",
        ),
    )

    # --- the list --------------------------------------------------------------------------------------------------

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj: Campaign) -> str:
        return format_html('<span class="badge badge-{}">{}</span>', TONES[S(obj.state)], obj.get_state_display())

    @admin.display(description="target", ordering="target_kind")
    def target_words(self, obj: Campaign) -> str:
        return TARGETS[TargetKind(obj.target_kind)]

    @admin.display(description="action")
    def action_words(self, obj: Campaign) -> str:
        return services.action_label(obj)

    # --- the form: a draft's definition, through the services ----------------------------------------------------

    def get_readonly_fields(self, request: HttpRequest, obj: Campaign | None = None) -> list[str]:
        if obj is not None and obj.state != S.DRAFT:
            return list(DEFINITION)  # frozen once it leaves draft: the page shows no Save button
        return []

    def service_save(self, request: HttpRequest, obj: Campaign, form: forms.ModelForm, change: bool) -> Campaign:
        definition = services.Definition(**{name: form.cleaned_data.get(name) for name in DEFINITION})
        if change:
            return services.campaign_update(campaign=obj, definition=definition)
        return services.campaign_create(definition=definition, created_by=request.user)

    # --- when each button applies ------------------------------------------------------------------------------------

    def can_start(self, obj: Campaign) -> bool:
        return obj.state in services.STARTABLE

    def can_schedule(self, obj: Campaign) -> bool:
        return obj.state == S.DRAFT

    def can_pause(self, obj: Campaign) -> bool:
        return obj.state in services.PAUSABLE

    def can_resume(self, obj: Campaign) -> bool:
        return obj.state in services.RESUMABLE

    def can_cancel(self, obj: Campaign) -> bool:
        return obj.state in services.CANCELLABLE

    def can_retry(self, obj: Campaign) -> bool:
        return obj.state in services.RETRYABLE and retry_left(obj) > 0

    # --- the buttons' work: one service move each ----------------------------------------------------------------

    def start_one(self, request: HttpRequest, obj: Campaign, data: dict) -> str:
        started = services.campaign_start(campaign=obj, actor=request.user)
        return f"Started “{started.name}”: {started.total} members frozen in {started.wave_count} waves."

    def schedule_one(self, request: HttpRequest, obj: Campaign, data: dict) -> str:
        services.campaign_schedule(campaign=obj, actor=request.user)
        when = f"at {obj.start_at:%Y-%m-%d %H:%M:%S %Z}" if obj.start_at else "at the engine's next tick"
        return f"Scheduled “{obj.name}”: it starts {when}."

    def pause_one(self, request: HttpRequest, obj: Campaign, data: dict) -> str:
        services.campaign_pause(campaign=obj, actor=request.user)
        return f"Paused “{obj.name}”: nothing more is sent; members in flight finish."

    def resume_one(self, request: HttpRequest, obj: Campaign, data: dict) -> str:
        services.campaign_resume(campaign=obj, actor=request.user)
        return f"Resumed “{obj.name}”."

    def retry_one(self, request: HttpRequest, obj: Campaign, data: dict) -> str:
        before = obj.total
        retried = services.campaign_retry_failed(campaign=obj, actor=request.user)
        return f"Retrying {retried.total - before} failed members of “{obj.name}” as wave {retried.current_wave}."

    def cancel_one(self, request: HttpRequest, obj: Campaign, data: dict) -> str:
        services.campaign_cancel(campaign=obj, actor=request.user)
        return f"Cancelled “{obj.name}”: members not yet sent are skipped."

    def object_action_view(self, request: HttpRequest, object_id: str, name: str) -> Any:
        """The console's, with the Start confirmation saying how many members the target holds right now."""
        response = super().object_action_view(request, object_id, name)
        context = getattr(response, "context_data", None)
        if not context or not isinstance(context.get("object"), Campaign):
            return response
        obj = context["object"]
        if name == "start":
            count, problem = preview(obj)
            words = problem or f"The target holds {count} members now."
            context["action"] = dataclasses.replace(context["action"], confirm=f"{words} {context['action'].confirm}")
        # The page names the campaign, never its state (the model's str carries it, and this page is not re-read).
        context["object"], context["title"] = obj.name, f"{context['action'].label}: {obj.name}"
        return response

    # --- the live panel, the report and the export ---------------------------------------------------------------

    def get_urls(self) -> list:
        panel = self.admin_site.admin_view(self.panel_view)
        export = self.admin_site.admin_view(self.export_view)
        return [
            path("<int:pk>/panel/", panel, name="campaigns_campaign_panel"),
            path("<int:pk>/export.csv", export, name="campaigns_campaign_export"),
            *super().get_urls(),
        ]

    def _viewable(self, request: HttpRequest, pk: int) -> Campaign:
        obj = self.get_queryset(request).filter(pk=pk).first()
        if obj is None or not self.has_view_permission(request, obj):
            raise Http404("No such campaign.")
        return obj

    def detail(self, request: HttpRequest, obj: Campaign) -> dict[str, Any]:
        context: dict[str, Any] = {
            "c": obj,
            "opts": self.opts,
            "tone": TONES[S(obj.state)],
            "object_actions": self.visible_actions(request, obj),
            "action_words": services.action_label(obj),
            "target_words": TARGETS[TargetKind(obj.target_kind)],
        }
        if obj.state in (S.DRAFT, S.SCHEDULED):
            context["preview_count"], context["preview_problem"] = preview(obj)
        if obj.started_at is not None:
            context |= progress_words(engine.progress(campaign=obj))
            context["report"] = report_words(services.campaign_report(campaign=obj))
        return context

    def panel_view(self, request: HttpRequest, pk: int) -> TemplateResponse:
        obj = self._viewable(request, pk)
        return TemplateResponse(request, "admin/campaigns/campaign/panel.html", self.detail(request, obj))

    def export_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Every member and its outcome (``campaign_export_csv``), spooled to a temporary file (bounded memory) and
        sent; the export is audited (who, which campaign, how many rows)."""
        obj = self._viewable(request, pk)
        out = tempfile.TemporaryFile(mode="w+", encoding="utf-8", newline="")  # noqa: SIM115 - the response closes it
        rows = services.campaign_export_csv(campaign=obj, out=out)
        raw = out.detach()  # the text layer would close the file when it goes; the response closes it
        raw.seek(0)
        audit_export(request, obj, rows=rows)
        return FileResponse(raw, as_attachment=True, filename=f"campaign-{obj.pk}-members.csv", content_type="text/csv")

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        obj = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if obj is not None:
            context |= {**self.detail(request, obj), "title": f"Campaign {obj.pk}"}
        return super().change_view(request, object_id, form_url, context)


def retry_left(obj: Campaign) -> int:
    """Failed members with no retry yet: what ``campaign_retry_failed`` would send again."""
    retried = Member.objects.filter(campaign_id=obj.pk, retry_of_id=OuterRef("pk"))
    failed: QuerySet[Member] = Member.objects.filter(campaign_id=obj.pk, state=MemberState.FAILED)
    return failed.filter(~Exists(retried)).count()


def preview(obj: Campaign) -> tuple[int | None, str]:
    """The target's size now, or why it cannot be counted (a filter that no longer holds)."""
    try:
        return services.campaign_preview(campaign=obj), ""
    except CampaignError as exc:
        return None, f"The target cannot be counted: {exc.message}."


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def progress_words(p: dict[str, Any]) -> dict[str, Any]:
    share = round(100 * p["done"] / p["total"]) if p["total"] else 0
    return {
        "progress": p,
        "done_share": share,
        "rate_words": f"{p['rate']:.1f} members/s" if p["rate"] else "not sending",
        "eta_words": duration(p["eta_seconds"]) or "—",
    }


def report_words(report: dict[str, Any]) -> dict[str, Any]:
    waves = [
        {"wave": row["wave"], "total": row["total"], "cells": [row.get(state, 0) for state, _ in OUTCOMES]}
        for row in report["waves"]
    ]
    return {
        **report,
        "columns": [words for _, words in OUTCOMES],
        "rows": waves,
        "time_to_finish": duration(report["seconds_to_finish"]),
    }


def audit_export(request: HttpRequest, obj: Campaign, *, rows: int) -> None:
    LogEntry.objects.log_create(
        obj,
        action=LogEntry.Action.ACCESS,
        force_log=True,
        changes={},
        actor=request.user if request.user.is_authenticated else None,
        additional_data={"action": "campaign_export_csv", "format": "csv", "rows": rows},
    )


def export_url(obj: Campaign) -> str:
    return reverse("admin:campaigns_campaign_export", args=[obj.pk])
