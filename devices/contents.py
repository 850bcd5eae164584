"""Content of the Exosite fleet management API: files (firmware, configuration) a model's devices download.

Blobs live in the ``exosite_content`` storage (Django's storage API: a folder in the embedded default, any backend
in production), written and read in chunks, never whole in memory. A row names its current blob; an upload writes
a new blob first and swaps the name in a transaction, so a download in progress keeps reading the old one, and the
old blob is deleted only once the swap committed.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterable, Iterator
from typing import BinaryIO, cast

from auditlog.models import LogEntry
from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.db import IntegrityError, transaction
from django.utils import timezone

from devices.exceptions import ContentExists, ContentTooLarge, InvalidImport
from devices.models import Content, Device, DeviceModel

CHUNK = 64 * 1024
MAX_NAME = 128


def content_storage() -> Storage:
    return storages["exosite_content"]


def content_name_problem(name: str) -> str | None:
    if not name:
        return "empty content id"
    if len(name) > MAX_NAME:
        return f"content id longer than {MAX_NAME} characters"
    if not name.isprintable() or "/" in name:
        return "content id contains control characters or a slash"
    return None


def content_create(*, model: DeviceModel, name: str, meta: str = "", protected: bool = False) -> Content:
    if problem := content_name_problem(name):
        raise InvalidImport(problem, field="id")
    if len(meta) > 1024:
        raise InvalidImport("meta longer than 1024 characters", field="meta")
    try:
        with transaction.atomic():
            return Content.objects.create(model=model, name=name, meta=meta, protected=protected)
    except IntegrityError as exc:
        raise ContentExists(f"content {name} already exists") from exc


def content_save(*, content: Content, meta: str, protected: bool, allowed: Iterable[Device]) -> Content:
    """What staff change on a content entry (the admin): its description, whether it is protected, and which of
    the model's devices may download it when it is."""
    allowed = list(allowed)
    if any(device.model_id != content.model_id for device in allowed):
        raise InvalidImport("only devices of the content's own model can be authorised", field="allowed")
    with transaction.atomic():
        content.meta, content.protected = meta, protected
        content.save(update_fields=["meta", "protected", "updated_at"])
        content.allowed.set(allowed)
    return content


def content_delete(*, content: Content) -> None:
    blob = content.blob
    with transaction.atomic():
        content.delete()
        if blob:
            transaction.on_commit(lambda: content_storage().delete(blob))


class _Bounded(io.RawIOBase):
    """A request body read up to a limit: past it, ContentTooLarge (what was written is then deleted)."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self.stream, self.limit, self.size = stream, limit, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(CHUNK if size is None or size < 0 else min(size, CHUNK))
        self.size += len(chunk)
        if self.size > self.limit:
            raise ContentTooLarge(f"content larger than {self.limit} bytes")
        return chunk


def content_upload(*, content: Content, stream: BinaryIO, content_type: str) -> Content:
    """Store a new blob from ``stream`` (streamed to the storage, at most ``EXOSITE_CONTENT_MAX_BYTES``) and make
    it the content's; audited with its size and type."""
    storage = content_storage()
    body = _Bounded(stream, settings.EXOSITE_CONTENT_MAX_BYTES)
    wanted = f"{content.model_id}/{uuid.uuid4().hex}"  # unique: the storage keeps it as it is
    try:
        name = storage.save(wanted, File(cast(BinaryIO, body)))  # read() in chunks, as File.chunks() does
    except ContentTooLarge:
        if storage.exists(wanted):  # FileSystemStorage keeps what it wrote before the error
            storage.delete(wanted)
        raise
    try:
        with transaction.atomic():
            locked = Content.objects.select_for_update().get(pk=content.pk)
            old = locked.blob
            now = timezone.now()
            values = {"blob": name, "size": body.size, "content_type": content_type[:255], "uploaded_at": now}
            Content.objects.filter(pk=content.pk).update(**values, updated_at=now)
            LogEntry.objects.log_create(
                locked,
                action=LogEntry.Action.UPDATE,
                force_log=True,
                changes={
                    "size": [str(locked.size), str(body.size)],
                    "content_type": [locked.content_type, content_type],
                },
                additional_data={"action": "upload"},
            )
            if old:
                transaction.on_commit(lambda: storage.delete(old))
    except Content.DoesNotExist:
        storage.delete(name)
        raise
    content.refresh_from_db()
    return content


def content_allowed(*, content: Content, device: Device) -> bool:
    """Unprotected content is for every device of its model; protected content only for those authorised."""
    if device.model_id != content.model_id:
        return False
    return not content.protected or content.allowed.filter(pk=device.pk).exists()


def content_read(*, content: Content, start: int, length: int) -> Iterator[bytes]:
    """``length`` bytes of the blob from ``start``, in chunks of at most 64 KiB."""
    with content_storage().open(content.blob, "rb") as blob:
        blob.seek(start)
        left = length
        while left > 0:
            chunk = blob.read(min(CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk
