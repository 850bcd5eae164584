from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.template.response import TemplateResponse
from django.utils.html import format_html_join

from portal.kernel.adminfilters import FilterSetAdminMixin
from provisioning import selectors, services
from provisioning.admin_filters import (
    BoxModelFilter,
    BoxVendorFilter,
    CommandCreatedFilter,
    CommandFailingFilter,
    LastHeardFilter,
    ProvisioningStateFilter,
)
from provisioning.choices import CommandKind, ProvisionType
from provisioning.exceptions import InvalidCommand
from provisioning.filters import CommandFilter
from provisioning.models import BoxEvent, Command, SetTopBox, TypeStatus


class TypeStatusInline(admin.TabularInline):
    model = TypeStatus
    fields = ("provision_type", "kind", "state", "reason", "refreshed_at")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False


class SetIndexForm(forms.Form):
    label = forms.CharField(max_length=64)
    index = forms.IntegerField(min_value=0, max_value=2**32 - 1)


@admin.register(SetTopBox)
class SetTopBoxAdmin(admin.ModelAdmin):
    list_display = (
        "device",
        "address",
        "api_version",
        "provision_id",
        "platform_status",
        "last_event_status",
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

    @admin.display(description="Timeline (newest first)")
    def timeline(self, box: SetTopBox) -> str:
        rows = []
        for item in selectors.box_timeline(box=box, length=30):
            if "command" in item:
                c = item["command"]
                what = f"{c.get_kind_display()} {c.params or ''} → {c.state}"
                detail = c.last_error or (c.requested_by.username if c.requested_by else "portal")
            else:
                e = item["event"]
                what, detail = f"event {e.name} status {e.status}", e.get_source_display()
            rows.append((item["at"].strftime("%Y-%m-%d %H:%M:%S"), what, detail))
        return format_html_join("", "<div><time>{}</time> {} <small>({})</small></div>", rows) or "—"

    def _queue(self, request, queryset: QuerySet, kind: str, params: dict | None = None) -> None:
        try:
            commands = services.commands_create(
                boxes=list(queryset), kind=kind, params=params, requested_by=request.user
            )
        except InvalidCommand as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"Queued {len(commands)} command(s): {CommandKind(kind).label}.", messages.SUCCESS)

    @admin.action(description="Reprovision HARDWARE", permissions=["change"])
    def reprovision_hardware(self, request, queryset) -> None:
        self._queue(request, queryset, CommandKind.REPROVISION, {"provision_type": ProvisionType.HARDWARE})

    @admin.action(description="Reprovision CRYPTANIUM", permissions=["change"])
    def reprovision_cryptanium(self, request, queryset) -> None:
        self._queue(request, queryset, CommandKind.REPROVISION, {"provision_type": ProvisionType.CRYPTANIUM})

    @admin.action(description="Refresh status", permissions=["change"])
    def refresh(self, request, queryset) -> None:
        self._queue(request, queryset, CommandKind.REFRESH)

    @admin.action(description="Platform provision (Provisioning.1.provision)", permissions=["change"])
    def provision(self, request, queryset) -> None:
        self._queue(request, queryset, CommandKind.PROVISION)

    @admin.action(description="Set a key index…", permissions=["change"])
    def set_index(self, request, queryset):
        form = SetIndexForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            self._queue(request, queryset, CommandKind.SET_INDEX, form.cleaned_data)
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "boxes": queryset,
            "title": "Set a key index",
        }
        return TemplateResponse(request, "admin/provisioning/settopbox/set_index.html", context)


@admin.register(Command)
class CommandAdmin(FilterSetAdminMixin, admin.ModelAdmin):
    filterset_class = CommandFilter
    list_display = ("id", "box", "kind", "state", "attempts", "requested_by", "created_at", "finished_at")
    list_filter = ("state", CommandFailingFilter, CommandCreatedFilter, "kind")
    search_fields = ("box__device__serial_number",)
    list_select_related = ("box__device", "requested_by")
    readonly_fields = [f.name for f in Command._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(BoxEvent)
class BoxEventAdmin(admin.ModelAdmin):
    list_display = ("box", "name", "status", "source", "received_at")
    list_filter = ("source", "status")
    search_fields = ("box__device__serial_number",)
    list_select_related = ("box__device",)
    readonly_fields = [f.name for f in BoxEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
