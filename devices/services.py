"""Every write to the inventory, and the activation rules.

State changes are conditional UPDATEs on rows locked in one transaction, never read-check-write. A conditional
UPDATE sends no save signal, so these services write their audit entries themselves.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import secrets
import unicodedata
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from auditlog.cid import get_cid
from auditlog.diff import get_field_value, is_primitive, model_instance_diff
from auditlog.models import LogEntry
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError, Q, QuerySet
from django.db.models.signals import pre_save
from django.utils import timezone
from django.utils.encoding import smart_str

from devices.choices import ActivationOutcome, ActivationState
from devices.exceptions import (
    ActivationRefused,
    CikInvalid,
    DeviceExists,
    DeviceModelExists,
    IllegalTransition,
    InUse,
    InvalidImport,
    InvalidOwner,
)
from devices.importing import ExositeRange
from devices.models import ActivationAttempt, Device, DeviceModel, SerialRange, Vendor, window_elapsed
from webhooks import events as webhook_events

CIK_BYTES = 20  # 40 lowercase hex characters, as device libraries expect
MAX_FIELD = 128  # longest vendor, model or serial the activation API accepts
IMPORT_BATCH = 1000
# A CIK younger than this is never replaced by a retry: requests that arrive together (duplicates, a library
# retrying in a tight loop, several callers) get one key between them, not a chain of keys revoking each other.
REISSUE_MIN_AGE = timedelta(seconds=2)

S = ActivationState
ENABLE_FROM = Q(state=S.NOT_ADDED)


def reenable_from() -> Q:
    return Q(state__in=[S.ACTIVATED, S.EXPIRED, S.DISABLED]) | window_elapsed()


DISABLE_FROM = Q(state__in=[S.NOT_ACTIVATED, S.ACTIVATED, S.EXPIRED])


def cik_digest(cik: str) -> str:
    return hashlib.sha256(cik.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class BulkResult:
    changed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)


# --- enable / re-enable / disable ---------------------------------------------------------------------------------


def _transition(*, ids: Iterable[int], allowed: Q, values: dict, action: str) -> BulkResult:
    """Lock the rows among ``ids`` that ``allowed`` admits, move them to ``values``, audit each one."""
    ids = list(dict.fromkeys(ids))
    with transaction.atomic():
        rows = list(
            Device.objects.filter(pk__in=ids)
            .filter(allowed)
            .select_for_update()
            .values("pk", "serial_number", *[name for name in values if name != "updated_at"])
        )
        changed = [row["pk"] for row in rows]
        Device.objects.filter(pk__in=changed).update(**values)
        _audit(rows, values, action)
        webhook_events.devices_changed(action, rows)  # the outbox rows commit with the change
    changed_set = set(changed)
    return BulkResult(changed=changed, skipped=[pk for pk in ids if pk not in changed_set])


def _audit(rows: list[dict], values: dict, action: str) -> None:
    for row in rows:
        changes = {
            name: [_show(name, row.get(name)), _show(name, value)]
            for name, value in values.items()
            if name in row and row.get(name) != value
        }
        device = Device(pk=row["pk"], serial_number=row["serial_number"])
        LogEntry.objects.log_create(
            device, action=LogEntry.Action.UPDATE, changes=changes, additional_data={"action": action}
        )


def _show(name: str, value: object) -> str:
    if name == "cik_digest":
        return "********"
    return "None" if value is None else str(value)


def _open_window(window: int | None) -> dict:
    now = timezone.now()
    return {
        "state": S.NOT_ACTIVATED,
        "enabled_at": now,
        "activation_expires_at": now + timedelta(seconds=window or settings.ACTIVATION_WINDOW),
        "updated_at": now,
    }


def devices_enable(*, ids: Iterable[int], window: int | None = None) -> BulkResult:
    """Open the activation window of serials that were never enabled."""
    return _transition(ids=ids, allowed=ENABLE_FROM, values=_open_window(window), action="enable")


def devices_reenable(*, ids: Iterable[int], window: int | None = None) -> BulkResult:
    """A new window for activated, expired or disabled devices; their CIK stops working at once."""
    values = {
        **_open_window(window),
        "activated_at": None,
        "disabled_at": None,
        "cik_digest": None,
        "cik_issued_at": None,
        "cik_first_used_at": None,
    }
    return _transition(ids=ids, allowed=reenable_from(), values=values, action="reenable")


def devices_disable(*, ids: Iterable[int]) -> BulkResult:
    """Disabled devices cannot activate, and their CIK stops working at once."""
    now = timezone.now()
    values = {
        "state": S.DISABLED,
        "disabled_at": now,
        "cik_digest": None,
        "cik_issued_at": None,
        "cik_first_used_at": None,
        "updated_at": now,
    }
    return _transition(ids=ids, allowed=DISABLE_FROM, values=values, action="disable")


def _one(result: BulkResult, device: Device, action: str) -> Device:
    if not result.changed:
        raise IllegalTransition(f"cannot {action} a device in state {device.current_state}", device_id=device.pk)
    device.refresh_from_db()
    return device


def device_enable(*, device: Device, window: int | None = None) -> Device:
    return _one(devices_enable(ids=[device.pk], window=window), device, "enable")


def device_reenable(*, device: Device, window: int | None = None) -> Device:
    return _one(devices_reenable(ids=[device.pk], window=window), device, "re-enable")


def device_disable(*, device: Device) -> Device:
    return _one(devices_disable(ids=[device.pk]), device, "disable")


def device_create(*, model: DeviceModel, serial_number: str, extra: str = "", owner: User | None = None) -> Device:
    if problem := serial_problem(serial_number):
        raise InvalidImport(problem, field="serial_number")
    if owner is not None:
        _check_owner(owner)
    with transaction.atomic():
        device, created = Device.objects.get_or_create(
            model=model, serial_number=serial_number, defaults={"extra": extra, "owner": owner}
        )
    if not created:
        raise DeviceExists(f"{model} already has serial number {serial_number}", device_id=device.pk)
    return device


def owner_problem(owner: User) -> str | None:
    if not owner.is_active or owner.is_staff:
        return "the owner must be an active customer account"
    return None


def _check_owner(owner: User) -> None:
    if problem := owner_problem(owner):
        raise InvalidOwner(problem, user_id=owner.pk)


def device_assign_owner(*, device: Device, owner: User | None) -> Device:
    if owner is not None:
        _check_owner(owner)
    device.owner = owner
    device.save(update_fields=["owner", "updated_at"])
    return device


def device_update(*, device: Device, extra: str, owner: User | None) -> Device:
    """What staff may change on a device once it exists: its extra data and its owner (the serial and the model are
    its identity). Audited by the trail's save hook."""
    if owner is not None:
        _check_owner(owner)
    device.extra, device.owner = extra, owner
    device.save(update_fields=["extra", "owner", "updated_at"])
    return device


