from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from portal.kernel import services
from portal.kernel.console import ConsoleAdmin, badge
from portal.kernel.models import ApiToken, BulkJob, WorkerHeartbeat

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


@admin.register(BulkJob)
class BulkJobAdmin(ConsoleAdmin):
    """Background work over many objects: its progress, live, and the objects that could not be done and why."""

    list_display = ("title", "state_badge", "progress", "requested_by", "created_at", "finished_at")
    list_filter = ("state", "operation")
    list_select_related = ("requested_by", "content_type")
    readonly_fields = ("title", "state", "total", "done", "failed", "requested_by", "created_at", "finished_at")
    fields = readonly_fields
    ordering = ("-created_at",)

    @admin.display(description="State", ordering="state")
    def state_badge(self, job: BulkJob) -> str:
        return badge(job.state, job.get_state_display())

    @admin.display(description="Progress")
    def progress(self, job: BulkJob) -> str:
        failed = f", {job.failed} failed" if job.failed else ""
        return f"{job.cursor} / {job.total} done{failed}"

    def _change_url_name(self, job: BulkJob) -> str:
        return f"admin:{job.content_type.app_label}_{job.content_type.model}_change"

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        job = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if job is not None:
            context["change_url_name"] = self._change_url_name(job)
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self) -> list[URLPattern]:
        panel = self.admin_site.admin_view(self.panel_view)
        return [path("<int:job_id>/panel/", panel, name="portal_bulkjob_panel"), *super().get_urls()]

    def panel_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        job = self.get_queryset(request).filter(pk=job_id).first()
        if job is None or not self.has_view_permission(request, job):
            raise Http404
        context = {"job": job, "change_url_name": self._change_url_name(job)}
        return TemplateResponse(request, "admin/portal/bulkjob/panel.html", context)
