"""Reads behind the live pages: what a device's page shows, gathered from the inventory, the set-top-box plugins and
conditional access, and who may see which device. Used by the pages, their fragments and the WebSocket consumers
(the consumers call these through ``database_sync_to_async``, never in the event loop)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet

from conax.models import Entitlement, ProvisioningRequest, Smartcard
from conax.models import SetTopBox as CasBox
from devices.models import Device
from portal.permissions import is_support_staff
from provisioning.models import BoxEvent, Command, SetTopBox, TypeStatus

RECENT = 10
MY_DEVICES_LIMIT = 200


def devices_visible(user: AbstractBaseUser) -> QuerySet[Device]:
    """A customer sees the devices they own; support staff see every device."""
    devices = Device.objects.select_related("model__vendor").with_effective_state()
    if is_support_staff(user):
        return devices
    if not user.is_authenticated or not user.is_active:
        return devices.none()
    return devices.filter(owner=user)


def my_devices(user: AbstractBaseUser) -> list[Device]:
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
    view.services = list(Entitlement.objects.filter(smartcard_id__in=card_ids, active=True)
                         .select_related("service", "smartcard").order_by("service__code"))  # fmt: skip
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
