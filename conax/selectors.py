"""Reads of conditional access: identifier objects resolved to rows, request lists through the FilterSet, and what
the portal's pages show of a box (its smartcards, their services, its requests) and of the fleet's requests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, Model, Prefetch, Q, QuerySet

from conax.choices import LifeCycleState
from conax.exceptions import NotFound
from conax.filters import ProvisioningRequestFilter
from conax.models import Entitlement, Pairing, ProvisioningRequest, Service, SetTopBox, Smartcard, Subscription, Unit
from devices.models import Device
from devices.selectors import device_visibility
from portal.kernel.db import statements
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


# A catalog row by one of its text identifiers, in SQL written once (``portal.kernel.db.statements``): a CRM
# creation names three of them, and building the three ORM queries cost more CPU than the creation's own insert.
IDENTIFIED_SQL = "SELECT {columns} FROM {table} WHERE {field} = %s ORDER BY {pk} LIMIT 1"


def _first_by_text(model: type[Identified], field: str, value: str) -> Identified | None:
    """``model.objects.filter(<field>=value).first()``: the lowest primary key of those that match."""
    read = statements.columns(model)
    sql = IDENTIFIED_SQL.format(
        columns=read.sql,
        table=statements.table(model),
        field=statements.column(model, field),
        pk=statements.column(model, "pk"),
    )
    rows = statements.fetch(sql, [value])
    return read.instance(rows[0]) if rows else None


def identified(model: type[Identified], field: str, value: str) -> Identified:
    """The one row an identifier names, or NotFound. ``field`` is one of IDENTIFIERS[model]."""
    if model is ProvisioningRequest:
        lookup = {"id": "uid"}.get(field, field)
        numeric = field == "number"
        row = None if numeric and not str(value).isdigit() else model.objects.filter(**{lookup: value}).first()
    else:
        row = _first_by_text(model, field, value)
    if row is None:
        raise NotFound(f"{LABELS[model]} not found", description=f"no {LABELS[model]} with {field} {value!r}")
    return row


HAS_SERVICE_SQL = "SELECT 1 FROM {table} WHERE {subscription} = %s AND {service} = %s"


def subscription_has_service(*, subscription: Subscription, service: Service) -> bool:
    """``subscription.services.filter(pk=service.pk).exists()``, in SQL written once (every CRM creation asks)."""
    through = Subscription.services.through
    sql = HAS_SERVICE_SQL.format(
        table=statements.table(through),
        subscription=statements.column(through, "subscription"),
        service=statements.column(through, "service"),
    )
    return bool(statements.fetch(sql, [subscription.pk, service.pk]))


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


# --- the CRM.COM list (``conax.api.crmlist`` renders it) -------------------------------------------------------------


@dataclass(frozen=True)
class RequestPage:
    """One page of the list as plain rows (keyed by attribute name, only the columns asked for), and the users and
    units its rows' log names, each read once, by id."""

    rows: list[dict[str, Any]]
    users: dict[int, dict[str, Any]]
    units: dict[str, dict[str, Any]]


# The columns each wire field is read from (any other: the column of its name); the log's people and units by id.
LOG_COLUMNS = ("created_date", "updated_date", "created_by_user_id", "updated_by_user_id")
LOG_UNITS = ("created_by_unit_id", "updated_by_unit_id")
LIST_COLUMNS: dict[str, tuple[str, ...]] = {
    "number": ("number",),
    "id": ("uid",),
    "log_information": (*LOG_COLUMNS, *LOG_UNITS),
}
LIST_FILTERS = ("type", "life_cycle_state", "reference_number")  # exact matches, as ProvisioningRequestFilter's
PERSON = ("id", "username", "first_name", "last_name", "email")
UNIT = ("id", "name", "alternative_code", "description", "group_name", "community_name")
# The list in SQL written once (``portal.kernel.db.statements``): building the ORM query (the FilterSet, values()
# and the IN sub-select) took half the call's CPU. The page's numbers come from an index-only scan of the filter's
# ``(<filter>, number)`` index (the offset is skipped in the index, never on the heap), then those rows by primary
# key. The log's users and units are read by id in statements of their own: joining them in (four joins) cost
# PostgreSQL 1 ms of planning per call, five times what the two small reads cost.
PAGE_SQL = (
    "SELECT {columns} FROM {table} WHERE {pk} IN "
    "(SELECT page.{pk} FROM {table} page WHERE {where} ORDER BY page.{pk} LIMIT %s OFFSET %s) ORDER BY {pk}"
)
BY_ID_SQL = "SELECT {columns} FROM {table} WHERE {pk} IN ({ids})"


def _by_id(model: type[Model], names: tuple[str, ...], ids: set) -> dict[Any, dict[str, Any]]:
    ids.discard(None)
    if not ids:
        return {}
    read = statements.columns(model, names)
    sql = BY_ID_SQL.format(
        columns=read.sql,
        table=statements.table(model),
        pk=statements.column(model, "pk"),
        ids=statements.placeholders(len(ids)),
    )
    return {row["id"]: row for row in map(read.as_dict, statements.fetch(sql, sorted(ids)))}


def request_page(*, filters: dict, offset: int, count: int, fields: tuple[str, ...]) -> RequestPage:
    """One page of the list, oldest first (by ``number``, unique: consecutive offsets partition the list), holding
    only the columns ``fields`` (wire names) need; ``filters`` are exact matches on LIST_FILTERS, all applied."""
    if not filters or not set(filters) <= set(LIST_FILTERS):
        raise ValueError(f"the list filters by one or more of {', '.join(LIST_FILTERS)}, not {sorted(filters)}")
    read = statements.columns(
        ProvisioningRequest, tuple(dict.fromkeys(c for name in fields for c in LIST_COLUMNS.get(name, (name,))))
    )
    sql = PAGE_SQL.format(
        columns=read.sql,
        table=statements.table(ProvisioningRequest),
        pk=statements.column(ProvisioningRequest, "pk"),
        where=" AND ".join(f"page.{statements.column(ProvisioningRequest, name)} = %s" for name in filters),
    )
    rows = [read.as_dict(row) for row in statements.fetch(sql, [*filters.values(), count, offset])]
    if "log_information" not in fields:
        return RequestPage(rows, {}, {})
    users = {row[name] for row in rows for name in ("created_by_user_id", "updated_by_user_id")}
    units = {row[name] for row in rows for name in LOG_UNITS}
    return RequestPage(rows, _by_id(get_user_model(), PERSON, users), _by_id(Unit, UNIT, units))


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
