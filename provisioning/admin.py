from __future__ import annotations

from django import forms
from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join

from portal.kernel.adminexport import ExportAdminMixin
from portal.kernel.adminfilters import FilterSetAdminMixin
from portal.kernel.console import ConsoleAdmin, ConsoleInline, ObjectAction, badge
from portal.lib.ago import ago
from provisioning import selectors, services
from provisioning.admin_filters import (
    BoxModelFilter,
    BoxVendorFilter,
    CommandCreatedFilter,
    CommandFailingFilter,
    LastHeardFilter,
    ProvisioningStateFilter,
)
from provisioning.choices import CommandKind, CommandState, EventSource, ProvisionState, ProvisionType
from provisioning.exceptions import InvalidCommand
from provisioning.filters import CommandFilter
from provisioning.models import BoxEvent, Command, SetTopBox, TypeStatus


class TypeStatusInline(ConsoleInline):
    model = TypeStatus
    fields = ("provision_type", "kind", "state_badge", "reason", "refreshed_at")
    readonly_fields = fields

    @admin.display(description="State")
    def state_badge(self, status: TypeStatus) -> str:
        return badge(status.state, status.get_state_display())


class SetIndexForm(forms.Form):
    label = forms.CharField(max_length=64)
    index = forms.IntegerField(min_value=0, max_value=2**32 - 1)


class ReprovisionForm(forms.Form):
    provision_type = forms.ChoiceField(
        choices=ProvisionType.choices, widget=forms.RadioSelect, label="Provision type", initial=ProvisionType.HARDWARE
    )


def event_words(event: BoxEvent) -> str:
    """A box event as a sentence: "Box reported provisioning succeeded (status 200), pushed by the box"."""
    if event.name == "provisioningchange":
        outcome = "succeeded" if event.status == 200 else "failed"
        what = f"Box reported provisioning {outcome}"
    else:
        what = f"Box sent event {event.name}"
    status = f" (status {event.status})" if event.status is not None else ""
    source = "pushed by the box" if event.source == EventSource.PUSH else "over the portal's subscription"
    return f"{what}{status}, {source}"


def command_words(command: Command) -> str:
    """A command as a sentence: "Reprovision HARDWARE requested by alice: Succeeded; the box reports HARDWARE in
    progress"."""
    params = command.params or {}
    if command.kind == CommandKind.REPROVISION:
        what = f"Reprovision {params.get('provision_type', '')}"
    elif command.kind == CommandKind.SET_INDEX:
        what = f"Set key index {params.get('label', '')} to {params.get('index', '')}"
    elif command.kind == CommandKind.PROVISION:
        what = "Platform provision"
    else:
        what = "Status refresh"
    who = command.requested_by.get_username() if command.requested_by else "the portal"
    text = f"{what} requested by {who}: {command.get_state_display()}"
    if command.state == CommandState.FAILED and command.last_error:
        text += f" ({command.last_error})"
    elif command.state == CommandState.QUEUED and command.attempts:
        text += f", attempt {command.attempts + 1} due (last error: {command.last_error})"
    reported = box_reported(command)
    return f"{text}; {reported}" if reported else text


def box_reported(command: Command) -> str:
    """What the box said in the command's answer: a command can succeed while the box is still provisioning."""
    types = (command.result or {}).get("types") or {}
    if not types:
        return ""
    parts = []
    for kind, state in sorted(types.items()):
        label = ProvisionState(state).label.lower() if state in ProvisionState.values else state
        parts.append(f"{kind} {label}")
    return "the box reports " + ", ".join(parts)


