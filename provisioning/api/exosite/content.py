"""Content: ``/provision/manage/content/<model>/…`` (the vendor) and ``GET /provision/download`` (the device, by its
``X-Exosite-CIK``). Blobs are streamed from the storage in 64 KiB chunks with ``Range`` support."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from devices import contents
from devices.exceptions import CikInvalid
from devices.models import Content, Device, DeviceModel, VendorToken
from provisioning.api.exosite import wire
from provisioning.api.exosite.wire import Form, Refusal
from provisioning.auth import device_from_request

RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` inclusive for ``bytes=X-Y`` / ``X-`` / ``-N``; None for no header. Anything unsatisfiable
    or unreadable (several ranges, another unit, start past the end, an empty blob) is a Refusal 416."""
    if header is None:
        return None
    match = RANGE.match(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        raise RangeRefused(size)
    first, last = match.group(1), match.group(2)
    if first == "":
        count = int(last)
        if count == 0 or size == 0:
            raise RangeRefused(size)
        return max(size - count, 0), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or (last != "" and int(last) < start):
        raise RangeRefused(size)
    return start, end


class RangeRefused(Refusal):
    def __init__(self, size: int) -> None:
        super().__init__(416, "range not satisfiable")
        self.size = size


def _sync_chunks(content: Content, start: int, length: int) -> Iterator[bytes]:
    yield from contents.content_read(content=content, start=start, length=length)


async def _async_chunks(content: Content, start: int, length: int) -> AsyncIterator[bytes]:
    """Under ASGI a sync iterator would be read whole into memory by Django before sending; this one reads one
    chunk at a time in a thread."""
    chunks = _sync_chunks(content, start, length)
    done = object()
    while (chunk := await sync_to_async(next, thread_sensitive=False)(chunks, done)) is not done:
        yield chunk
        await asyncio.sleep(0)


def blob_answer(request: HttpRequest, content: Content) -> HttpResponse | StreamingHttpResponse:
    if not content.blob:
        raise Refusal(404, "no content uploaded")
    try:
        span = parse_range(request.META.get("HTTP_RANGE"), content.size)
    except RangeRefused as refused:
        response = wire.text(refused.message, 416)
        response["Content-Range"] = f"bytes */{refused.size}"
        return response
    start, end = span if span is not None else (0, content.size - 1)
    length = end - start + 1
    chunks = _async_chunks if isinstance(request, ASGIRequest) else _sync_chunks
    response = StreamingHttpResponse(
        chunks(content, start, length),
        status=206 if span is not None else 200,
        content_type=content.content_type or "application/octet-stream",
    )
    response["Accept-Ranges"] = "bytes"
    response["Content-Length"] = str(length)
    if span is not None:
        response["Content-Range"] = f"bytes {start}-{end}/{content.size}"
    return response


def info_line(content: Content, *, with_protected: bool) -> str:
    """``<content-type>,<byte-size>,<updated-timestamp>,<meta>{,<protected>}`` (Unix seconds of the upload)."""
    updated = int((content.uploaded_at or content.updated_at).timestamp())
    values: list[object] = [content.content_type, content.size, updated, content.meta]
    return wire.csv_line([*values, "true" if content.protected else "false"] if with_protected else values)


def _content(device_model: DeviceModel, name: str, status: int = 404) -> Content:
    found = Content.objects.filter(model=device_model, name=name).first()
    if found is None:
        raise Refusal(status, "content not found")
    return found


def _model_device(device_model: DeviceModel, form: Form, status: int) -> Device | None:
    """The serial of ``?sn=`` (the vendor asks what that device may download), or None."""
    sn = form.get("sn", limit=128)
    if sn is None:
        return None
    device = Device.objects.filter(model=device_model, serial_number=sn).first()
    if device is None:
        raise Refusal(status, "serial number not found")
    return device


def _allowed_ids(device_model: DeviceModel, device: Device | None) -> HttpResponse:
    rows = Content.objects.filter(model=device_model).order_by("name")
    if device is not None:
        rows = rows.filter(protected=False) | rows.filter(protected=True, allowed=device)
    return wire.csv_answer(wire.csv_line([name]) for name in rows.values_list("name", flat=True).distinct())


# --- the vendor's side --------------------------------------------------------------------------------------------


@wire.view(("GET", "POST"))
def content_list(request: HttpRequest, token: VendorToken, model: str) -> HttpResponse:
    device_model = wire.vendor_model(token, model, status=400)  # the documentation's 400 for a bad pair
    if request.method == "GET":
        return _allowed_ids(device_model, _model_device(device_model, wire.query(request), 400))
    form = wire.body_form(request)
    name = form.get("id", limit=128) or ""
    if form.flag("delete"):
        contents.content_delete(content=_content(device_model, name))
        return wire.reset()
    meta = form.get("meta") if "meta" in form else form.get("description")  # README's name for it
    contents.content_create(model=device_model, name=name, meta=meta or "", protected=form.flag("protected"))
    return wire.reset()


@wire.view(("GET", "POST", "DELETE"))
def content_item(request: HttpRequest, token: VendorToken, model: str, content_id: str) -> HttpResponse:
    device_model = wire.vendor_model(token, model, status=403)
    if request.method == "POST":
        # The blob is the body, its Content-Type what downloads will carry; read in chunks, bounded.
        kind = request.META.get("CONTENT_TYPE", "").strip() or "application/octet-stream"
        contents.content_upload(content=_content(device_model, content_id), stream=request, content_type=kind)
        return wire.reset()
    content = _content(device_model, content_id)
    if request.method == "DELETE":
        contents.content_delete(content=content)
        return wire.reset()
    form = wire.query(request)
    if form.get("show") == "groups":
        return wire.empty(204)  # groups are not supported: content is a member of none
    device = _model_device(device_model, form, 400)
    if device is not None and not contents.content_allowed(content=content, device=device):
        raise Refusal(403, "serial number not authorised for this content")
    if form.flag("download"):
        return blob_answer(request, content)
    return wire.csv_answer([info_line(content, with_protected=device is None)])


# --- the device's side --------------------------------------------------------------------------------------------


@wire.view(("GET",), authenticate=False)
def download(request: HttpRequest) -> HttpResponse:
    """``?vendor=&model=`` lists what the device may download; ``&id=`` downloads it (``Range``); ``&info=true``
    describes it. The device is the one whose ``X-Exosite-CIK`` this is; it must belong to that vendor/model."""
    try:
        device = device_from_request(request)
    except CikInvalid:
        return wire.text("invalid CIK", 401)
    form = wire.query(request)
    vendor, model_name = form.get("vendor", limit=64), form.get("model", limit=64)
    if device.model.vendor.name != vendor or device.model.name != model_name:
        raise Refusal(403, "invalid vendor/model pair")
    name = form.get("id", limit=128)
    if name is None:
        return _allowed_ids(device.model, device)
    content = _content(device.model, name)
    if not contents.content_allowed(content=content, device=device):
        raise Refusal(403, "not authorised for this content")
    if form.flag("info"):
        return wire.csv_answer([info_line(content, with_protected=False)])
    return blob_answer(request, content)
