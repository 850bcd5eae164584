"""Reads behind the live pages: what a device's page shows, gathered from the inventory, the set-top-box plugins and
conditional access, and who may see which device. Used by the pages, their fragments and the WebSocket consumers
(the consumers call these through ``database_sync_to_async``, never in the event loop)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.urls import reverse

from conax.models import Entitlement, ProvisioningRequest, Smartcard
from conax.models import SetTopBox as CasBox
from devices import selectors as device_selectors
from devices.models import Device
from portal.kernel.permissions import is_support_staff
from provisioning.models import BoxEvent, Command, SetTopBox, TypeStatus

RECENT = 10
MY_DEVICES_LIMIT = 200


def devices_visible(user: AbstractBaseUser) -> QuerySet[Device]:
    """The inventory's one rule (``devices.selectors.device_visibility``), with what the pages show of a device."""
    return device_selectors.devices_visible(user=user).select_related("model__vendor").with_effective_state()


def my_devices(user: AbstractBaseUser) -> list[Device]:
    """The devices the user owns and may see (support staff too see only their own here)."""
    devices = devices_visible(user).filter(owner=user) if user.is_authenticated else Device.objects.none()
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
    """Everything the device page shows, in a fixed number of queries."""
    box = SetTopBox.objects.filter(device=device).first()
    view = DeviceView(device=device, box=box)
    if box is not None:
        view.types = list(box.type_statuses.all())
        view.events = list(box.events.all()[:RECENT])
        view.commands = list(box.commands.all()[:RECENT])
    view.cas_box = CasBox.objects.filter(device=device).select_related("pairing", "subscription").first()
    if view.cas_box is not None:
        _conditional_access(view, view.cas_box)
    return view


def _conditional_access(view: DeviceView, cas_box: CasBox) -> None:
    """The box's smartcards are those paired with it; an unpaired box shows its subscription's cards."""
    if cas_box.pairing_id:
        cards = Smartcard.objects.filter(pairing_id=cas_box.pairing_id)
    elif cas_box.subscription_id:
        cards = Smartcard.objects.filter(subscription_id=cas_box.subscription_id)
    else:
        cards = Smartcard.objects.none()
    view.smartcards = list(cards.order_by("serial_number")[:RECENT])
    card_ids = [card.pk for card in view.smartcards]
    view.services = list(
        Entitlement.objects.filter(smartcard_id__in=card_ids, active=True)
        .select_related("service", "smartcard")
        .order_by("service__code")
    )
    requests = ProvisioningRequest.objects.filter(Q(set_top_box=cas_box) | Q(smartcard_id__in=card_ids))
    view.requests = list(requests.order_by("-number")[:RECENT])


def request_visible(user: AbstractBaseUser, number: int) -> ProvisioningRequest | None:
    """Staff see every request; a customer only those about their own boxes' smartcards."""
    requests = ProvisioningRequest.objects.filter(pk=number)
    if is_support_staff(user):
        return requests.first()
    mine = CasBox.objects.filter(device__owner=user)
    cards = Smartcard.objects.filter(Q(pairing__set_top_boxes__in=mine) | Q(subscription__customer=user))
    return requests.filter(Q(set_top_box__in=mine) | Q(smartcard__in=cards)).distinct().first()


# --- staff live views ----------------------------------------------------------------------------------------------

ACTIVITY_KINDS = ("event", "command", "request")


@dataclass(frozen=True)
class Activity:
    at: object
    kind: str  # event | command | request
    what: str
    state: str
    device: Device | None
    link: str


def activity(filters: dict, limit: int = 50) -> list[Activity]:
    """The fleet's latest box events, finished commands and finished Conax requests, newest first, filtered by
    vendor and model (names), kind (``type``) and state."""
    kinds = [filters["type"]] if filters.get("type") in ACTIVITY_KINDS else list(ACTIVITY_KINDS)
    rows: list[Activity] = []
    if "event" in kinds:
        rows += _events(filters, limit)
    if "command" in kinds:
        rows += _commands(filters, limit)
    if "request" in kinds:
        rows += _requests(filters, limit)
    return sorted(rows, key=lambda row: row.at, reverse=True)[:limit]


def _device_filter(prefix: str, filters: dict) -> Q:
    q = Q()
    if filters.get("vendor"):
        q &= Q(**{f"{prefix}model__vendor__name": filters["vendor"]})
    if filters.get("model"):
        q &= Q(**{f"{prefix}model__name": filters["model"]})
    return q


def _events(filters: dict, limit: int) -> list[Activity]:
    events = BoxEvent.objects.filter(_device_filter("box__device__", filters)).select_related(
        "box__device__model__vendor"
    )
    if filters.get("state"):
        events = events.filter(status=filters["state"]) if str(filters["state"]).isdigit() else events.none()
    return [
        Activity(e.received_at, "event", e.name, str(e.status), e.box.device, _device_link(e.box.device_id))
        for e in events.order_by("-received_at")[:limit]
    ]


def _commands(filters: dict, limit: int) -> list[Activity]:
    commands = Command.objects.filter(_device_filter("box__device__", filters), finished_at__isnull=False)
    if filters.get("state"):
        commands = commands.filter(state=filters["state"])
    commands = commands.select_related("box__device__model__vendor").order_by("-finished_at")[:limit]
    return [
        Activity(c.finished_at, "command", c.kind, c.state, c.box.device, _device_link(c.box.device_id))
        for c in commands
    ]


def _requests(filters: dict, limit: int) -> list[Activity]:
    requests = ProvisioningRequest.objects.filter(executed_date__isnull=False)
    if filters.get("vendor") or filters.get("model"):
        requests = requests.filter(_device_filter("set_top_box__device__", filters))
    if filters.get("state"):
        requests = requests.filter(life_cycle_state=filters["state"])
    requests = requests.select_related("set_top_box__device__model__vendor").order_by("-executed_date")[:limit]
    return [
        Activity(
            r.executed_date,
            "request",
            f"{r.type} #{r.number}",
            r.life_cycle_state,
            r.set_top_box.device if r.set_top_box else None,
            reverse("admin:conax_provisioningrequest_change", args=[r.pk]),
        )
        for r in requests
    ]


def _device_link(device_id: int) -> str:
    return reverse("admin:devices_device_change", args=[device_id])
