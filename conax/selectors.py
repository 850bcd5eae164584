"""Reads of conditional access: identifier objects resolved to rows, and request lists through the FilterSet."""

from __future__ import annotations

from django.db.models import Model, QuerySet

from conax.exceptions import NotFound
from conax.filters import ProvisioningRequestFilter
from conax.models import ProvisioningRequest, Service, SetTopBox, Smartcard, Subscription

# The fields an identifier object may name, per entity (DESIGN.md, interface 4). ``id`` is the 32-hex CRM id.
IDENTIFIERS: dict[type[Model], tuple[str, ...]] = {
    Subscription: ("id", "number"),
    Service: ("id", "code", "alternative_code"),
    Smartcard: ("id", "serial_number", "alternative_code"),
    SetTopBox: ("id", "serial_number", "alternative_code"),
    ProvisioningRequest: ("id", "number"),
}
LABELS = {Subscription: "subscription", Service: "service", Smartcard: "smartcard", SetTopBox: "set-top box",
          ProvisioningRequest: "provisioning request"}  # fmt: skip


def identified(model: type[Model], field: str, value: str):
    """The one row an identifier names, or NotFound. ``field`` is one of IDENTIFIERS[model]."""
    lookup = {"id": "uid"}.get(field, field) if model is ProvisioningRequest else field
    numeric = model is ProvisioningRequest and field == "number"
    row = None if numeric and not str(value).isdigit() else model.objects.filter(**{lookup: value}).first()
    if row is None:
        raise NotFound(f"{LABELS[model]} not found", f"no {LABELS[model]} with {field} {value!r}")
    return row


def by_ca_ids(model: type[Smartcard | SetTopBox], ca_ids: list[str]) -> list:
    """Installed items by CA id, in the order given; NotFound names the first unknown one."""
    found = {item.ca_id: item for item in model.objects.filter(ca_id__in=ca_ids)}
    for ca_id in ca_ids:
        if ca_id not in found:
            raise NotFound(f"{LABELS[model]} not found", f"no {LABELS[model]} with CA id {ca_id!r}")
    return [found[ca_id] for ca_id in ca_ids]


def request_list(*, filters: dict | None = None) -> QuerySet[ProvisioningRequest]:
    requests = ProvisioningRequest.objects.select_related(
        "created_by_user", "updated_by_user", "created_by_unit", "updated_by_unit"
    ).order_by("number")
    return ProvisioningRequestFilter(filters or {}, requests).qs
