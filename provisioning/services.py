"""Set-top-box commands and events: every write, and the retry policy.

A command moves QUEUED → SENT → SUCCEEDED | FAILED. Each move is a conditional UPDATE, so a command redelivered
by the broker, or dispatched twice by the sweep, is carried out by one worker only, and a command whose outcome is
recorded is never sent again. The outcome is written before the task returns (and before the broker message is
acknowledged: ``acks_late``).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from devices.models import Device
from portal.kernel import metrics, queues
from portal.kernel.live import publish
from provisioning import thunder
from provisioning.choices import CommandKind, CommandState, EventSource, ProvisionType
from provisioning.exceptions import InvalidCommand
from provisioning.models import BoxEvent, Command, SetTopBox, TypeStatus
from webhooks import events as webhook_events

log = logging.getLogger(__name__)
C = CommandState
TASK = "provisioning.tasks.run_command"
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
    now = timezone.now()
    for status in statuses:
        TypeStatus.objects.update_or_create(
            box=box,
            provision_type=status.provision_type.value,
            defaults={
                "kind": status.kind,
                "state": status.state.value,
                "reason": status.reason[:255],
                "refreshed_at": now,
            },
        )


def box_refresh(*, box: SetTopBox, client: thunder.ThunderClient) -> dict:
    """Read everything the box's API version offers; never call what it lacks."""
    version = client.api_version()
    statuses = client.provision_check()
    fields = {"api_version": version, "refreshed_at": timezone.now()}
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
    with transaction.atomic():
        SetTopBox.objects.filter(pk=box.pk).update(**fields)
        box_store_statuses(box=box, statuses=statuses)
    if any(status.state == thunder.ProvisionState.IN_PROGRESS for status in statuses):
        # Stored as read, but not settled: look again later for the final state.
        raise thunder.InProgress("a provision type is IN_PROGRESS")
    return {"api_version": version, "types": {s.provision_type.value: s.state.value for s in statuses}}


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

        def dispatch_all() -> None:
            for pk in ids:
                _dispatch(pk)

        transaction.on_commit(dispatch_all)
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


def _dispatch(command_id: int, countdown: float = 0) -> None:
    # By name: the task module imports this one. Only the id travels; the worker reads the rest.
    current_app.send_task(TASK, args=[command_id], queue=queues.DEVICES, countdown=countdown or None)


def _claim(command_id: int) -> Command | None:
    """QUEUED and due → SENT, for exactly one caller. ``attempts`` doubles as the claim's token: the outcome is
    written only where it still matches, so a command re-queued by the sweep and claimed by another worker keeps
    the other worker's outcome."""
    now = timezone.now()
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    queued = Command.objects.filter(Q(pk=command_id, state=C.QUEUED) & due)
    # A command re-queued after its worker died as often as the budget allows is not sent again.
    queued.filter(attempts__gte=MAX_ATTEMPTS).update(
        state=C.FAILED, last_error="no outcome recorded after every attempt (workers died)", finished_at=now
    )
    if not queued.filter(attempts__lt=MAX_ATTEMPTS).update(state=C.SENT, sent_at=now, attempts=F("attempts") + 1):
        return None
    return Command.objects.select_related("box").get(pk=command_id)


def command_run(*, command_id: int) -> str | None:
    """Carry out one command if it is still due; record its outcome. Returns the new state, or None if not due."""
    command = _claim(command_id)
    if command is None:
        return None
    try:
        with thunder.ThunderClient(command.box.address, timeout=settings.THUNDER_TIMEOUT) as client:
            result = _execute(command, client)
    except thunder.ThunderError as exc:
        return _after_error(command, exc)
    except Exception as exc:
        # Anything else is a defect, not a box's answer: record it and stop, rather than leave the command SENT
        # for the sweep to send again and again.
        log.exception("command failed unexpectedly", extra={"command_id": command.pk})
        _finish(command, C.FAILED, error=f"internal error: {type(exc).__name__}")
        return C.FAILED
    _finish(command, C.SUCCEEDED, result=result)
    return C.SUCCEEDED


def _execute(command: Command, client: thunder.ThunderClient) -> dict | None:
    box = command.box
    if command.kind == CommandKind.REPROVISION:
        statuses = client.reprovision(thunder.ProvisionType(command.params["provision_type"]))
        box_store_statuses(box=box, statuses=statuses)
        return {"types": {s.provision_type.value: s.state.value for s in statuses}}
    if command.kind == CommandKind.PROVISION:
        client.provision()
        return None
    if command.kind == CommandKind.SET_INDEX:
        client.set_index(command.params["label"], command.params["index"])
        return None
    return box_refresh(box=box, client=client)


def _after_error(command: Command, exc: thunder.ThunderError) -> str:
    if exc.retry == thunder.Retry.NEVER or command.attempts >= MAX_ATTEMPTS:
        _finish(command, C.FAILED, error=str(exc))
        return C.FAILED
    delay = BUSY_DELAY if exc.retry == thunder.Retry.LATER else _backoff(command.attempts)
    requeued = Command.objects.filter(pk=command.pk, state=C.SENT, attempts=command.attempts).update(
        state=C.QUEUED, last_error=str(exc)[:2000], next_attempt_at=timezone.now() + timedelta(seconds=delay)
    )
    if requeued:
        _dispatch(command.pk, countdown=delay)
    return C.QUEUED


def _backoff(attempts: int) -> float:
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempts - 1)))  # noqa: S311  (jitter)


def _finish(command: Command, state: str, *, result: dict | None = None, error: str = "") -> None:
    with transaction.atomic():
        finished = Command.objects.filter(pk=command.pk, state=C.SENT, attempts=command.attempts).update(
            state=state, result=result, last_error=error[:2000], finished_at=timezone.now()
        )
        if finished:
            webhook_events.command_finished(
                command_id=command.pk, device_id=command.box.device_id, kind=command.kind, state=state, error=error
            )
    if not finished:
        return
    metrics.command_finished(kind=command.kind, outcome=state, created_at=command.created_at)
    publish(
        {
            "type": "device.command",
            "device_id": command.box.device_id,
            "command_id": command.pk,
            "kind": command.kind,
            "state": state,
        },
    )


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
    ids = revived + list(lost.values_list("pk", flat=True)[: 10_000 - len(revived)])
    for pk in ids:
        _dispatch(pk)
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
