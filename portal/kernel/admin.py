from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditlog.admin import LogEntryAdmin
from auditlog.models import LogEntry
from django.contrib import admin
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone

from portal.kernel import adminexport, adminfilters, jobs, services
from portal.kernel.adminexport import ExportAdminMixin
from portal.kernel.console import ConsoleAdmin, ObjectAction, badge
from portal.kernel.models import ApiToken, BulkJob, WorkerHeartbeat

admin.site.site_header = "Provisioning portal"
admin.site.site_title = "Provisioning portal"
admin.site.index_title = "Operations"


@admin.register(ApiToken)
class ApiTokenAdmin(ConsoleAdmin):
    """Tokens are listed and revoked here, never created or shown (only digests are stored). Support staff see and
    revoke their own tokens; superusers see everyone's, with the dialect's data."""

    list_display = ("id", "user", "purpose", "created_at", "last_used_at", "expires_at", "status")
    list_filter = ("purpose", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("user__username",)
    list_select_related = ("user",)
    readonly_fields = ("user", "purpose", "created_at", "last_used_at", "expires_at", "idle_timeout", "revoked_at")
    actions = ("revoke",)
    object_actions = (
        ObjectAction(
            "revoke",
            "Revoke",
            run="revoke_one",
            shown="is_live",
            danger=True,
            confirm="Revoking ends this token at once: every client that uses it is refused from its next call and "
            "must log in again.",
        ),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiToken]:
        tokens = super().get_queryset(request)
        return tokens if request.user.is_superuser else tokens.filter(user_id=request.user.pk)

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> tuple[str, ...]:
        fields = tuple(self.readonly_fields)
        return (*fields, "metadata") if request.user.is_superuser else fields  # dialect internals

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> tuple[str, ...]:
        return self.get_fields(request, obj)

    @admin.display(description="Status")
    def status(self, token: ApiToken) -> str:
        if token.revoked_at:
            return badge("disabled", "Revoked")
        if token.expires_at <= timezone.now():
            return badge("expired", "Expired")
        return badge("active", "Live")

    def is_live(self, token: ApiToken) -> bool:
        return token.revoked_at is None and token.expires_at > timezone.now()

    def revoke_one(self, request: HttpRequest, obj: ApiToken, data: dict[str, Any]) -> str:
        return self.run_one(request, "tokens.revoke", obj)

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> HttpResponse | None:
        return self.bulk(request, queryset, "tokens.revoke")


@jobs.register("tokens.revoke", model=ApiToken, verb="revoke", done_verb="revoked")
def tokens_revoke(ids: list[int], params: Mapping[str, Any], actor: jobs.Actor) -> jobs.Outcome:
    """Revoke tokens: anyone's for a superuser, only their own for other staff."""
    tokens = ApiToken.objects.filter(pk__in=ids)
    if not isinstance(actor, User) or not actor.is_superuser:
        tokens = tokens.filter(user_id=actor.pk) if isinstance(actor, User) else tokens.none()
    found = {token.pk: token for token in tokens}
    outcome = jobs.Outcome()
    for pk in ids:
        token = found.get(pk)
        if token is None:
            outcome.refused[pk] = "not one of your tokens"
        elif services.token_revoke(token=token, reason="revoked by staff"):
            outcome.done.append(pk)
        else:
            outcome.refused[pk] = "already revoked"
    return outcome


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ConsoleAdmin):
    """Read-only: workers write their heartbeat themselves."""

    list_display = ("hostname", "seen_at")
    readonly_fields = ("hostname", "seen_at")


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

    def get_queryset(self, request: HttpRequest) -> QuerySet[BulkJob]:
        # The frozen keys (100 000 of them for a large export) are the worker's; the pages re-read on every event.
        return super().get_queryset(request).defer("object_ids")

    def _change_url_name(self, job: BulkJob) -> str:
        return f"admin:{job.content_type.app_label}_{job.content_type.model}_change"

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        job = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if job is not None:
            context |= self._panel_context(request, job)
        return super().change_view(request, object_id, form_url, context)

    def _panel_context(self, request: HttpRequest, job: BulkJob) -> dict[str, Any]:
        export = job.operation == adminexport.OPERATION
        return {
            "change_url_name": self._change_url_name(job),
            "export": export,
            "export_ready": export and bool(job.file) and not adminexport.export_expired(job),
            "may_download": export and adminexport.may_download(request.user, job),
            "retention_hours": int(adminexport.retention().total_seconds() // 3600),
        }

    def get_urls(self) -> list[URLPattern]:
        panel = self.admin_site.admin_view(self.panel_view)
        download = self.admin_site.admin_view(self.download_view)
        return [
            path("<int:job_id>/panel/", panel, name="portal_bulkjob_panel"),
            path("<int:job_id>/download/", download, name="portal_bulkjob_download"),
            *super().get_urls(),
        ]

    def _job(self, request: HttpRequest, job_id: int) -> BulkJob:
        job = self.get_queryset(request).filter(pk=job_id).first()
        if job is None or not self.has_view_permission(request, job):
            raise Http404
        return job

    def panel_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        job = self._job(request, job_id)
        context = {"job": job, **self._panel_context(request, job)}
        return TemplateResponse(request, "admin/portal/bulkjob/panel.html", context)

    def download_view(self, request: HttpRequest, job_id: int) -> HttpResponseBase:
        """A background export's file: to its owner, or to staff who may see the jobs and the exported list."""
        job = BulkJob.objects.select_related("content_type").filter(pk=job_id).first()
        if job is None or not adminexport.may_download(request.user, job):
            raise Http404
        return adminexport.download_response(request, job)


admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class AuditLogEntryAdmin(adminfilters.DateSafeAdminMixin, ExportAdminMixin, LogEntryAdmin):
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


# Last of the admin modules (portal.kernel is the last installed app): every admin is registered by now.
adminfilters.date_safe_site(admin.site)
