"""Reads behind the live pages: what a device's page shows, gathered from the inventory, the set-top-box plugins and
conditional access, who may see which device, and the staff's activity feed with its filters. The queries are the
apps' selectors; this module composes them across apps. Used by the pages, their fragments and the WebSocket consumers
(the consumers call these through ``database_sync_to_async``, never in the event loop)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from django import forms
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.urls import reverse

from conax import selectors as conax_selectors
from conax.choices import LifeCycleState
from conax.models import Entitlement, ProvisioningRequest, Smartcard
from conax.models import SetTopBox as CasBox
from devices import selectors as device_selectors
from devices.models import Device
from provisioning import selectors as provisioning_selectors
from provisioning.choices import CommandState, ProvisionType
from provisioning.models import BoxEvent, Command, SetTopBox, TypeStatus

RECENT = 10
MY_DEVICES_LIMIT = 200


def devices_visible(user: AbstractBaseUser) -> QuerySet[Device]:
    """The inventory's one rule (``devices.selectors.device_visibility``), with what the pages show of a device."""
    return device_selectors.devices_visible(user=user).select_related("model__vendor").with_effective_state()


def my_devices(user: AbstractBaseUser) -> list[Device]:
    """The devices the user owns and may see (support staff too see only their own here)."""
    devices = devices_visible(user)
    devices = devices.filter(owner=user) if user.is_authenticated else devices.none()
    return list(devices.select_related("set_top_box").order_by("serial_number")[:MY_DEVICES_LIMIT])


def device_visible(user: AbstractBaseUser, device_id: int) -> Device | None:
    return devices_visible(user).filter(pk=device_id).first()


@dataclass
class DeviceView:
    device: Device
    box: SetTopBox | None
    types: list[TypeStatus] = field(default_factory=list)
    events: list[BoxEvent] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    cas_box: CasBox | None = None
    smartcards: list[Smartcard] = field(default_factory=list)
    services: list[Entitlement] = field(default_factory=list)
    requests: list[ProvisioningRequest] = field(default_factory=list)

    @property
    def last_event(self) -> BoxEvent | None:
        return self.events[0] if self.events else None


def device_view(device: Device) -> DeviceView:
    """Everything the device page shows, in a fixed number of queries: the set-top-box plugin's box (its types,
    latest events and commands) and conditional access (the CAS box's smartcards, their services, the requests)."""
    box = provisioning_selectors.box_for_device(device_id=device.pk)
    view = DeviceView(device=device, box=box)
    if box is not None:
        view.types = list(box.type_statuses.all())
        view.events = provisioning_selectors.box_recent_events(box=box, length=RECENT)
        view.commands = provisioning_selectors.box_recent_commands(box=box, length=RECENT)
    view.cas_box = conax_selectors.box_of_device(device_id=device.pk)
    if view.cas_box is not None:
        view.smartcards = _cards_of_box(view.cas_box)
        card_ids = [card.pk for card in view.smartcards]
        view.services = conax_selectors.active_entitlements(smartcard_ids=card_ids)
        view.requests = conax_selectors.box_requests(box=view.cas_box, smartcard_ids=card_ids, length=RECENT)
    return view


@dataclass
class StaffDeviceView:
    """What support staff need of a device's box on its admin page: its address, each provision type's state as last
    read (or not read yet), and its last event and last command with their raw codes."""

    device: Device
    box: SetTopBox | None
    types: list[tuple[str, TypeStatus | None]] = field(default_factory=list)  # (provision type, its status)
    last_event: BoxEvent | None = None
    last_command: Command | None = None


def staff_device_view(device: Device) -> StaffDeviceView:
    """Four queries whatever the box's history: the box with its types, its last event, its last command."""
    box = provisioning_selectors.box_for_device(device_id=device.pk)
    view = StaffDeviceView(device=device, box=box)
    if box is None:
        return view
    read = {status.provision_type: status for status in box.type_statuses.all()}
    view.types = [(kind, read.get(kind)) for kind in ProvisionType.values]
    view.types += [(kind, status) for kind, status in read.items() if kind not in ProvisionType.values]
    view.last_event = next(iter(provisioning_selectors.box_recent_events(box=box, length=1)), None)
    view.last_command = next(iter(provisioning_selectors.box_recent_commands(box=box, length=1)), None)
    return view


def _cards_of_box(box: CasBox) -> list[Smartcard]:
    """Only the smartcards paired with this box: the selector falls back to the subscription's cards when the box is
    unpaired, and those may sit in the customer's other boxes (a page about this box would claim them)."""
    if not box.pairing_id:
        return []
    return [
        card for card in conax_selectors.box_smartcards(box=box, length=RECENT) if card.pairing_id == box.pairing_id
    ]


def request_visible(user: AbstractBaseUser, number: int) -> ProvisioningRequest | None:
    return conax_selectors.request_visible(user=user, number=number)


# --- staff live views ----------------------------------------------------------------------------------------------

