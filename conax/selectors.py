"""Reads of conditional access: identifier objects resolved to rows, request lists through the FilterSet, and what
the portal's pages show of a box (its smartcards, their services, its requests) and of the fleet's requests."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, Prefetch, Q, QuerySet

from conax.choices import LifeCycleState
from conax.exceptions import NotFound
from conax.filters import ProvisioningRequestFilter, ProvisioningRequestListFilter
from conax.models import Entitlement, Pairing, ProvisioningRequest, Service, SetTopBox, Smartcard, Subscription, Unit
from devices.models import Device
from devices.selectors import device_visibility
from portal.kernel.filters import filtered
from portal.kernel.permissions import is_support_staff
from portal.kernel.series import Period, Series, time_series

# The fields an identifier object may name, per entity (DESIGN.md, interface 4). ``id`` is the 32-hex CRM id.
# The models an identifier object can name.
Identified = Subscription | Service | Smartcard | SetTopBox | ProvisioningRequest
IDENTIFIERS: dict[type[Identified], tuple[str, ...]] = {
    Subscription: ("id", "number"),
    Service: ("id", "code", "alternative_code"),
    Smartcard: ("id", "serial_number", "alternative_code"),
    SetTopBox: ("id", "serial_number", "alternative_code"),
    ProvisioningRequest: ("id", "number"),
}
LABELS = {
    Subscription: "subscription",
    Service: "service",
    Smartcard: "smartcard",
    SetTopBox: "set-top box",
    ProvisioningRequest: "provisioning request",
}


def identified(model: type[Identified], field: str, value: str) -> Identified:
    """The one row an identifier names, or NotFound. ``field`` is one of IDENTIFIERS[model]."""
    lookup = {"id": "uid"}.get(field, field) if model is ProvisioningRequest else field
    numeric = model is ProvisioningRequest and field == "number"
    row = None if numeric and not str(value).isdigit() else model.objects.filter(**{lookup: value}).first()
    if row is None:
        raise NotFound(f"{LABELS[model]} not found", description=f"no {LABELS[model]} with {field} {value!r}")
    return row


def request_list(*, filters: dict | None = None) -> QuerySet[ProvisioningRequest]:
    return filtered(ProvisioningRequestFilter, filters, ProvisioningRequest.objects.order_by("number"))


# --- the catalog's collections (the staff REST API): each a fixed number of queries, whatever the page size -------


def unit_list() -> QuerySet[Unit]:
    return Unit.objects.order_by("name")


def service_list() -> QuerySet[Service]:
    return Service.objects.order_by("code")


def subscription_list() -> QuerySet[Subscription]:
    services = Prefetch("services", queryset=Service.objects.order_by("code"))
    return Subscription.objects.select_related("customer").prefetch_related(services).order_by("number")


def smartcard_list() -> QuerySet[Smartcard]:
    """With the subscription, the pairing's boxes and their inventory devices (a card is paired with few boxes)."""
    boxes = Prefetch(
        "pairing__set_top_boxes",
        queryset=SetTopBox.objects.select_related("device").order_by("serial_number"),
    )
    return Smartcard.objects.select_related("subscription", "pairing").prefetch_related(boxes).order_by("serial_number")


def set_top_box_list() -> QuerySet[SetTopBox]:
    return SetTopBox.objects.select_related("subscription", "device").order_by("serial_number")


def pairing_list() -> QuerySet[Pairing]:
    cards = Prefetch("smartcards", queryset=Smartcard.objects.order_by("serial_number"))
    boxes = Prefetch("set_top_boxes", queryset=SetTopBox.objects.order_by("serial_number"))
    return Pairing.objects.select_related("subscription").prefetch_related(cards, boxes).order_by("created_at", "id")


def entitlement_list() -> QuerySet[Entitlement]:
    return Entitlement.objects.select_related("smartcard", "service", "subscription").order_by("smartcard_id", "pk")


# The columns each wire field of the list is read from (``conax.api.crmlist`` renders them); ``log_information``
# reads who made and last changed the request through joins, in the same query.
PERSON = ("username", "first_name", "last_name", "email")
UNIT = ("id", "name", "alternative_code", "description", "group_name", "community_name")
LOG_COLUMNS = (
    "created_date",
    "updated_date",
    "created_by_user_id",
    "updated_by_user_id",
    "created_by_unit_id",
    "updated_by_unit_id",
    *(f"{who}_user__{name}" for who in ("created_by", "updated_by") for name in PERSON),
    *(f"{who}_unit__{name}" for who in ("created_by", "updated_by") for name in UNIT),
)
LIST_COLUMNS: dict[str, tuple[str, ...]] = {
    "number": ("number",),
    "id": ("uid",),
    "log_information": LOG_COLUMNS,
}


def request_page(*, filters: dict, offset: int, count: int, fields: tuple[str, ...]) -> list[dict]:
    """One page of the list, oldest first, as plain rows holding only the columns ``fields`` (wire names) need.

    Two steps in one statement: the page's numbers from an index-only scan of the filter's ``(<filter>, number)``
    index (the offset is skipped in the index, never on the heap), then those rows by primary key. Rows, not model
    instances: building 50 instances (250 with the log's users and units) was most of the list's CPU.
    """
    requests = filtered(ProvisioningRequestListFilter, filters, ProvisioningRequest.objects.order_by("number"))
    numbers = requests.values("number")[offset : offset + count]
    columns = dict.fromkeys(column for name in fields for column in LIST_COLUMNS.get(name, (name,)))
    return list(ProvisioningRequest.objects.filter(number__in=numbers).order_by("number").values(*columns))


