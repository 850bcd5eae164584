"""Set-top-box commands and events: every write, and the retry policy.

A command moves QUEUED → SENT → SUCCEEDED | FAILED. The unit of work is a batch (up to ``COMMAND_BATCH_SIZE`` ids
in one message): claimed in one statement over rows locked with ``SKIP LOCKED``, its boxes called concurrently, its
outcomes recorded in one transaction (docs/provisioning.md, "Batches"). Each move is conditional, so a command
redelivered by the broker, or dispatched twice by the sweep, is carried out by one worker only, and a command whose
outcome is recorded is never sent again. The outcome is written before the task returns (and before the broker
message is acknowledged: ``acks_late``).
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

from celery import current_app
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from devices.models import Device
from portal.kernel import metrics, queues
from portal.kernel.live import DeviceCommand, DeviceCommands, publish, publish_batch
from provisioning import thunder
from provisioning.choices import CommandKind, CommandState, EventSource, ProvisionType
from provisioning.exceptions import InvalidCommand
from provisioning.models import BoxEvent, Command, SetTopBox, TypeStatus
from webhooks import events as webhook_events

log = logging.getLogger(__name__)
C = CommandState
TASK = "provisioning.tasks.run_commands"
# Retry policy: "busy" answers wait a fixed delay; unreachable boxes back off exponentially with full jitter.
MAX_ATTEMPTS = 6
BUSY_DELAY = 10.0
BACKOFF_BASE = 2.0
BACKOFF_CAP = 300.0  # seconds; stays well below the broker's visibility timeout


# --- boxes ---------------------------------------------------------------------------------------------------------


def box_register(*, device: Device, host: str, port: int = 9998) -> SetTopBox:
    box, _ = SetTopBox.objects.update_or_create(device=device, defaults={"thunder_host": host, "thunder_port": port})
    return box


def box_store_statuses(*, box: SetTopBox, statuses: list[thunder.TypeStatus]) -> None:
    _store_statuses([(box.pk, status) for status in statuses], timezone.now())


def _store_statuses(rows: list[tuple[int, thunder.TypeStatus]], now: datetime) -> None:
    """Upsert provision type statuses, ``(box id, status)`` each, in one statement (the last one of a box and type
    wins: one statement may not change a row twice)."""
    latest = {(box_id, status.provision_type.value): status for box_id, status in rows}
    TypeStatus.objects.bulk_create(
        [
            TypeStatus(
                box_id=box_id,
                provision_type=provision_type,
                kind=status.kind,
                state=status.state.value,
                reason=status.reason[:255],
                refreshed_at=now,
            )
            for (box_id, provision_type), status in sorted(latest.items())
        ],
        update_conflicts=True,
        unique_fields=["box", "provision_type"],
        update_fields=["kind", "state", "reason", "refreshed_at"],
    )


def box_read(client: thunder.ThunderClient) -> tuple[dict, list[thunder.TypeStatus]]:
    """Read everything the box's API version offers (never call what it lacks): the box's fields and its provision
    type statuses. Only the box is spoken to; nothing is written."""
    version = client.api_version()
    statuses = client.provision_check()
    fields: dict = {"api_version": version}
    if version >= thunder.NEEDS_VERSION["getNetflixESN"]:
        fields["netflix_esn"] = client.netflix_esn()
    if version >= thunder.NEEDS_VERSION["getSOCId"]:
        fields["soc_id"] = client.soc_id()
    platform = client.state()
    fields |= {
        "provision_id": platform.provision_id,
        "platform_status": platform.status,
        "platform_tokens": list(platform.tokens),
    }
    return fields, statuses


# --- commands ------------------------------------------------------------------------------------------------------


def _clean_params(kind: str, params: dict) -> dict:
    if kind == CommandKind.REPROVISION:
        if params.get("provision_type") not in ProvisionType.values:
            raise InvalidCommand(f"provision_type must be one of {', '.join(ProvisionType.values)}")
        return {"provision_type": params["provision_type"]}
    if kind == CommandKind.SET_INDEX:
        label, index = params.get("label"), params.get("index")
        if not isinstance(label, str) or not label or len(label) > 64:
            raise InvalidCommand("label must be a non-empty string of at most 64 characters")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 2**32:
            raise InvalidCommand("index must be an unsigned 32-bit integer")
        return {"label": label, "index": index}
    if kind in (CommandKind.REFRESH, CommandKind.PROVISION):
        return {}
    raise InvalidCommand(f"unknown command {kind!r}")


def commands_create(
    *, boxes: list[SetTopBox], kind: str, params: dict | None = None, requested_by: User | None = None
) -> list[Command]:
    """Queue one command per box; each is dispatched to the ``devices`` queue once the transaction commits."""
    clean = _clean_params(kind, params or {})
    with transaction.atomic():
        commands = Command.objects.bulk_create(
            [Command(box=box, kind=kind, params=clean, requested_by=requested_by) for box in boxes]
        )
        ids = [command.pk for command in commands]
        transaction.on_commit(lambda: _dispatch(ids))
    return commands


@dataclass
class QueueResult:
    queued: list[Command] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)  # box id -> why no command was queued for it


def commands_queue(
    *, box_ids: list[int], kind: str, params: dict | None = None, requested_by: User | None = None
) -> QueueResult:
    """Queue ``kind`` for each box among ``box_ids`` that has not the same command waiting already (queued or
    sent: a second one would only repeat it); say why for the others (waiting already, or no such box)."""
    clean = _clean_params(kind, params or {})
    with transaction.atomic():
        boxes = list(SetTopBox.objects.select_for_update().filter(pk__in=box_ids).order_by("pk"))
        waiting = set(
            Command.objects.filter(box__in=boxes, kind=kind, params=clean, state__in=[C.QUEUED, C.SENT]).values_list(
                "box_id", flat=True
            )
        )
        found = {box.pk for box in boxes}
        refused = {pk: "the same command is already waiting for this box" for pk in waiting}
        refused |= {pk: "no such box (removed)" for pk in box_ids if pk not in found}
        ready = [box for box in boxes if box.pk not in waiting]
        queued = commands_create(boxes=ready, kind=kind, params=clean, requested_by=requested_by) if ready else []
    return QueueResult(queued=queued, refused=refused)


def box_update(*, box: SetTopBox, host: str, port: int) -> SetTopBox:
    """Staff change where the portal reaches a box's Thunder server (audited by the trail's save hook)."""
    box.thunder_host, box.thunder_port = host, port
    box.full_clean(validate_unique=False)
    box.save(update_fields=["thunder_host", "thunder_port", "updated_at"])
    return box


def box_delete(*, box: SetTopBox) -> None:
    """Forget a box's plugin records (its commands and events go with it); the device stays in the inventory."""
    box.delete()