def device_delete(*, device: Device) -> None:
    """Remove a device with its box records (audited as a deletion). Its CIK goes with it."""
    device.delete()


def _delete_unused(obj: Vendor | DeviceModel, what: str) -> None:
    try:
        with transaction.atomic():
            obj.delete()
    except ProtectedError as exc:
        raise InUse(f"{what} {obj} is still in use: records refer to it") from exc


def vendor_delete(*, vendor: Vendor) -> None:
    _delete_unused(vendor, "vendor")


def device_model_delete(*, device_model: DeviceModel) -> None:
    _delete_unused(device_model, "model")


def devices_expire_windows(*, now: datetime | None = None) -> int:
    """Persist ``expired`` for pending devices whose window has passed (the effective state already says so)."""
    now = now or timezone.now()
    rows = Device.objects.filter(state=S.NOT_ACTIVATED, activation_expires_at__lte=now)
    return rows.update(state=S.EXPIRED, updated_at=now)


def vendor_save(*, name: str, vendor: Vendor | None = None) -> Vendor:
    vendor = vendor or Vendor()
    vendor.name = name
    vendor.full_clean()
    vendor.save()
    return vendor


def device_model_save(
    *, vendor: Vendor, name: str, description: str = "", device_model: DeviceModel | None = None
) -> DeviceModel:
    device_model = device_model or DeviceModel()
    device_model.vendor, device_model.name, device_model.description = vendor, name, description
    device_model.full_clean()
    device_model.save()
    return device_model


# --- Exosite fleet management (docs/exosite.md): models, serials, per-device moves ---------------------------------


def device_model_create(
    *, vendor: Vendor, name: str, clone_rid: str, clone_code: str, options: list[str]
) -> DeviceModel:
    """A model created by a vendor's tooling; its clone template is stored, not acted on."""
    device_model = DeviceModel(vendor=vendor, name=name, clone_rid=clone_rid, clone_code=clone_code)
    device_model.clone_options = options
    device_model.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            device_model.save()
    except IntegrityError as exc:
        raise DeviceModelExists(f"model {name} already exists") from exc
    return device_model


