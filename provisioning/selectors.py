from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

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


def command_list(*, filters: dict | None = None) -> QuerySet[Command]:
    qs = Command.objects.select_related("box__device", "requested_by").order_by("-created_at", "-pk")
    return filtered(CommandFilter, filters, qs)
