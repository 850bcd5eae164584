from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet

from devices.models import Device
from portal.kernel.filters import filtered
from portal.kernel.series import Period, Series, time_series
from provisioning.choices import CommandState
from provisioning.filters import CommandFilter
from provisioning.models import BoxEvent, Command, SetTopBox, TypeStatus

TIMELINE_LENGTH = 50


def box_for_device(*, device_id: int) -> SetTopBox | None:
    return (
        SetTopBox.objects.select_related("device").prefetch_related("type_statuses").filter(device_id=device_id).first()
    )


def box_timeline(*, box: SetTopBox, length: int = TIMELINE_LENGTH) -> list[dict[str, Any]]:
    """Commands and events of one box, newest first."""
    commands = Command.objects.filter(box=box).select_related("requested_by").order_by("-created_at")[:length]
    events = BoxEvent.objects.filter(box=box).order_by("-received_at")[:length]
    items: list[dict[str, Any]] = [{"at": c.created_at, "command": c} for c in commands]
    items += [{"at": e.received_at, "event": e} for e in events]
    return sorted(items, key=lambda item: item["at"], reverse=True)[:length]


def box_recent_events(*, box: SetTopBox, length: int) -> list[BoxEvent]:
    """The box's latest events, newest first."""
    return list(box.events.order_by("-received_at", "-id")[:length])


def box_recent_commands(*, box: SetTopBox, length: int) -> list[Command]:
    """The box's latest commands, newest first."""
    return list(box.commands.select_related("requested_by").order_by("-created_at", "-id")[:length])


def event_feed(*, devices: QuerySet[Device] | None = None, status: int | None = None, length: int) -> list[BoxEvent]:
    """The fleet's latest box events, newest first, with each box's device (model, vendor); only those of
    ``devices`` when given, only those with ``status`` when given."""
    events = BoxEvent.objects.select_related("box__device__model__vendor").order_by("-received_at", "-id")
    if devices is not None:
        events = events.filter(box__device__in=devices)
    if status is not None:
        events = events.filter(status=status)
    return list(events[:length])


def finished_command_feed(*, devices: QuerySet[Device] | None = None, state: str = "", length: int) -> list[Command]:
    """The fleet's latest finished commands, last finished first, with each box's device (model, vendor); only those
    of ``devices`` when given, only those in ``state`` when given."""
    commands = Command.objects.filter(finished_at__isnull=False).select_related("box__device__model__vendor")
    if devices is not None:
        commands = commands.filter(box__device__in=devices)
    if state:
        commands = commands.filter(state=state)
    return list(commands.order_by("-finished_at", "-id")[:length])


def command_list(*, filters: dict | None = None) -> QuerySet[Command]:
    qs = Command.objects.select_related("box__device", "requested_by").order_by("-created_at", "-pk")
    return filtered(CommandFilter, filters, qs)


# --- the fleet dashboard (portal.fleet): counts and series, each one aggregate query -------------------------------

# How long ago a box was last heard from (its last provisioningchange event): disjoint buckets, the dashboard counts
# them and the admin's "last heard" filter lists the same rows.
HEARD_BUCKETS: dict[str, str] = {
    "1h": "Heard in the last hour",
    "1d": "Last heard 1 to 24 h ago",
    "silent": "Silent for over a day",
    "never": "Never heard from",
}
NOT_CHECKED = "none"  # a box whose provision type was never read (no TypeStatus row)


def heard_q(bucket: str, *, now: datetime) -> Q:
    """The boxes of one ``HEARD_BUCKETS`` bucket at ``now``."""
    hour, day = now - timedelta(hours=1), now - timedelta(days=1)
    return {
        "1h": Q(last_event_at__gte=hour),
        "1d": Q(last_event_at__lt=hour, last_event_at__gte=day),
        "silent": Q(last_event_at__lt=day),
        "never": Q(last_event_at__isnull=True),
    }[bucket]


def box_heard_counts(*, now: datetime) -> dict[str, int]:
    """Boxes per ``HEARD_BUCKETS`` bucket, and ``total``: one query."""
    counts = {bucket: Count("pk", filter=heard_q(bucket, now=now)) for bucket in HEARD_BUCKETS}
    return SetTopBox.objects.aggregate(total=Count("pk"), **counts)


def type_state_q(provision_type: str, state: str) -> Q:
    """The boxes whose ``provision_type`` is in ``state`` (``NOT_CHECKED``: never read)."""
    if state == NOT_CHECKED:
        return ~Q(pk__in=TypeStatus.objects.filter(provision_type=provision_type).values("box_id"))
    return Q(pk__in=TypeStatus.objects.filter(provision_type=provision_type, state=state).values("box_id"))


def type_state_counts() -> dict[tuple[str, str], int]:
    """Boxes per (provision type, provisioning state) as last read: one GROUP BY (a box has one row per type)."""
    rows = TypeStatus.objects.values_list("provision_type", "state").annotate(n=Count("pk")).order_by()
    return {(provision_type, state): n for provision_type, state, n in rows}


def command_failing_q(value: str) -> Q:
    """Failing commands: ``failed`` (gave up), ``retrying`` (queued again after a failed attempt)."""
    return {
        "failed": Q(state=CommandState.FAILED),
        "retrying": Q(state=CommandState.QUEUED, attempts__gt=0),
    }[value]


def command_state_counts(*, since: datetime) -> dict[str, int]:
    """Commands created since ``since`` per state, the retrying ones (``command_failing_q``) and ``total``."""
    counts = {state: Count("pk", filter=Q(state=state)) for state in CommandState.values}
    retrying = Count("pk", filter=command_failing_q("retrying"))
    return Command.objects.filter(created_at__gte=since).aggregate(total=Count("pk"), retrying=retrying, **counts)


def command_failures(*, since: datetime, length: int) -> list[Command]:
    """The latest commands that failed since ``since``, last finished first, with the box's device."""
    failed = Command.objects.filter(state=CommandState.FAILED, finished_at__gte=since)
    return list(failed.select_related("box__device").order_by("-finished_at", "-pk")[:length])


def command_series(*, since: datetime, unit: Period) -> Series:
    """Commands finished since ``since`` per ``unit`` (in the current time zone) and outcome: one GROUP BY."""
    return time_series(Command.objects.all(), at="finished_at", by="state", since=since, unit=unit)