def unit_named(*, name: str) -> Unit | None:
    """The unit a CRM login names: by name, else by alternative code."""
    return Unit.objects.filter(name=name).first() or Unit.objects.filter(alternative_code=name).first()


def unit_of_token(*, metadata: dict) -> Unit | None:
    """The unit a CRM token was issued for (its login named one), if it still exists."""
    pk = metadata.get("unit")
    return Unit.objects.filter(pk=pk).first() if pk else None


# --- what the portal's pages show ----------------------------------------------------------------------------------


def box_of_device(*, device_id: int) -> SetTopBox | None:
    """The CAS set-top box installed as this device, with its pairing and subscription."""
    return SetTopBox.objects.filter(device_id=device_id).select_related("pairing", "subscription").first()


def box_smartcards(*, box: SetTopBox, length: int) -> list[Smartcard]:
    """The box's smartcards are those paired with it; an unpaired box shows its subscription's cards."""
    if box.pairing_id:
        cards = Smartcard.objects.filter(pairing_id=box.pairing_id)
    elif box.subscription_id:
        cards = Smartcard.objects.filter(subscription_id=box.subscription_id)
    else:
        return []
    return list(cards.order_by("serial_number")[:length])


def active_entitlements(*, smartcard_ids: list[int]) -> list[Entitlement]:
    """The services these smartcards are entitled to now, by service code, with the service and the card."""
    entitlements = Entitlement.objects.filter(smartcard_id__in=smartcard_ids, active=True)
    return list(entitlements.select_related("service", "smartcard").order_by("service__code"))


def box_requests(*, box: SetTopBox, smartcard_ids: list[int], length: int) -> list[ProvisioningRequest]:
    """The latest requests about the box or these smartcards, newest first."""
    requests = ProvisioningRequest.objects.filter(Q(set_top_box=box) | Q(smartcard_id__in=smartcard_ids))
    return list(requests.order_by("-number")[:length])


def request_visible(*, user: User | AnonymousUser, number: int) -> ProvisioningRequest | None:
    """Support staff see every request; anyone else only those about the boxes of the devices they may see
    (``devices.selectors.device_visibility``), or about those boxes' or their own subscriptions' smartcards."""
    requests = ProvisioningRequest.objects.filter(pk=number)
    if is_support_staff(user):
        return requests.first()
    if not user.is_authenticated or not user.is_active:
        return None
    mine = SetTopBox.objects.filter(device_visibility(user=user, prefix="device__"))
    cards = Smartcard.objects.filter(Q(pairing__set_top_boxes__in=mine) | Q(subscription__customer=user))
    return requests.filter(Q(set_top_box__in=mine) | Q(smartcard__in=cards)).distinct().first()


def executed_request_feed(
    *, devices: QuerySet[Device] | None = None, state: str = "", length: int
) -> list[ProvisioningRequest]:
    """The latest executed requests, last executed first, with the box's device (model, vendor); only those about a
    box of ``devices`` when given, only those in life-cycle ``state`` when given."""
    requests = ProvisioningRequest.objects.filter(executed_date__isnull=False)
    if devices is not None:
        requests = requests.filter(set_top_box__device__in=devices)
    if state:
        requests = requests.filter(life_cycle_state=state)
    requests = requests.select_related("set_top_box__device__model__vendor")
    return list(requests.order_by("-executed_date", "-number")[:length])


# --- the fleet dashboard (portal.fleet): counts and series, each one aggregate query -------------------------------


def request_failing_q(value: str) -> Q:
    """Failing requests: ``rejected`` by the head-end, or ``retried``: still pending after a worker took it."""
    return {
        "rejected": Q(life_cycle_state=LifeCycleState.REJECTED),
        "retried": Q(life_cycle_state=LifeCycleState.PENDING, attempts__gt=0),
    }[value]


def request_state_counts(*, since: datetime) -> dict[str, int]:
    """Requests created since ``since`` per life-cycle state, the retried ones and ``total``: one query."""
    counts = {state: Count("pk", filter=Q(life_cycle_state=state)) for state in LifeCycleState.values}
    retried = Count("pk", filter=request_failing_q("retried"))
    return ProvisioningRequest.objects.filter(created_date__gte=since).aggregate(
        total=Count("pk"), retried=retried, **counts
    )


def request_failures(*, since: datetime, length: int) -> list[ProvisioningRequest]:
    """The latest requests rejected since ``since``, last executed first."""
    rejected = ProvisioningRequest.objects.filter(life_cycle_state=LifeCycleState.REJECTED, executed_date__gte=since)
    return list(rejected.select_related("smartcard").order_by("-executed_date", "-number")[:length])


def request_series(*, since: datetime, unit: Period) -> Series:
    """Requests executed since ``since`` per ``unit`` (in the current time zone) and outcome: one GROUP BY."""
    return time_series(
        ProvisioningRequest.objects.all(), at="executed_date", by="life_cycle_state", since=since, unit=unit
    )


def request_oldest_due_at(*, now: datetime) -> datetime | None:
    """When the longest-waiting PENDING request became due (scheduled date passed), or None: the metrics' "oldest
    due request" (served by the partial index request_pending_due)."""
    return (
        ProvisioningRequest.objects.filter(life_cycle_state=LifeCycleState.PENDING, scheduled_date__lte=now)
        .order_by("scheduled_date")
        .values_list("scheduled_date", flat=True)
        .first()
    )
