"""From a saved filter to the rows a campaign's members are made of.

A target is a ``TargetKind`` and the query parameters of that model's own FilterSet (``devices.filters`` /
``conax.filters``), applied through ``portal.kernel.filters.filtered`` as every list of the portal does (an invalid
value is an error, never a filter left out). What a member *is* follows from the action: a set-top box of the
provisioning app for commands, a smartcard for card requests, a CAS set-top box for pairing-module requests. The
subject queryset selects its rows by ``pk IN (filtered)``, so joins in a FilterSet can never double a member.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import F, QuerySet, Value
from django.db.models.functions import Coalesce

from campaigns.choices import ActionKind, TargetKind
from campaigns.exceptions import InvalidCampaign
from conax.filters import SetTopBoxFilter, SmartcardFilter, SubscriptionFilter
from conax.models import SetTopBox as CasBox
from conax.models import Smartcard, Subscription
from devices.filters import DeviceFilter
from devices.models import Device
from portal.kernel.filters import filtered
from provisioning.models import SetTopBox

FILTERSETS = {
    TargetKind.DEVICES: (DeviceFilter, Device),
    TargetKind.SET_TOP_BOXES: (SetTopBoxFilter, CasBox),
    TargetKind.SMARTCARDS: (SmartcardFilter, Smartcard),
    TargetKind.SUBSCRIPTIONS: (SubscriptionFilter, Subscription),
}

# The member column each subject fills.
BOX, CARD, CAS_BOX = "box_id", "smartcard_id", "cas_box_id"


@dataclass(frozen=True)
class Subjects:
    """The rows to freeze: ``queryset`` yields ``m_subject``, ``m_label``, ``m_group`` (in that order)."""

    column: str
    queryset: QuerySet


def _selected(kind: str, filters: dict) -> QuerySet:
    from django.core.exceptions import ValidationError

    filterset, model = FILTERSETS[TargetKind(kind)]
    try:
        return filtered(filterset, filters, model._default_manager.all()).values("pk")
    except ValidationError as exc:
        raise InvalidCampaign("the target filter is invalid", filters=exc.message_dict) from exc


def subject_column(action_kind: str, action: str) -> str:
    if action_kind == ActionKind.COMMAND:
        return BOX
    from campaigns.actions import BOX_REQUESTS

    return CAS_BOX if action in BOX_REQUESTS else CARD


def subjects(*, target_kind: str, filters: dict, action_kind: str, action: str) -> Subjects:
    column = subject_column(action_kind, action)
    chosen = _selected(target_kind, filters)
    if column == BOX:
        rows = _boxes(target_kind, chosen)
        return Subjects(column, _shape(rows, F("device__serial_number"), F("device__model_id")))
    if column == CARD:
        rows = _cards(target_kind, chosen)
        return Subjects(column, _shape(rows, F("serial_number"), Value(0)))
    rows = _cas_boxes(target_kind, chosen)
    return Subjects(column, _shape(rows, F("serial_number"), Value(0)))


def _refuse(target_kind: str, what: str) -> InvalidCampaign:
    return InvalidCampaign(f"a {target_kind} target has no {what}", target_kind=target_kind)


def _boxes(target_kind: str, chosen: QuerySet) -> QuerySet:
    if target_kind == TargetKind.DEVICES:
        return SetTopBox.objects.filter(device__in=chosen)
    if target_kind == TargetKind.SET_TOP_BOXES:
        return SetTopBox.objects.filter(device__cas_box__in=chosen)
    raise _refuse(target_kind, "set-top boxes to send commands to")


def _cards(target_kind: str, chosen: QuerySet) -> QuerySet:
    if target_kind == TargetKind.SMARTCARDS:
        return Smartcard.objects.filter(pk__in=chosen)
    if target_kind == TargetKind.SUBSCRIPTIONS:
        return Smartcard.objects.filter(subscription__in=chosen)
    raise _refuse(target_kind, "smartcards")


def _cas_boxes(target_kind: str, chosen: QuerySet) -> QuerySet:
    if target_kind == TargetKind.SET_TOP_BOXES:
        return CasBox.objects.filter(pk__in=chosen)
    if target_kind == TargetKind.DEVICES:
        return CasBox.objects.filter(device__in=chosen)
    raise _refuse(target_kind, "CAS set-top boxes")


def _shape(rows: QuerySet, label: F, group: F | Value) -> QuerySet:
    return (
        rows.order_by()
        .annotate(m_subject=F("pk"), m_label=Coalesce(label, Value("")), m_group=group)
        .values_list("m_subject", "m_label", "m_group")
    )