def device_model_template_save(
    *, device_model: DeviceModel, clone_rid: str, clone_code: str, options: list[str]
) -> DeviceModel:
    device_model.clone_rid, device_model.clone_code, device_model.clone_options = clone_rid, clone_code, options
    device_model.save(update_fields=["clone_rid", "clone_code", "clone_options", "updated_at"])
    return device_model


DELETE_BATCH = 1000


def device_model_purge(*, device_model: DeviceModel) -> int:
    """Delete a model with its serials, ranges and content (Exosite's "delete model"; the admin refuses a model
    still in use instead). Each device's deletion is audited; blobs go once the transaction committed."""
    from devices import contents  # the content module imports this one

    with transaction.atomic():
        for content in list(device_model.contents.all()):
            contents.content_delete(content=content)
        removed = _delete_in_batches(Device.objects.filter(model=device_model))
        device_model.serial_ranges.all().delete()
        device_model.delete()
    return removed


def _delete_in_batches(devices: QuerySet[Device]) -> int:
    removed = 0
    while ids := list(devices.order_by("pk").values_list("pk", flat=True)[:DELETE_BATCH]):
        removed += Device.objects.filter(pk__in=ids).delete()[1].get("devices.Device", 0)
    return removed


def devices_add(*, model: DeviceModel, rows: Iterable[tuple[int, str, str]]) -> ImportResult:
    """Add serials, all or none: an invalid row refuses the lot (InvalidImport), so does a serial the model
    already has or one given twice (DeviceExists). Bulk inserts in batches, in one transaction."""
    rows = list(rows)
    try:
        with transaction.atomic():
            result = devices_import(model=model, rows=rows, strict=True)
    except _Taken as taken:  # rolled back: the serial that was there before is the one to name
        raise DeviceExists(f"serial number already exists: {taken.serial or _first_existing(model, rows)}") from None
    return result


class _Taken(Exception):
    def __init__(self, serial: str) -> None:
        super().__init__(serial)
        self.serial = serial


def _first_existing(model: DeviceModel, rows: Iterable[tuple[int, str, str]]) -> str:
    serials = [serial for _, serial, _ in rows][:DELETE_BATCH]
    return (
        Device.objects.filter(model=model, serial_number__in=serials).values_list("serial_number", flat=True).first()
        or ""
    )


def devices_remove(*, model: DeviceModel, serials: Iterable[str]) -> int:
    """Delete the model's devices with these serials, whatever their state (as the admin's delete); serials the
    model does not have are passed over. Audited per device; in batches, in one transaction."""
    wanted = list(dict.fromkeys(serials))
    removed = 0
    with transaction.atomic():
        for start in range(0, len(wanted), DELETE_BATCH):
            batch = wanted[start : start + DELETE_BATCH]
            removed += _delete_in_batches(Device.objects.filter(model=model, serial_number__in=batch))
    return removed


def serial_ranges_add(*, model: DeviceModel, ranges: list[ExositeRange]) -> int:
    """Add every serial of the ranges (all or none, as ``devices_add``) and record the ranges as given."""
    rows = itertools.chain.from_iterable(r.rows() for r in ranges)
    with transaction.atomic():
        result = devices_add(model=model, rows=rows)
        SerialRange.objects.bulk_create([SerialRange(model=model, **_range_fields(r)) for r in ranges])
    return result.created


def serial_ranges_remove(*, model: DeviceModel, ranges: list[ExositeRange]) -> int:
    """Delete the ranges' serials (as ``devices_remove``) and forget the recorded ranges equal to them."""
    serials = (serial for r in ranges for _, serial, _ in r.rows())
    with transaction.atomic():
        removed = devices_remove(model=model, serials=serials)
        for r in ranges:
            SerialRange.objects.filter(model=model, **_range_fields(r)).delete()
    return removed


def _range_fields(r: ExositeRange) -> dict:
    return {"format": r.format, "length": r.length, "casing": r.casing, "first": r.first, "last": r.last}


def devices_regenerate(*, ids: Iterable[int], window: int | None = None) -> BulkResult:
    """Exosite's "regenerate CIK": any device that was ever enabled gets a new activation window and loses its CIK
    (a pending one just gets a new window); the next activation hands out a new key."""
    values = {
        **_open_window(window),
        "activated_at": None,
        "disabled_at": None,
        "cik_digest": None,
        "cik_issued_at": None,
        "cik_first_used_at": None,
    }
    return _transition(ids=ids, allowed=~ENABLE_FROM, values=values, action="regenerate_cik")