ACTIVITY_KINDS = ("event", "command", "request")
NAME_LENGTH = 64  # Vendor.name and DeviceModel.name
STATUS_MAX = 2**31 - 1  # BoxEvent.status is a PostgreSQL integer


def _is_status(state: str) -> bool:
    return state.isascii() and state.isdigit() and int(state) <= STATUS_MAX


# What ``state`` means for each kind of activity: an event's status code, a command's or a request's state.
STATE_VALID = {
    "event": _is_status,
    "command": lambda state: state in CommandState.values,
    "request": lambda state: state in LifeCycleState.values,
}


def _one_of(values: list[str]) -> str:
    return ", ".join(values[:-1]) + " or " + values[-1]


# How each kind's state is spelt, and what the kind is called, for the error a wrong state gets.
STATE_HELP = {
    "event": ("a status code, a number such as 200 or 500", "an event", "events"),
    "command": (_one_of(CommandState.values), "a command", "commands"),
    "request": (_one_of(LifeCycleState.values), "a Conax request", "Conax requests"),
}


class ActivityFilters(forms.Form):
    """The activity page's filters, checked as the REST API checks its FilterSets: a value that cannot narrow the
    list (an unknown type, a state that no activity of the chosen type can be in, a name longer than any vendor's or
    model's) is an error, never a filter silently left out. Vendor and model are exact names, as in
    ``devices.filters.DeviceFilter``; a name no device has simply lists nothing."""

    vendor = forms.CharField(required=False, max_length=NAME_LENGTH, label="Vendor")
    model = forms.CharField(required=False, max_length=NAME_LENGTH, label="Model")
    type = forms.ChoiceField(
        required=False,
        choices=[("", "any"), *((kind, kind) for kind in ACTIVITY_KINDS)],
        label="Type",
        error_messages={
            "invalid_choice": "“%(value)s” is not a type of activity: choose event, command or request (or any)."
        },
    )
    state = forms.CharField(required=False, max_length=NAME_LENGTH, label="State")

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        state, kind = cleaned.get("state"), cleaned.get("type")
        if state and "type" not in self.errors and not _state_kinds(kind or "", state):
            self.add_error("state", _state_error(kind or "", state))
        return cleaned


def _state_error(kind: str, state: str) -> str:
    if kind:
        spelling, name, _ = STATE_HELP[kind]
        return f"“{state}” is not a state of {name}: use {spelling}."
    uses = "; ".join(f"{spelling} for {plural}" for spelling, _, plural in STATE_HELP.values())
    return f"“{state}” is not a state of any activity: use {uses}."


def _state_kinds(kind: str, state: str) -> list[str]:
    """The kinds listed: the one asked for (or all), less those that ``state`` (when given) cannot apply to."""
    kinds = [kind] if kind else list(ACTIVITY_KINDS)
    return [k for k in kinds if not state or STATE_VALID[k](state)]


@dataclass(frozen=True)
class Activity:
    at: object
    kind: str  # event | command | request
    what: str
    state: str
    device: Device | None
    link: str


def activity(filters: Mapping[str, str], limit: int = 50) -> list[Activity]:
    """The fleet's latest box events, finished commands and finished Conax requests, newest first, filtered by
    vendor and model (names), kind (``type``) and state. ``filters`` are an ``ActivityFilters``' cleaned data."""
    state = filters.get("state", "")
    kinds = _state_kinds(filters.get("type", ""), state)
    devices = _devices_named(filters)
    rows: list[Activity] = []
    if "event" in kinds:
        events = provisioning_selectors.event_feed(devices=devices, status=int(state) if state else None, length=limit)
        rows += [_event_row(event) for event in events]
    if "command" in kinds:
        commands = provisioning_selectors.finished_command_feed(devices=devices, state=state, length=limit)
        rows += [_command_row(command) for command in commands]
    if "request" in kinds:
        requests = conax_selectors.executed_request_feed(devices=devices, state=state, length=limit)
        rows += [_request_row(request) for request in requests]
    return sorted(rows, key=lambda row: row.at, reverse=True)[:limit]


def _devices_named(filters: Mapping[str, str]) -> QuerySet[Device] | None:
    """The devices of the vendor and model named (the inventory's own FilterSet), or None when neither is."""
    names = {name: filters[name] for name in ("vendor", "model") if filters.get(name)}
    return device_selectors.device_list(filters=names) if names else None


def _event_row(e: BoxEvent) -> Activity:
    return Activity(e.received_at, "event", e.name, str(e.status), e.box.device, _device_link(e.box.device_id))


def _command_row(c: Command) -> Activity:
    return Activity(c.finished_at, "command", c.kind, c.state, c.box.device, _device_link(c.box.device_id))


def _request_row(r: ProvisioningRequest) -> Activity:
    device = r.set_top_box.device if r.set_top_box else None
    link = reverse("admin:conax_provisioningrequest_change", args=[r.pk])
    return Activity(r.executed_date, "request", f"{r.type} #{r.number}", r.life_cycle_state, device, link)


def _device_link(device_id: int) -> str:
    return reverse("admin:devices_device_change", args=[device_id])
