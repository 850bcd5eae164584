"""Every admin list exports as CSV or XLSX: the rows the list shows, the columns it shows, the values as it shows them.

The rows come from the changelist itself (``changelist_view`` runs as for the page, so the sidebar filters, the
FilterSet parameters of ``FilterSetAdminMixin``, the search and the ordering are the list's own; a refused filter
gets the list's own 400 page, never a file). The page the list would have shown is discarded and its queryset is
read again, unpaginated, through ``iterator(chunk_size=…)``: constant memory and a constant number of queries
whatever the row count. CSV streams as it is read; XLSX (xlsxwriter's constant-memory mode, each row written out as
it comes) goes to a temporary file, then is sent. Each export leaves an audit entry: who, which list, which filter,
how many rows.

Put ``ExportAdminMixin`` among a ModelAdmin's bases (after ``FilterSetAdminMixin`` when both are used) and name
``export_fields`` when the export should differ from ``list_display``.
"""

from __future__ import annotations

import csv
import html
import re
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import IO, Any, TypeVar

import xlsxwriter  # type: ignore[import-untyped]  # no stubs: typed as Any
from asgiref.sync import sync_to_async
from auditlog.models import LogEntry
from django.contrib import admin
from django.contrib.admin.utils import display_for_field, display_for_value, label_for_field, lookup_field
from django.contrib.admin.views.main import ChangeList
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ObjectDoesNotExist
from django.core.handlers.asgi import ASGIRequest
from django.db.models import BooleanField, Model, QuerySet
from django.http import FileResponse, Http404, HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.text import capfirst

from portal.kernel.adminfilters import REFUSED

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