def device_regenerate(*, device: Device) -> Device:
    return _one(devices_regenerate(ids=[device.pk]), device, "regenerate the CIK of")


def device_remap(*, device: Device, serial_number: str) -> Device:
    """Move a device (its identity, owner, extra data and log) to a new serial number of its model; the CIK is
    revoked and a new activation window opens, since the device must activate under its new serial. A placeholder
    row for the new serial that was never enabled is removed; one that was enabled refuses the move."""
    if problem := serial_problem(serial_number):
        raise InvalidImport(problem, field="serial_number")
    with transaction.atomic():
        locked = Device.objects.select_for_update().get(pk=device.pk)
        if locked.state == S.NOT_ADDED:
            raise IllegalTransition(f"{locked} was never enabled: it has no client to remap", device_id=device.pk)
        taken = Device.objects.select_for_update().filter(model_id=locked.model_id, serial_number=serial_number)
        other = taken.exclude(pk=locked.pk).first()
        if other is not None and other.state != S.NOT_ADDED:
            raise DeviceExists(f"serial number {serial_number} is already enabled", device_id=other.pk)
        if other is not None:
            other.delete()
        values = {**_open_window(None), "serial_number": serial_number, "activated_at": None, "disabled_at": None}
        values |= {"cik_digest": None, "cik_issued_at": None, "cik_first_used_at": None}
        row = {"pk": locked.pk, "serial_number": locked.serial_number, "state": locked.state}
        row |= {name: getattr(locked, name) for name in values if name not in row and name != "updated_at"}
        Device.objects.filter(pk=locked.pk).update(**values)
        _audit([row], values, "remap")
    device.refresh_from_db()
    return device


# --- import -------------------------------------------------------------------------------------------------------


PREVIEW_SAMPLE = 50  # serials an import names before it is confirmed (the rest are counted)


@dataclass
class ImportResult:
    """What an import did (or, dry run, would do). The seam for background imports: rows in, this out."""

    created: int = 0
    existing: int = 0
    invalid: list[tuple[int, str, str]] = field(default_factory=list)  # (line, value, reason)
    enabled: int = 0
    duplicates: list[tuple[int, str, int]] = field(default_factory=list)  # (line, serial, line it first appeared on)
    sample: list[str] = field(default_factory=list)  # the first PREVIEW_SAMPLE serials created, in file order

    def as_dict(self) -> dict:
        return {
            "created": self.created,
            "existing": self.existing,
            "invalid": [{"line": line, "value": value, "reason": reason} for line, value, reason in self.invalid],
            "enabled": self.enabled,
            "duplicates": [{"line": line, "serial": sn, "first_line": first} for line, sn, first in self.duplicates],
        }


def serial_problem(serial: str) -> str | None:
    if not serial:
        return "empty serial number"
    if len(serial) > MAX_FIELD:
        return f"longer than {MAX_FIELD} characters"
    spaces = [unicodedata.category(ch) == "Zs" for ch in serial]  # a space, a no-break space, an em space…
    if spaces[0]:
        return "starts with a space"
    if spaces[-1]:
        return "ends with a space"
    if any(spaces):
        return "contains a space"
    if not serial.isprintable():
        return "control characters"
    return None