@admin.register(SetTopBox)
class SetTopBoxAdmin(ExportAdminMixin, ConsoleAdmin):
    list_display = (
        "device",
        "address",
        "api_version",
        "provision_id",
        "platform_status",
        "last_heard",
        "refreshed_at",
    )
    list_filter = (LastHeardFilter, ProvisioningStateFilter, BoxVendorFilter, BoxModelFilter, "api_version")
    search_fields = ("device__serial_number", "thunder_host", "provision_id", "soc_id")
    list_select_related = ("device",)
    autocomplete_fields = ("device",)
    readonly_fields = (
        "api_version",
        "soc_id",
        "netflix_esn",
        "provision_id",
        "platform_status",
        "platform_tokens",
        "last_event_status",
        "last_event_at",
        "refreshed_at",
        "timeline",
    )
    inlines = (TypeStatusInline,)
    actions = ("reprovision_hardware", "reprovision_cryptanium", "refresh", "provision", "set_index")
    object_actions = (
        ObjectAction("refresh", "Refresh status", run="refresh_one"),
        ObjectAction(
            "reprovision",
            "Reprovision",
            run="reprovision_one",
            form=ReprovisionForm,
            confirm="Reprovisioning asks the box to fetch the chosen type's keys again; while it runs, the box "
            "reports that type as in progress.",
        ),
        ObjectAction(
            "provision",
            "Platform provision",
            run="provision_one",
            confirm="Asks the box to run its platform provisioning (Provisioning.1.provision) now.",
        ),
        ObjectAction("set_index", "Set key index", run="set_index_one", form=SetIndexForm),
    )

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return ("device", *fields) if obj is not None else fields

    def service_save(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            return services.box_update(box=obj, host=data["thunder_host"], port=data["thunder_port"])
        return services.box_register(device=data["device"], host=data["thunder_host"], port=data["thunder_port"])

    def service_delete(self, request, obj):
        services.box_delete(box=obj)

    @admin.display(description="Last heard", ordering="last_event_at")
    def last_heard(self, box: SetTopBox) -> str:
        if box.last_event_at is None:
            return "never"
        outcome = "ok" if box.last_event_status == 200 else "failed"
        return format_html(
            "{} <small>({} {})</small>", ago(box.last_event_at, timezone.now()), outcome, box.last_event_status
        )

    @admin.display(description="Timeline (newest first)")
    def timeline(self, box: SetTopBox) -> str:
        rows = []
        for item in selectors.box_timeline(box=box, length=30):
            text = command_words(item["command"]) if "command" in item else event_words(item["event"])
            at = timezone.localtime(item["at"])
            rows.append((at.isoformat(), formats.date_format(at, "DATETIME_FORMAT"), text))
        html = format_html_join("", '<li><time datetime="{}">{}</time> {}</li>', rows)
        return format_html('<ol class="timeline">{}</ol>', html) if rows else "—"

    def _one(self, request, box: SetTopBox, kind: str, params: dict | None = None) -> str:
        result = services.commands_queue(box_ids=[box.pk], kind=kind, params=params, requested_by=request.user)
        if result.refused:
            raise InvalidCommand(f"not queued: {result.refused[box.pk]}")
        return f"Queued: {command_words(result.queued[0])}."

    def refresh_one(self, request, obj, data) -> str:
        return self._one(request, obj, CommandKind.REFRESH)

    def reprovision_one(self, request, obj, data) -> str:
        return self._one(request, obj, CommandKind.REPROVISION, {"provision_type": data["provision_type"]})

    def provision_one(self, request, obj, data) -> str:
        return self._one(request, obj, CommandKind.PROVISION)

    def set_index_one(self, request, obj, data) -> str:
        return self._one(request, obj, CommandKind.SET_INDEX, data)

    def _bulk(self, request, queryset, kind: str, params: dict | None = None):
        return self.bulk(request, queryset, f"boxes.{kind}", params=params)

    @admin.action(description="Reprovision HARDWARE", permissions=["change"])
    def reprovision_hardware(self, request, queryset):
        return self._bulk(request, queryset, CommandKind.REPROVISION, {"provision_type": ProvisionType.HARDWARE})

    @admin.action(description="Reprovision CRYPTANIUM", permissions=["change"])
    def reprovision_cryptanium(self, request, queryset):
        return self._bulk(request, queryset, CommandKind.REPROVISION, {"provision_type": ProvisionType.CRYPTANIUM})

    @admin.action(description="Refresh status", permissions=["change"])
    def refresh(self, request, queryset):
        return self._bulk(request, queryset, CommandKind.REFRESH)

    @admin.action(description="Platform provision (Provisioning.1.provision)", permissions=["change"])
    def provision(self, request, queryset):
        return self._bulk(request, queryset, CommandKind.PROVISION)

    @admin.action(description="Set a key index…", permissions=["change"])
    def set_index(self, request, queryset):
        form = SetIndexForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            return self._bulk(request, queryset, CommandKind.SET_INDEX, form.cleaned_data)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "boxes": queryset,
            "title": "Set a key index",
        }
        return TemplateResponse(request, "admin/provisioning/settopbox/set_index.html", context)


@admin.register(Command)
class CommandAdmin(FilterSetAdminMixin, ExportAdminMixin, ConsoleAdmin):
    filterset_class = CommandFilter
    list_display = (
        "id",
        "box",
        "kind",
        "state_badge",
        "box_says",
        "attempts",
        "requested_by",
        "created_at",
        "finished_at",
    )
    list_filter = ("state", CommandFailingFilter, CommandCreatedFilter, "kind")
    search_fields = ("box__device__serial_number",)
    list_select_related = ("box__device", "requested_by")
    readonly_fields = ("description", *[f.name for f in Command._meta.fields])
    change_list_template = "admin/portal/live_change_list.html"
    live_event = "device.command device.commands"

    @admin.display(description="State", ordering="state")
    def state_badge(self, command: Command) -> str:
        return badge(command.state, command.get_state_display())

    @admin.display(description="The box reports")
    def box_says(self, command: Command) -> str:
        return box_reported(command).removeprefix("the box reports ") or "—"

    @admin.display(description="What happened")
    def description(self, command: Command) -> str:
        return command_words(command)


@admin.register(BoxEvent)
class BoxEventAdmin(ExportAdminMixin, ConsoleAdmin):
    list_display = ("box", "name", "status", "source", "received_at")
    list_filter = ("source", "status")
    search_fields = ("box__device__serial_number",)
    list_select_related = ("box__device",)
    readonly_fields = ("description", *[f.name for f in BoxEvent._meta.fields])

    @admin.display(description="What happened")
    def description(self, event: BoxEvent) -> str:
        return event_words(event)
