"""The events other apps report, one call each from the service that makes the change (inside its transaction):
what each event's ``data`` holds is decided here, once. Never a secret: no CIK, token or PIN in any of them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from webhooks.choices import EventType
from webhooks.services import emit, takes

DEVICE_EVENTS = {
    "activate": EventType.DEVICE_ACTIVATED,
    "reenable": EventType.DEVICE_REENABLED,
    # Exosite's "regenerate CIK" (the management API) re-enables the device: a new window, the key revoked.
    "regenerate_cik": EventType.DEVICE_REENABLED,
    "disable": EventType.DEVICE_DISABLED,
}


def devices_hooked(action: str) -> bool:
    """Whether ``devices_changed(action, ...)`` would record anything: a hot path opens a transaction only then."""
    event_type = DEVICE_EVENTS.get(action)
    return event_type is not None and takes(event_type)


def devices_changed(action: str, rows: Iterable[dict[str, Any]]) -> None:
    """Devices activated, re-enabled or disabled (``action``); rows with ``pk`` and ``serial_number``. Other actions
    (a first enable) are no event."""
    event_type = DEVICE_EVENTS.get(action)
    if event_type is None:
        return
    state = "activated" if action == "activate" else "disabled" if action == "disable" else "notactivated"
    emit(
        event_type=event_type,
        events=[
            (f"device:{row['pk']}", {"device_id": row["pk"], "serial_number": row["serial_number"], "state": state})
            for row in rows
        ],
    )


def command_finished(*, command_id: int, device_id: int | None, kind: str, state: str, error: str) -> None:
    row = {"command_id": command_id, "device_id": device_id, "kind": kind, "state": state, "error": error}
    commands_finished([row])


def commands_finished(rows: Iterable[dict[str, Any]]) -> None:
    """Commands that ended; rows with ``command_id``, ``device_id``, ``kind``, ``state`` and ``error`` (one
    ``emit`` for a whole batch: one bulk insert of deliveries)."""
    emit(
        event_type=EventType.COMMAND_FINISHED,
        events=[
            (
                f"device:{row['device_id']}",
                {
                    "command_id": row["command_id"],
                    "device_id": row["device_id"],
                    "kind": row["kind"],
                    "state": row["state"],
                    "error": row["error"] or None,
                },
            )
            for row in rows
        ],
    )


def conax_request_finished(
    *, number: int, uid: str, type: str, state: str, smartcard_id: str | None, error: str | None
) -> None:
    conax_requests_finished(
        [{"number": number, "uid": uid, "type": type, "state": state, "smartcard_id": smartcard_id, "error": error}]
    )


def conax_requests_finished(rows: Iterable[dict[str, Any]]) -> None:
    """Conax requests that reached a final state; rows with ``number``, ``uid``, ``type``, ``state``,
    ``smartcard_id`` and ``error`` (one ``emit`` for a whole batch). Keyed by card, so a card's events keep
    their order."""
    events = []
    for row in rows:
        card = row["smartcard_id"]
        data = {
            "number": row["number"],
            "id": row["uid"],
            "type": row["type"],
            "life_cycle_state": row["state"],
            "smartcard_id": card,
            "error_code": row["error"],
        }
        events.append((f"smartcard:{card}" if card else f"conax_request:{row['number']}", data))
    emit(event_type=EventType.CONAX_REQUEST_FINISHED, events=events)


def components_changed(device_ids: Iterable[int]) -> None:
    """A device's provisioning components changed (its configuration version was bumped)."""
    emit(
        event_type=EventType.COMPONENT_CHANGED,
        events=[(f"device:{pk}", {"device_id": pk}) for pk in sorted(set(device_ids))],
    )