def devices_import(
    *,
    model: DeviceModel,
    rows: Iterable[tuple[int, str, str]],
    enable: bool = False,
    dry_run: bool = False,
    strict: bool = False,
) -> ImportResult:
    """Add serials (``(line, serial, extra)`` rows) to a model. Serials it already has are counted, not changed; a
    serial repeated in the rows is reported with the line it first appeared on. Each new device is audited as a
    creation, as ``device_create`` is.

    Runs in batches so that a million-row file neither holds one huge transaction nor all rows in memory (the
    serials seen so far are kept, to name repeats across batches).

    ``strict`` (all or nothing, ``devices_add``): the first invalid row raises InvalidImport, a serial that exists
    or repeats raises before anything more is done; no existence query, the inserted rows' ids come back from the
    INSERT itself.
    """
    result = ImportResult()
    seen: dict[str, int] = {}
    batch: list[tuple[int, str, str]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= IMPORT_BATCH:
            _import_batch(model, batch, result, seen, enable=enable, dry_run=dry_run, strict=strict)
            batch = []
    if batch:
        _import_batch(model, batch, result, seen, enable=enable, dry_run=dry_run, strict=strict)
    if not dry_run and result.created:
        # One entry on the model besides each device's own: who imported how many.
        summary = {
            "created": result.created,
            "existing": result.existing,
            "invalid": len(result.invalid),
            "enabled": result.enabled,
        }
        LogEntry.objects.log_create(
            model,
            action=LogEntry.Action.UPDATE,
            force_log=True,
            changes={},
            additional_data={"action": "import_serials", **summary},
        )
    return result


def _import_batch(
    model: DeviceModel,
    batch: list[tuple[int, str, str]],
    result: ImportResult,
    seen: dict[str, int],
    *,
    enable: bool,
    dry_run: bool,
    strict: bool = False,
) -> None:
    fresh: dict[str, str] = {}
    for line, serial, extra in batch:
        problem = serial_problem(serial) or ("extra longer than 255 characters" if len(extra) > 255 else None)
        if problem:
            result.invalid.append((line, serial[:MAX_FIELD], problem))
            if strict:
                raise InvalidImport(f"line {line}: {problem}", line=line)
        elif serial in seen:
            result.duplicates.append((line, serial, seen[serial]))
            if strict:
                raise _Taken(serial)
        else:
            seen[serial] = line
            fresh[serial] = extra
    if strict:
        _insert_all(model, fresh, result)
        return
    with transaction.atomic():
        existing = set(
            Device.objects.filter(model=model, serial_number__in=list(fresh)).values_list("serial_number", flat=True)
        )
        new = [Device(model=model, serial_number=sn, extra=extra) for sn, extra in fresh.items() if sn not in existing]
        result.existing += len(existing)
        result.sample += [device.serial_number for device in new[: PREVIEW_SAMPLE - len(result.sample)]]
        if dry_run:
            result.created += len(new)
            return
        Device.objects.bulk_create(new, ignore_conflicts=True)
        created = list(Device.objects.filter(model=model, serial_number__in=[d.serial_number for d in new]))
        result.created += len(created)
        _audit_created(created)
        if enable:
            result.enabled += len(devices_enable(ids=[device.pk for device in created]).changed)


def _insert_all(model: DeviceModel, fresh: dict[str, str], result: ImportResult) -> None:
    """Insert every row or raise _Taken (a serial the model has): one INSERT per batch, the ids RETURNING from it."""
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                new = _insert_unnest(model, fresh)
            else:
                new = [Device(model=model, serial_number=sn, extra=extra) for sn, extra in fresh.items()]
                Device.objects.bulk_create(new)
    except IntegrityError:
        raise _Taken("") from None
    if not connection.features.can_return_rows_from_bulk_insert:
        new = list(Device.objects.filter(model=model, serial_number__in=list(fresh)))
    result.created += len(new)
    _audit_created(new)


def _insert_unnest(model: DeviceModel, fresh: dict[str, str]) -> list[Device]:
    """A batch of new devices in one ``INSERT … SELECT FROM unnest(serials, extras)``: what differs between the
    rows goes as two arrays, every other column as one value (a new device's fields all have the same value, taken
    from one unsaved device, so the defaults are the model's own). The ORM's bulk_create prepares and adapts every
    field of every row, most of a 100 000-serial import's remaining time."""
    now = timezone.now()
    proto = Device(model=model, serial_number="", extra="", created_at=now, updated_at=now)
    columns, values = [], []
    for f in Device._meta.concrete_fields:
        value = f.get_db_prep_save(getattr(proto, f.attname), connection)
        if f.name not in ("id", "serial_number", "extra") and value is not None:  # None: the column's NULL
            columns.append(connection.ops.quote_name(f.column))
            values.append(value)
    sql = (
        f"INSERT INTO devices_device ({', '.join(columns)}, serial_number, extra) "  # noqa: S608 (names from the model)
        f"SELECT {', '.join(['%s'] * len(values))}, t.sn, t.extra FROM unnest(%s::text[], %s::text[]) AS t(sn, extra) "
        "RETURNING id, serial_number"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, list(fresh), list(fresh.values())])
        ids = dict((sn, pk) for pk, sn in cursor.fetchall())
    common = {f.attname: getattr(proto, f.attname) for f in Device._meta.concrete_fields}
    devices = []
    for sn, extra in fresh.items():
        device = Device(**{**common, "id": ids[sn], "serial_number": sn, "extra": extra})
        device._state.adding, device._state.db = False, "default"
        devices.append(device)
    return devices


def _nothing_refers_yet(devices: list[Device]) -> None:
    """New rows: no box, CAS record or provisioning record points at them yet. Said to Django's relation cache, so
    that the audit diff does not ask the database three times per new device (each reverse one-to-one)."""
    reverse_one_to_one = [rel for rel in Device._meta.related_objects if rel.one_to_one]
    for device in devices:
        for rel in reverse_one_to_one:
            rel.set_cached_value(device, None)


