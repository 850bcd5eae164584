"""Reads of conditional access: identifier objects resolved to rows, and request lists through the FilterSet."""

from __future__ import annotations

from django.db.models import QuerySet

from conax.exceptions import NotFound
from conax.filters import ProvisioningRequestFilter
from conax.models import ProvisioningRequest, Service, SetTopBox, Smartcard, Subscription, Unit
from portal.kernel.filters import filtered

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


def by_ca_ids(model: type[Smartcard | SetTopBox], ca_ids: list[str]) -> list:
    """Installed items by CA id, in the order given; NotFound names the first unknown one."""
    found = {item.ca_id: item for item in model.objects.filter(ca_id__in=ca_ids)}
    for ca_id in ca_ids:
        if ca_id not in found:
            raise NotFound(f"{LABELS[model]} not found", description=f"no {LABELS[model]} with CA id {ca_id!r}")
    return [found[ca_id] for ca_id in ca_ids]


def request_list(*, filters: dict | None = None) -> QuerySet[ProvisioningRequest]:
    return filtered(ProvisioningRequestFilter, filters, ProvisioningRequest.objects.order_by("number"))


LOG_RELATIONS = ("created_by_user", "updated_by_user", "created_by_unit", "updated_by_unit")


def request_page(*, filters: dict, offset: int, count: int, with_log: bool) -> list[ProvisioningRequest]:
    """One page of the list, oldest first, in two steps: the page's numbers from an index-only scan (so the plan
    does not depend on how the types are spread over the table), then those rows (with who made them only when the
    answer shows it)."""
    numbers = request_list(filters=filters).values("number")[offset : offset + count]
    rows = ProvisioningRequest.objects.filter(number__in=numbers).order_by("number")
    return list(rows.select_related(*LOG_RELATIONS) if with_log else rows)


def unit_named(*, name: str) -> Unit | None:
    """The unit a CRM login names: by name, else by alternative code."""
    return Unit.objects.filter(name=name).first() or Unit.objects.filter(alternative_code=name).first()


def unit_of_token(*, metadata: dict) -> Unit | None:
    """The unit a CRM token was issued for (its login named one), if it still exists."""
    pk = metadata.get("unit")
    return Unit.objects.filter(pk=pk).first() if pk else None