def command_create(
    *, box: SetTopBox, kind: str, params: dict | None = None, requested_by: User | None = None
) -> Command:
    return commands_create(boxes=[box], kind=kind, params=params, requested_by=requested_by)[0]


def _dispatch(ids: list[int], countdown: float = 0) -> None:
    """One message per COMMAND_BATCH_SIZE of ``ids``. By name: the task module imports this one. Only ids travel;
    the worker reads the rest."""
    size = settings.COMMAND_BATCH_SIZE
    for start in range(0, len(ids), size):
        current_app.send_task(TASK, args=[ids[start : start + size]], queue=queues.DEVICES, countdown=countdown or None)


def _claim(ids: list[int]) -> list[Command]:
    """QUEUED and due → SENT, each for exactly one caller, in one short transaction: the rows are locked (``SKIP
    LOCKED``: a command another worker is claiming is its) and moved together. ``attempts`` doubles as each claim's
    token: an outcome is written only where it still matches, so a command re-queued by the sweep and claimed by
    another worker keeps the other worker's outcome. On SQLite (one writer; IMMEDIATE transactions) the lock clause
    is not needed and Django leaves it out."""
    now = timezone.now()
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    with transaction.atomic():
        rows = list(
            Command.objects.select_for_update(skip_locked=True)
            .filter(due, pk__in=ids, state=C.QUEUED)
            .order_by("pk")
            .values_list("pk", "attempts")
        )
        # A command re-queued after its worker died as often as the budget allows is not sent again.
        spent = [pk for pk, attempts in rows if attempts >= MAX_ATTEMPTS]
        if spent:
            Command.objects.filter(pk__in=spent).update(
                state=C.FAILED, last_error="no outcome recorded after every attempt (workers died)", finished_at=now
            )
        taken = [pk for pk, attempts in rows if attempts < MAX_ATTEMPTS]
        if not taken:
            return []
        Command.objects.filter(pk__in=taken).update(state=C.SENT, sent_at=now, attempts=F("attempts") + 1)
    return list(Command.objects.select_related("box").filter(pk__in=taken).order_by("pk"))


@dataclass
class _Call:
    """One command's box call, as it came back; nothing of it is written until the batch records it."""

    command: Command
    result: dict | None = None
    error: thunder.ThunderError | None = None
    defect: str = ""  # an unexpected exception's name: a bug, not a box's answer
    box_fields: dict | None = None
    statuses: list[thunder.TypeStatus] = field(default_factory=list)