# What differs between the devices one import creates; every other field has the same value in all of them.
_PER_DEVICE = ("id", "serial_number", "extra", "created_at", "updated_at")


def _created_changes(devices: list[Device]) -> list[dict | None]:
    """Each new device's audit diff (what a save would record), computed in full once and per device only for
    the fields that differ between them: the diff of every field of 100 000 rows was most of an import's time."""
    if not devices:
        return []
    json_changes = settings.AUDITLOG_STORE_JSON_CHANGES
    common = model_instance_diff(None, devices[0], use_json_for_changes=json_changes) or {}
    fields = [f for f in Device._meta.fields if f.name in _PER_DEVICE]

    def created(value: object) -> tuple:  # a field a creation set, as model_instance_diff writes it
        if not json_changes:
            return ("None", smart_str(value))
        return (None, value if is_primitive(value) else smart_str(value))

    return [{**common, **{f.name: created(get_field_value(d, f, json_changes)) for f in fields}} for d in devices]


def _audit_created(devices: list[Device]) -> None:
    """The entry a save of each new device would have written (action create, its fields), all at once: bulk
    inserts send no save signal. One template entry gets the ``pre_save`` a save would send, so that auditlog's own
    receiver (when a request or ``set_actor`` is active) fills in the actor, address and correlation id as it does
    for one; every entry of the batch carries them.

    On PostgreSQL the entries go in by ``COPY`` with their JSON written once here: building 100 000 ``LogEntry``
    objects and having the ORM prepare and adapt every field of each was about half the time of a 100 000-serial
    import (``bench/exosite_manage.py``). Each device still has its own creation entry, the same as before."""
    if not devices:
        return
    content_type = ContentType.objects.get_for_model(Device)
    _nothing_refers_yet(devices)
    template = LogEntry(
        content_type=content_type, action=LogEntry.Action.CREATE, cid=get_cid(), additional_data=_IMPORTED
    )
    pre_save.send(sender=LogEntry, instance=template, raw=False, using="default", update_fields=None)
    changes = _created_changes(devices)
    if connection.vendor != "postgresql":
        entries = []
        for device, diff in zip(devices, changes, strict=True):
            entry = copy.copy(template)
            entry.object_pk, entry.object_id, entry.object_repr, entry.changes = (
                str(device.pk),
                device.pk,
                str(device),
                diff,
            )
            entries.append(entry)
        LogEntry.objects.bulk_create(entries)
        return
    common = (
        content_type.pk,
        template.actor_id,
        template.cid,
        template.remote_addr,
        template.remote_port,
        template.actor_email,
        template.timestamp or timezone.now(),
        json.dumps(_IMPORTED),
        int(LogEntry.Action.CREATE),
        "",
    )
    with connection.cursor() as cursor, cursor.cursor.copy(_COPY_ENTRIES) as copy_in:
        for device, diff in zip(devices, changes, strict=True):
            copy_in.write_row((str(device.pk), device.pk, str(device), json.dumps(diff), *common))


_IMPORTED = {"action": "import_serials"}
_COPY_ENTRIES = """
COPY auditlog_logentry (object_pk, object_id, object_repr, changes, content_type_id, actor_id, cid, remote_addr,
                        remote_port, actor_email, timestamp, additional_data, action, changes_text)
FROM STDIN
"""


# --- activation ---------------------------------------------------------------------------------------------------

_ACTIVATE = """
UPDATE devices_device
   SET state = %s, cik_digest = %s, activated_at = %s, updated_at = %s, cik_issued_at = %s, cik_first_used_at = NULL
 WHERE serial_number = %s
   AND state = %s
   AND activation_expires_at > %s
   AND model_id = (SELECT m.id FROM devices_devicemodel m JOIN devices_vendor v ON v.id = m.vendor_id
                    WHERE v.name = %s AND m.name = %s)
RETURNING id
"""
_LOG_ATTEMPT = """
INSERT INTO devices_activationattempt (device_id, vendor, model, serial_number, at, remote_addr, user_agent, outcome)
"""
# PostgreSQL: the activation and its log line in one statement, one round trip, one commit. (Built from the
# constants above only; every value is a bound parameter.)
_ACTIVATE_AND_LOG = (
    f"WITH activated AS ({_ACTIVATE}) {_LOG_ATTEMPT} "  # noqa: S608
    "SELECT id, %s, %s, %s, %s, %s, %s, %s FROM activated RETURNING device_id"
)


