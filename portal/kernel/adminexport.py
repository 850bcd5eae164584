"""Every admin list exports as CSV or XLSX: the rows the list shows, the columns it shows, the values as it shows them.

The rows come from the changelist itself (``changelist_view`` runs as for the page, so the sidebar filters, the
FilterSet parameters of ``FilterSetAdminMixin``, the search and the ordering are the list's own; a refused filter
gets the list's own 400 page, never a file). The page the list would have shown is discarded and its queryset is
read again, unpaginated, through ``iterator(chunk_size=…)``: constant memory and a constant number of queries
whatever the row count. CSV streams as it is read; XLSX (xlsxwriter's constant-memory mode, each row written out as
it comes) goes to a temporary file, then is sent. Each export leaves an audit entry: who, which list, which filter,
how many rows.

A list of more than ``ADMIN_EXPORT_INLINE_ROWS`` rows is not sent in the request: the rows the list selects (its
filters, search and ordering) are frozen as their primary keys in a ``BulkJob`` and the export redirects to the
job's page, which follows its progress live (``job.progress`` over the staff socket, as every background job) and
offers the file when it is written. A worker (``export_run``) reads the rows in chunks through the same admin (its
queryset, its columns, its cell values as the list shows them), writes the file and stores it through Django's
storage API (``STORAGES["exports"]``), never in the database. Only the job's owner, or staff allowed to see both the
jobs and the exported list, may download it; ``exports_purge`` deletes files older than
``ADMIN_EXPORT_RETENTION_HOURS``. A redelivered task (a worker lost mid-export) writes the file again from the first
row: nothing is stored before the whole file is.

Put ``ExportAdminMixin`` among a ModelAdmin's bases (after ``FilterSetAdminMixin`` when both are used) and name
``export_fields`` when the export should differ from ``list_display``.
"""

from __future__ import annotations

import csv
import html
import os
import re
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from datetime import timedelta
from functools import partial
from typing import IO, Any, TypeVar

import xlsxwriter  # type: ignore[import-untyped]  # no stubs: typed as Any
from asgiref.sync import sync_to_async
from auditlog.models import LogEntry
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import display_for_field, display_for_value, label_for_field, lookup_field
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ObjectDoesNotExist
from django.core.files import File
from django.core.handlers.asgi import ASGIRequest
from django.db import transaction
from django.db.models import BooleanField, Model, QuerySet
from django.http import FileResponse, Http404, HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.text import capfirst

from portal.kernel import live
from portal.kernel.adminfilters import REFUSED
from portal.kernel.models import BulkJob, exports_storage

EXPORT = "_admin_export"
FORMATS = ("csv", "xlsx")
CHUNK = 2000
# A spreadsheet reads a cell starting with one of these as a formula (CSV injection); a leading quote makes it text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FILE_BLOCK = 64 * 1024
# Characters XML 1.0 cannot hold (an XLSX is XML): dropped from a cell rather than refusing the export.
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
Chunk = TypeVar("Chunk", str, bytes)
OPERATION = "admin.export"  # a BulkJob's operation when it is a background export
MAX_REMOVED_LISTED = 100  # rows removed since the export was asked for: the first are named on the job's page