def _call(command: Command) -> _Call:
    """Speak to the box (runs in a sender thread: no database access here)."""
    outcome = _Call(command)
    try:
        with thunder.ThunderClient(command.box.address, timeout=settings.THUNDER_TIMEOUT) as client:
            if command.kind == CommandKind.REPROVISION:
                outcome.statuses = client.reprovision(thunder.ProvisionType(command.params["provision_type"]))
                outcome.result = {"types": {s.provision_type.value: s.state.value for s in outcome.statuses}}
            elif command.kind == CommandKind.PROVISION:
                client.provision()
            elif command.kind == CommandKind.SET_INDEX:
                client.set_index(command.params["label"], command.params["index"])
            else:
                outcome.box_fields, outcome.statuses = box_read(client)
                types = {s.provision_type.value: s.state.value for s in outcome.statuses}
                outcome.result = {"api_version": outcome.box_fields["api_version"], "types": types}
                if any(s.state == thunder.ProvisionState.IN_PROGRESS for s in outcome.statuses):
                    # Stored as read, but not settled: look again later for the final state.
                    outcome.error = thunder.InProgress("a provision type is IN_PROGRESS")
    except thunder.ThunderError as exc:
        outcome.error = exc
    except Exception as exc:
        # Anything else is a defect: recorded and stopped, rather than left SENT for the sweep to send again.
        log.exception("command failed unexpectedly", extra={"command_id": command.pk})
        outcome.defect = f"internal error: {type(exc).__name__}"
    return outcome


@cache
def _senders() -> concurrent.futures.ThreadPoolExecutor:
    """The threads that make a batch's box calls (one pool per worker process, made after the fork)."""
    return concurrent.futures.ThreadPoolExecutor(settings.COMMAND_BATCH_THREADS, thread_name_prefix="thunder")


def commands_run(*, ids: list[int]) -> dict[int, str]:
    """Carry out those of ``ids`` that are still due: claim them at once, call their boxes concurrently, record
    the outcomes in one transaction. Returns each claimed command's new state (QUEUED: to be tried again)."""
    batch = _claim(ids)
    if not batch:
        return {}
    # One command is called in this thread (a staff click, an old single message); a batch on the sender threads.
    calls = [_call(batch[0])] if len(batch) == 1 else list(_senders().map(_call, batch))
    return _record(calls)


def command_run(*, command_id: int) -> str | None:
    """Carry out one command if it is still due; record its outcome. Returns the new state, or None if not due."""
    return commands_run(ids=[command_id]).get(command_id)


def _next(call: _Call) -> tuple[str, float]:
    """The state a call leaves its command in, and the delay before the next attempt when it is tried again."""
    command, exc = call.command, call.error
    if call.defect:
        return C.FAILED, 0.0
    if exc is None:
        return C.SUCCEEDED, 0.0
    if exc.retry == thunder.Retry.NEVER or command.attempts >= MAX_ATTEMPTS:
        return C.FAILED, 0.0
    return C.QUEUED, BUSY_DELAY if exc.retry == thunder.Retry.LATER else _backoff(command.attempts)


def _record(calls: list[_Call]) -> dict[int, str]:
    """Write a batch's outcomes where each claim still holds (one transaction: the claimed rows locked, the boxes'
    reads upserted, the commands updated in bulk, their webhook events recorded); after the commit, queue the
    retries, count the metrics and publish one live batch."""
    now = timezone.now()
    states: dict[int, str] = {}
    with transaction.atomic():
        held = dict(
            Command.objects.select_for_update()
            .filter(pk__in=[call.command.pk for call in calls], state=C.SENT)
            .order_by("pk")
            .values_list("pk", "attempts")
        )
        mine = [call for call in calls if held.get(call.command.pk) == call.command.attempts]
        if not mine:
            return {}
        _store_reads(mine, now)
        retries: dict[int, list[int]] = {}  # whole seconds to wait (rounded up: never due after its message) -> ids
        finished, requeued = [], []
        for call in mine:
            command = call.command
            state, delay = _next(call)
            error = call.defect or (str(call.error) if call.error else "")
            command.state, command.last_error = state, error[:2000]
            states[command.pk] = state
            if state == C.QUEUED:
                command.next_attempt_at = now + timedelta(seconds=delay)
                retries.setdefault(math.ceil(delay), []).append(command.pk)
                requeued.append(command)
            else:
                command.result, command.finished_at = call.result if state == C.SUCCEEDED else None, now
                finished.append(command)
        Command.objects.bulk_update(finished, ["state", "result", "last_error", "finished_at"])
        Command.objects.bulk_update(requeued, ["state", "last_error", "next_attempt_at"])
        webhook_events.commands_finished(
            {
                "command_id": c.pk,
                "device_id": c.box.device_id,
                "kind": c.kind,
                "state": c.state,
                "error": c.last_error,
            }
            for c in finished
        )
    for delay, pks in retries.items():
        _dispatch(pks, countdown=delay)
    for command in finished:
        metrics.command_finished(kind=command.kind, outcome=command.state, created_at=command.created_at)
    if finished:
        _publish(finished)
    return states