def device_activate(*, vendor: str, model: str, serial: str, remote_addr: str | None, user_agent: str) -> str:
    """Hand out a new CIK for a pending device whose window is open, exactly once; log the attempt either way.

    One conditional UPDATE decides: of any number of simultaneous calls for one serial, one changes the row and
    the others find it no longer pending. The CIK is returned only after the change and its log line committed.
    An activated device whose CIK was never used may get a fresh one within ``ACTIVATION_RETRY_WINDOW``.
    """
    device = None
    for _ in range(2):
        if (cik := _activate_once(vendor, model, serial, remote_addr, user_agent)) is not None:
            return cik
        refusal, device = _why_refused(vendor=vendor, model=model, serial=serial)
        if refusal is not None:
            break
    else:  # re-enabled twice in a row while this call ran: an answer the device can retry
        refusal = ActivationRefused(outcome=ActivationOutcome.NOT_ENABLED)
    attempt = (vendor, model, serial, remote_addr, user_agent)
    if device is not None and device.cik_stranded and (cik := _retry_stranded(device, attempt)) is not None:
        return cik
    _log_attempt(refusal.device_id, *attempt, refusal.outcome)
    raise refusal


def _activate_once(vendor: str, model: str, serial: str, remote_addr: str | None, user_agent: str) -> str | None:
    cik = secrets.token_hex(CIK_BYTES)
    at = connection.ops.adapt_datetimefield_value(timezone.now())
    update = [S.ACTIVATED.value, cik_digest(cik), at, at, at, serial, S.NOT_ACTIVATED.value, at, vendor, model]
    log = [vendor[:64], model[:64], serial[:MAX_FIELD], at, remote_addr or None, user_agent[:255]]
    # The webhook outbox row (when an endpoint takes the event) commits with the activation: one transaction then;
    # otherwise the activation stays one autocommit statement (no BEGIN/COMMIT round trips on the hot path).
    hooked = webhook_events.devices_hooked("activate")
    atomic = hooked or connection.vendor != "postgresql"  # elsewhere the log line is a second statement
    with transaction.atomic() if atomic else nullcontext(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # the activation and its log line in one statement
            cursor.execute(_ACTIVATE_AND_LOG, [*update, *log, ActivationOutcome.ACTIVATED.value])
            row = cursor.fetchone()
        else:
            cursor.execute(_ACTIVATE, update)
            row = cursor.fetchone()
            if row is not None:
                cursor.execute(
                    f"{_LOG_ATTEMPT} VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    [row[0], *log, ActivationOutcome.ACTIVATED.value],
                )
        if row is not None and hooked:
            webhook_events.devices_changed("activate", [{"pk": row[0], "serial_number": serial}])
    return cik if row is not None else None


def _why_refused(*, vendor: str, model: str, serial: str) -> tuple[ActivationRefused | None, Device | None]:
    """Why the conditional UPDATE matched nothing, and the device as read; no refusal when the device is pending
    with its window open, which happens only when it was re-enabled between the UPDATE and this read (the caller
    tries once more)."""
    device_model = DeviceModel.objects.filter(vendor__name=vendor, name=model).only("pk").first()
    if device_model is None:
        return ActivationRefused(outcome=ActivationOutcome.INVALID_MODEL), None
    device = Device.objects.filter(model=device_model, serial_number=serial).first()
    if device is None:
        return ActivationRefused(outcome=ActivationOutcome.UNKNOWN_SERIAL), None
    state = S(device.current_state)
    if state == S.NOT_ACTIVATED:
        return None, device
    outcome = {
        S.NOT_ADDED: ActivationOutcome.NOT_ENABLED,
        S.ACTIVATED: ActivationOutcome.ALREADY_ACTIVATED,
        S.DISABLED: ActivationOutcome.DISABLED,
        S.EXPIRED: ActivationOutcome.EXPIRED,
    }[state]
    return ActivationRefused(outcome=outcome, device_id=device.pk), device


def _retry_stranded(device: Device, attempt: tuple[str, str, str, str | None, str]) -> str | None:
    """A second activation of a device whose CIK was never used: a fresh CIK (the old one revoked) while the
    retry window is open, else None (the caller answers "already activated"). Audited either way.

    One conditional UPDATE (compare-and-swap on the CIK read before it, still unused, issued at least
    REISSUE_MIN_AGE ago): of retries arriving together exactly one replaces the key and the others answer 409, so
    no caller is handed a key that another caller's retry revoked a moment later; and a device that has called
    with its key never loses it.
    """
    window = settings.ACTIVATION_RETRY_WINDOW
    now = timezone.now()
    if (refusal := _retry_refusal(device, window, now)) is not None:
        _audit_retry(device, reissued=False, reason=refusal)
        return None
    cik = secrets.token_hex(CIK_BYTES)
    old = now - REISSUE_MIN_AGE
    issued_long_enough_ago = Q(cik_issued_at__lte=old) | Q(cik_issued_at__isnull=True, activated_at__lte=old)
    with transaction.atomic():
        swapped = (
            Device.objects.filter(
                pk=device.pk,
                state=S.ACTIVATED,
                cik_digest=device.cik_digest,
                cik_first_used_at__isnull=True,
                activated_at__gt=now - timedelta(seconds=window),
            )
            .filter(issued_long_enough_ago)
            .update(cik_digest=cik_digest(cik), cik_issued_at=now, updated_at=now)
        )
        if not swapped:
            _audit_retry(device, reissued=False, reason="CIK replaced or used meanwhile")
            return None
        _log_attempt(device.pk, *attempt, ActivationOutcome.REISSUED)
        _audit_retry(device, reissued=True, reason=f"CIK never used, within {window} s of activation")
    return cik


def _retry_refusal(device: Device, window: int, now: datetime) -> str | None:
    if window <= 0:
        return "retry window off"
    if device.activated_at is None or device.activated_at <= now - timedelta(seconds=window):
        return "retry window passed"
    issued = device.cik_issued_at or device.activated_at  # CIKs from before issue times were kept
    if issued > now - REISSUE_MIN_AGE:
        return f"CIK handed out less than {REISSUE_MIN_AGE.seconds} s ago"
    return None


def _audit_retry(device: Device, *, reissued: bool, reason: str) -> None:
    changes = {"cik_digest": [_show("cik_digest", ""), _show("cik_digest", "")]} if reissued else {}
    action = "cik_reissue" if reissued else "cik_reissue_refused"
    entry = Device(pk=device.pk, serial_number=device.serial_number)
    LogEntry.objects.log_create(
        entry,
        action=LogEntry.Action.UPDATE,
        force_log=True,
        changes=changes,
        additional_data={"action": action, "reason": reason},
    )


def _log_attempt(
    device_id: int | None,
    vendor: str,
    model: str,
    serial: str,
    remote_addr: str | None,
    user_agent: str,
    outcome: ActivationOutcome,
) -> None:
    ActivationAttempt.objects.create(
        device_id=device_id,
        vendor=vendor[:64],
        model=model[:64],
        serial_number=serial[:MAX_FIELD],
        remote_addr=remote_addr or None,
        user_agent=user_agent[:255],
        outcome=outcome,
    )


def activation_attempt_log(
    *, vendor: str, model: str, serial: str, remote_addr: str | None, user_agent: str, outcome: ActivationOutcome
) -> None:
    """Log an attempt refused before the rules ran (bad request)."""
    _log_attempt(None, vendor, model, serial, remote_addr, user_agent, outcome)


def device_from_cik(*, cik: str) -> Device:
    """The activated device holding this CIK. Raises CikInvalid otherwise (re-enabled or disabled devices lost it).

    The one place a CIK authenticates, so the one place its first use is recorded: a write only on the first call
    with each CIK, never on the calls after it.
    """
    if len(cik) != CIK_BYTES * 2:
        raise CikInvalid
    digest = cik_digest(cik)
    device = Device.objects.select_related("model__vendor").filter(cik_digest=digest).first()
    if device is None or device.state != S.ACTIVATED:
        raise CikInvalid
    if device.cik_first_used_at is None:
        device.cik_first_used_at = _record_first_use(device.pk, digest)
    return device


def _record_first_use(pk: int, digest: str) -> datetime:
    """One conditional UPDATE. When it matches nothing, either another call recorded the first use (the CIK is
    good) or the CIK was replaced since the read (re-issued, re-enabled, disabled): then the call is refused, so
    a key that lost a race with its own re-issue never authenticates."""
    now = timezone.now()
    if Device.objects.filter(pk=pk, cik_digest=digest, cik_first_used_at__isnull=True).update(cik_first_used_at=now):
        return now
    first_use = Device.objects.filter(pk=pk, cik_digest=digest).values_list("cik_first_used_at", flat=True).first()
    if first_use is None:
        raise CikInvalid
    return first_use