class ExportAdminMixin(admin.ModelAdmin):
    export_fields: Sequence[str] | None = None
    export_chunk_size = CHUNK

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.change_list_template is None:
            # The stock list with the export buttons among its object tools; an admin with its own template
            # includes "admin/export/buttons.html" itself.
            cls.change_list_template = "admin/change_list_export.html"

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}_export"
        view = self.admin_site.admin_view(self.export_view)
        return [path("export/<str:fmt>/", view, name=name), *super().get_urls()]

    def export_view(self, request: HttpRequest, fmt: str) -> HttpResponseBase:
        if fmt not in FORMATS:
            raise Http404(f"no export format {fmt!r}")
        setattr(request, EXPORT, fmt)
        return self.changelist_view(request)

    # The stubs say HttpResponse; Django's own admin views return any response (a redirect, here a stream).
    def changelist_view(  # type: ignore[override]
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponseBase:
        response = super().changelist_view(request, extra_context)
        fmt = getattr(request, EXPORT, None)
        if fmt is None or getattr(request, REFUSED, False) or response.status_code != 200:
            return response  # the list itself, or its own answer to a refused filter / a missing permission
        context = response.context_data if isinstance(response, TemplateResponse) else None
        cl = (context or {}).get("cl")
        if cl is None:  # Django's own error pages (an invalid lookup) carry no changelist
            return response
        return self.export_response(request, cl, fmt)

    def get_export_fields(self, request: HttpRequest) -> list[str | Callable[..., Any]]:
        names = self.export_fields or self.get_list_display(request)
        return [name for name in names if name != "action_checkbox"]

    def export_response(self, request: HttpRequest, cl: ChangeList, fmt: str) -> HttpResponseBase:
        names = self.get_export_fields(request)
        headers = [capfirst(str(label_for_field(name, self.model, self))) for name in names]
        queryset = cl.queryset
        _audit_export(request, self.model, fmt=fmt, rows=cl.result_count, columns=headers)
        filename = f"{self.opts.verbose_name_plural}-{timezone.localtime():%Y%m%d-%H%M%S}.{fmt}".replace(" ", "-")
        if cl.result_count > inline_rows() and all(isinstance(name, str) for name in names):
            return self.export_in_background(request, queryset, fmt=fmt, names=names, headers=headers, name=filename)
        rows = self.export_rows(queryset, names)
        if fmt == "csv":
            response = StreamingHttpResponse(_streamed(request, csv_lines(headers, rows)), content_type="text/csv")
            response["Content-Disposition"] = f'attachment; filename="{filename}"'
            return response
        workbook = xlsx_file(headers, rows, title=str(self.opts.verbose_name_plural))
        response = FileResponse(workbook, as_attachment=True, filename=filename, content_type=XLSX_TYPE)
        if isinstance(request, ASGIRequest):  # the file (closed by the response) read as it is sent, not read whole
            response.streaming_content = _async_chunks(iter(partial(workbook.read, FILE_BLOCK), b""))
        return response

    def export_in_background(
        self, request: HttpRequest, queryset: QuerySet[Model], *, fmt: str, names: Sequence[Any], headers: list[str],
        name: str,
    ) -> HttpResponseBase:  # fmt: skip
        """Freeze the rows the list selects (in its order) in a job, queue its worker, and show the job's page."""
        from portal.kernel import tasks  # the task module imports this one

        keys = list(queryset.values_list("pk", flat=True))
        query = request.GET.urlencode()
        user = request.user if isinstance(request.user, AbstractBaseUser) and request.user.pk else None
        plural = str(self.opts.verbose_name_plural)
        job = BulkJob.objects.create(
            operation=OPERATION,
            title=f"Export {len(keys)} {plural} as {fmt.upper()}",
            content_type=ContentType.objects.get_for_model(self.model),
            object_ids=keys,
            params={
                "format": fmt,
                "fields": list(names),
                "headers": headers,
                "filename": name,
                "sheet": plural,
                "list": f"{reverse(f'admin:{self.opts.app_label}_{self.opts.model_name}_changelist')}?{query}",
            },
            total=len(keys),
            requested_by=user,
        )
        transaction.on_commit(lambda: tasks.export_run.delay(job.pk))
        return redirect(reverse("admin:portal_bulkjob_change", args=[job.pk]))

    def export_rows_of(
        self, request: HttpRequest, keys: Sequence[int], names: Sequence[str], progress: Callable[[int, int], None]
    ) -> Iterator[list[str]]:
        """The frozen rows, in their order, read ``export_chunk_size`` at a time through the admin's own queryset
        (its annotations, its related rows); ``progress(read, written)`` after each chunk. A row removed since the
        export was asked for is left out."""
        queryset = self.get_queryset(request)
        related = self.list_select_related
        if related is True:
            queryset = queryset.select_related()
        elif related:
            queryset = queryset.select_related(*related)
        written = 0
        for start in range(0, len(keys), self.export_chunk_size):
            chunk = keys[start : start + self.export_chunk_size]
            found = queryset.in_bulk(chunk)
            for key in chunk:
                if (obj := found.get(key)) is not None:
                    written += 1
                    yield [self.export_value(name, obj) for name in names]
            progress(start + len(chunk), written)

    def export_rows(self, queryset: QuerySet[Model], names: Sequence[str | Callable[..., Any]]) -> Iterator[list[str]]:
        for obj in queryset.iterator(chunk_size=self.export_chunk_size):
            yield [self.export_value(name, obj) for name in names]

    def export_value(self, name: str | Callable[..., Any], obj: Model) -> str:
        """The list's own cell (``items_for_result``), as plain text: choice labels, the one date-time format,
        related objects by their name; yes / no for booleans, nothing for an empty value."""
        try:
            field, attr, value = lookup_field(name, obj, self)
        except ObjectDoesNotExist:
            return ""
        if value is None:
            return ""
        if field is None or field.auto_created:
            if getattr(attr, "boolean", False):
                return "yes" if value else "no"
            shown = display_for_value(value, "")
        elif isinstance(field, BooleanField):
            return "yes" if value else "no"
        elif field.is_relation:
            shown = str(getattr(obj, field.name) or "")
        else:
            shown = display_for_field(value, field, "")
        text = str(shown)
        if "<" in text or "&" in text:  # a display method's HTML (format_html): its text only
            text = html.unescape(strip_tags(text))
        return text


def inline_rows() -> int:
    """Exports of up to this many rows are sent in the request; larger ones become a background job."""
    return int(getattr(settings, "ADMIN_EXPORT_INLINE_ROWS", 5000))


def retention() -> timedelta:
    return timedelta(hours=int(getattr(settings, "ADMIN_EXPORT_RETENTION_HOURS", 24)))


def csv_safe(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_START) else value


class _Echo:
    """csv.writer writes each line here and gets it back: lines are produced, not buffered."""

    def write(self, value: str) -> str:
        return value


def csv_lines(headers: Sequence[str], rows: Iterable[Sequence[str]], batch: int = 500) -> Iterator[str]:
    """A byte-order mark (so that a spreadsheet reads UTF-8), the header line, then the rows ``batch`` at a time."""
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow([csv_safe(header) for header in headers])
    lines: list[str] = []
    for row in rows:
        lines.append(writer.writerow([csv_safe(value) for value in row]))
        if len(lines) >= batch:
            yield "".join(lines)
            lines = []
    if lines:
        yield "".join(lines)


def xlsx_file(headers: Sequence[str], rows: Iterable[Sequence[str]], *, title: str) -> IO[bytes]:
    """A workbook of one sheet in a temporary file (gone when closed), each row written out as it comes
    (xlsxwriter's constant-memory mode): every cell a string cell, so that a value starting with ``=`` is shown,
    never evaluated."""
    target = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115  # FileResponse closes it, and closing deletes it
    workbook = xlsxwriter.Workbook(
        target,
        {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False},
    )
    sheet = workbook.add_worksheet(_sheet_title(title))
    sheet.freeze_panes(1, 0)
    sheet.set_column(0, max(len(headers) - 1, 0), 22)
    bold = workbook.add_format({"bold": True})
    for column, header in enumerate(headers):
        sheet.write_string(0, column, header, bold)
    for number, row in enumerate(rows, start=1):
        for column, value in enumerate(row):
            sheet.write_string(number, column, XML_ILLEGAL.sub("", value))
    workbook.close()
    target.seek(0)
    return target


def csv_file(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> IO[bytes]:
    """The CSV export (the same lines the inline export streams) in a temporary file, gone when closed."""
    target = tempfile.TemporaryFile(suffix=".csv")  # noqa: SIM115  # closed (and so deleted) by the caller
    for lines in csv_lines(headers, rows):
        target.write(lines.encode("utf-8"))
    target.seek(0)
    return target


def _sheet_title(title: str) -> str:
    return re.sub(r"[\[\]:*?/\\]", " ", title)[:31] or "export"


def _streamed(request: HttpRequest, lines: Iterator[str]) -> Iterator[str] | AsyncIterator[str]:
    """Under ASGI a synchronous iterator would be read whole before the first byte is sent; there each chunk is
    read in the request's own thread (the server-side cursor lives on its connection) and sent as it comes."""
    return _async_chunks(lines) if isinstance(request, ASGIRequest) else lines


async def _async_chunks(chunks: Iterator[Chunk]) -> AsyncIterator[Chunk]:
    step = sync_to_async(_next, thread_sensitive=True)
    while (chunk := await step(chunks)) is not None:
        yield chunk


def _next(chunks: Iterator[Chunk]) -> Chunk | None:
    return next(chunks, None)


def _audit_export(request: HttpRequest, model: type[Model], *, fmt: str, rows: int, columns: list[str]) -> None:
    user = request.user
    LogEntry.objects.create(
        content_type=ContentType.objects.get_for_model(model),
        object_pk="",
        object_repr=f"export of {model._meta.verbose_name_plural}",
        action=LogEntry.Action.ACCESS,
        changes={},
        actor=user if user.is_authenticated else None,
        additional_data={
            "action": "export",
            "format": fmt,
            "query": request.GET.urlencode(),
            "rows": rows,
            "columns": columns,
        },
    )


# --- background exports ------------------------------------------------------------------------------------------


def export_run(*, job_id: int) -> BulkJob | None:
    """The worker's side of a background export: write the file from the frozen rows, store it, finish the job.
    Safe to run again: a redelivered task starts over from the first row, and a finished job is left alone."""
    job = BulkJob.objects.select_related("content_type", "requested_by").filter(pk=job_id).first()
    if job is None or job.state == BulkJob.State.FINISHED or job.operation != OPERATION:
        return job
    model = job.content_type.model_class()
    model_admin = admin.site._registry.get(model) if model is not None else None
    request = _worker_request(job.requested_by)
    if not isinstance(model_admin, ExportAdminMixin) or not model_admin.has_view_permission(request):
        return _finish(job, None, written=0, removed=[], refused="you may no longer see this list")
    now = timezone.now()
    BulkJob.objects.filter(pk=job.pk).update(state=BulkJob.State.RUNNING, started_at=now, cursor=0, done=0, failed=0)
    _publish(job.pk, done=0, failed=0, total=job.total, state=BulkJob.State.RUNNING)
    keys = [int(pk) for pk in job.object_ids]
    params = job.params

    def progress(read: int, written: int) -> None:
        removed = read - written
        BulkJob.objects.filter(pk=job.pk).update(cursor=read, done=written, failed=removed)
        _publish(job.pk, done=written, failed=removed, total=job.total, state=BulkJob.State.RUNNING)

    state = {"written": 0}

    def counted() -> Iterator[list[str]]:
        for row in model_admin.export_rows_of(request, keys, params["fields"], progress):
            state["written"] += 1
            yield row

    if params["format"] == "csv":
        content = csv_file(params["headers"], counted())
    else:
        content = xlsx_file(params["headers"], counted(), title=params["sheet"])
    with content:
        storage = exports_storage()
        name = f"{job.pk}/{params['filename']}"
        if storage.exists(name):  # a run before this one stored it, then lost its worker before finishing the job
            storage.delete(name)
        stored = storage.save(name, File(content, name=params["filename"]))
    removed = _removed(model, keys) if state["written"] < len(keys) else []
    return _finish(job, stored, written=state["written"], removed=removed)


def _removed(model: type[Model] | None, keys: list[int]) -> list[int]:
    present = set(model._default_manager.filter(pk__in=keys).values_list("pk", flat=True)) if model else set()
    return [key for key in keys if key not in present]


def _finish(job: BulkJob, stored: str | None, *, written: int, removed: list[int], refused: str = "") -> BulkJob:
    failures = [
        {"id": key, "label": f"#{key}", "reason": "removed since the export was asked for", "linked": False}
        for key in removed[:MAX_REMOVED_LISTED]
    ]
    failed = len(removed)
    if refused:
        failures, failed = [{"id": 0, "label": "the export", "reason": refused, "linked": False}], job.total
    now = timezone.now()
    BulkJob.objects.filter(pk=job.pk).update(
        state=BulkJob.State.FINISHED,
        finished_at=now,
        cursor=job.total,
        done=written,
        failed=failed,
        failures=failures,
        file=stored or "",
    )
    _publish(job.pk, done=written, failed=failed, total=job.total, state=BulkJob.State.FINISHED)
    job.refresh_from_db()
    return job


def _publish(job_id: int, *, done: int, failed: int, total: int, state: str) -> None:
    live.publish(
        {"type": "job.progress", "job_id": job_id, "done": done, "failed": failed, "total": total, "state": state}
    )


def _worker_request(user: AbstractBaseUser | None) -> HttpRequest:
    """The admin's querysets and permissions take a request: the worker's is a GET by the job's owner."""
    request = HttpRequest()
    request.method = "GET"
    request.user = user if user is not None else AnonymousUser()  # type: ignore[assignment]
    return request


def export_expired(job: BulkJob, *, now: Any = None) -> bool:
    finished = job.finished_at
    return finished is not None and finished <= (now or timezone.now()) - retention()


def may_download(user: Any, job: BulkJob) -> bool:
    """The job's owner, or staff who may see the background jobs; either way someone who may still see the list the
    file was exported from."""
    if not (user.is_active and user.is_staff) or job.operation != OPERATION:
        return False
    ct = job.content_type
    if not user.has_perm(f"{ct.app_label}.view_{ct.model}"):
        return False
    return job.requested_by_id == user.pk or user.has_perm("portal.view_bulkjob")


def download_response(request: HttpRequest, job: BulkJob) -> HttpResponseBase:
    """The stored file, read as it is sent; audited like the export itself."""
    if not job.file or export_expired(job):
        raise Http404("This export's file is gone.")
    content = exports_storage().open(job.file.name, "rb")
    name = os.path.basename(job.file.name)
    fmt = job.params.get("format", "csv")
    kind = XLSX_TYPE if fmt == "xlsx" else "text/csv"
    _audit_download(request, job)
    response = FileResponse(content, as_attachment=True, filename=name, content_type=kind)
    if isinstance(request, ASGIRequest):
        response.streaming_content = _async_chunks(iter(partial(content.read, FILE_BLOCK), b""))
    return response


def _audit_download(request: HttpRequest, job: BulkJob) -> None:
    user = request.user
    LogEntry.objects.create(
        content_type=job.content_type,
        object_pk="",
        object_repr=f"download of {job.title}",
        action=LogEntry.Action.ACCESS,
        changes={},
        actor=user if user.is_authenticated else None,
        additional_data={"action": "export-download", "job": job.pk, "rows": job.done},
    )


def exports_purge(*, now: Any = None) -> int:
    """Delete the files of background exports finished more than the retention ago; their jobs stay, without it."""
    now = now or timezone.now()
    old = BulkJob.objects.filter(operation=OPERATION, finished_at__lte=now - retention()).exclude(file="")
    purged = 0
    storage = exports_storage()
    for job in old.iterator():
        storage.delete(job.file.name)
        purged += BulkJob.objects.filter(pk=job.pk, file=job.file.name).update(file="")
    return purged
