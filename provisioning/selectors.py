from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from devices.models import Device
from portal.kernel.filters import filtered
from provisioning.filters import CommandFilter
from provisioning.models import BoxEvent, Command, SetTopBox

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
    return list(box.commands.order_by("-created_at", "-id")[:length])


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