def _store_reads(calls: list[_Call], now: datetime) -> None:
    """What the calls read of their boxes: the boxes locked in id order (two batches never wait on each other in
    a circle), refreshed fields in one bulk update, type statuses in one upsert."""
    box_ids = sorted({call.command.box_id for call in calls if call.box_fields is not None or call.statuses})
    if not box_ids:
        return
    list(SetTopBox.objects.select_for_update().filter(pk__in=box_ids).order_by("pk").values_list("pk"))
    refreshed = {call.command.box_id: call for call in calls if call.box_fields is not None}
    if refreshed:
        boxes = []
        names = {"refreshed_at", "updated_at"}
        for _, call in sorted(refreshed.items(), key=lambda item: item[0]):
            box, read = call.command.box, call.box_fields or {}
            for name, value in read.items():
                setattr(box, name, value)
            box.refreshed_at = box.updated_at = now
            names |= set(read)
            boxes.append(box)
        SetTopBox.objects.bulk_update(boxes, sorted(names))
    _store_statuses([(call.command.box_id, status) for call in calls for status in call.statuses], now)


def _publish(finished: list[Command]) -> None:
    events: list[DeviceCommand] = [
        {
            "type": "device.command",
            "device_id": command.box.device_id,
            "command_id": command.pk,
            "kind": command.kind,
            "state": command.state,
        }
        for command in finished
    ]
    if len(events) == 1:
        publish(events[0])
        return
    summary: DeviceCommands = {
        "type": "device.commands",
        "commands": [
            {"device_id": e["device_id"], "command_id": e["command_id"], "kind": e["kind"], "state": e["state"]}
            for e in events
        ],
    }
    publish_batch(list(events), summary)


def _backoff(attempts: int) -> float:
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempts - 1)))  # noqa: S311  (jitter)


def commands_sweep() -> int:
    """Dispatch again what the broker may have lost: QUEUED commands overdue by a grace period (their message is
    gone, not merely waiting in a busy queue) and SENT ones whose worker died."""
    now = timezone.now()
    # A call never takes near COMMAND_STALE_SECONDS: a command SENT that long ago lost its worker.
    stale = Command.objects.filter(state=C.SENT, sent_at__lt=now - timedelta(seconds=settings.COMMAND_STALE_SECONDS))
    revived = list(stale.values_list("pk", flat=True)[:10_000])
    Command.objects.filter(pk__in=revived, state=C.SENT).update(state=C.QUEUED, next_attempt_at=now)
    # Two sweep intervals by default: a QUEUED command overdue this long lost its message.
    overdue = now - timedelta(seconds=settings.COMMAND_SWEEP_GRACE_SECONDS)
    lost = Command.objects.filter(state=C.QUEUED).filter(
        Q(next_attempt_at__lte=overdue) | Q(next_attempt_at__isnull=True, created_at__lte=overdue)
    )
    resent = list(lost.values_list("pk", flat=True)[: 10_000 - len(revived)])
    # Stamped as dispatched now: the next sweeps leave them alone for another grace period (a deep queue that is
    # merely slow is not flooded with repeats every run). Still due: a claim takes them as before.
    Command.objects.filter(pk__in=resent, state=C.QUEUED).update(next_attempt_at=now)
    ids = revived + resent
    _dispatch(sorted(ids))
    return len(ids)


# --- events --------------------------------------------------------------------------------------------------------


def event_ingest(*, box: SetTopBox, name: str, params: dict, source: EventSource) -> BoxEvent:
    """Store the event on the box's timeline, note its status, queue a refresh, and tell the live pages."""
    status = params.get("status") if isinstance(params.get("status"), int) else None
    now = timezone.now()
    with transaction.atomic():
        # The box row lock makes "one queued refresh per box" hold under simultaneous events.
        SetTopBox.objects.select_for_update().filter(pk=box.pk).first()
        event = BoxEvent.objects.create(box=box, name=name, status=status, params=params, source=source)
        SetTopBox.objects.filter(pk=box.pk).update(last_event_status=status, last_event_at=now)
        pending = Command.objects.filter(box=box, kind=CommandKind.REFRESH, state=C.QUEUED).exists()
        if not pending:
            command_create(box=box, kind=CommandKind.REFRESH)
    publish(
        {"type": "device.event", "device_id": box.device_id, "event": name, "status": status, "at": now.isoformat()}
    )
    return event


def event_push(*, device: Device, host: str, name: str, status: int) -> BoxEvent:
    """A notification a box pushed (JSON-RPC): a box pushing for the first time is registered at the address it
    pushed from, in the same transaction as its event."""
    with transaction.atomic():
        box = SetTopBox.objects.filter(device=device).first() or box_register(device=device, host=host)
        return event_ingest(box=box, name=name, params={"status": status}, source=EventSource.PUSH)
