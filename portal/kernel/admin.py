from __future__ import annotations

from auditlog.admin import LogEntryAdmin
from auditlog.models import LogEntry
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from portal.kernel import services
from portal.kernel.adminexport import ExportAdminMixin
from portal.kernel.models import ApiToken, WorkerHeartbeat

admin.site.site_header = "Provisioning portal"
admin.site.site_title = "Provisioning portal"
admin.site.index_title = "Operations"


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens can be inspected and revoked; they are never created or shown here (only digests are stored)."""

    list_display = ("id", "user", "purpose", "created_at", "last_used_at", "expires_at", "revoked_at")
    list_filter = ("purpose", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("user__username",)
    list_select_related = ("user",)
    readonly_fields = ("user", "purpose", "created_at", "last_used_at", "expires_at", "idle_timeout", "metadata")
    fields = (*readonly_fields, "revoked_at")
    actions = ("revoke",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        count = sum(services.token_revoke(token=token) for token in queryset)
        self.message_user(request, f"Revoked {count} token(s).")


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("hostname", "seen_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: WorkerHeartbeat | None = None) -> bool:
        return False


admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class AuditLogEntryAdmin(ExportAdminMixin, LogEntryAdmin):
    export_fields = (
        "timestamp",
        "actor",
        "remote_addr",
        "action",
        "content_type",
        "object_pk",
        "object_repr",
        "changes",
        "additional_data",
    )
