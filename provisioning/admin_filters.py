"""The set-top-box and command lists' sidebar filters: vendor and model as choices, last heard, provisioning state,
failing only, created within. Their conditions are the selectors' (``provisioning.selectors``), so a count on the
dashboard and the list its link opens are the same rows."""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from devices import selectors as device_selectors
from devices.admin_filters import CreatedWithinFilter, StrictChoiceFilter, chosen_id
from provisioning import selectors
from provisioning.choices import ProvisionState, ProvisionType


class BoxVendorFilter(StrictChoiceFilter):
    title = "vendor"
    parameter_name = "vendor_id"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[Any, str]]:
        return device_selectors.vendor_choices()

    def condition(self, value: str) -> Q:
        return Q(device__model__vendor_id=int(value))


class BoxModelFilter(StrictChoiceFilter):
    """The models of the chosen vendor (all of them when none is chosen)."""

    title = "device model"
    parameter_name = "model_id"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[Any, str]]:
        return device_selectors.device_model_choices(vendor_id=chosen_id(request, "vendor_id"))

    def condition(self, value: str) -> Q:
        return Q(device__model_id=int(value))


class LastHeardFilter(StrictChoiceFilter):
    title = "last heard from"
    parameter_name = "heard"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(selectors.HEARD_BUCKETS.items())

    def condition(self, value: str) -> Q:
        return selectors.heard_q(value, now=timezone.now())


def provisioning_choice(provision_type: str, state: str) -> str:
    return f"{provision_type}.{state}"


class ProvisioningStateFilter(StrictChoiceFilter):
    """A provision type's state as last read (``HARDWARE.PROVISIONED``), or never read (``HARDWARE.none``)."""

    title = "provisioning state"
    parameter_name = "provisioning"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        states = [*ProvisionState.choices, (selectors.NOT_CHECKED, "Not checked yet")]
        return [
            (provisioning_choice(kind, state), f"{kind_label}: {state_label}")
            for kind, kind_label in ProvisionType.choices
            for state, state_label in states
        ]

    def condition(self, value: str) -> Q:
        provision_type, state = value.split(".", 1)
        return selectors.type_state_q(provision_type, state)


class CommandFailingFilter(StrictChoiceFilter):
    title = "failing only"
    parameter_name = "failing"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("failed", "Failed"), ("retrying", "Queued again after a failed attempt")]

    def condition(self, value: str) -> Q:
        return selectors.command_failing_q(value)


class CommandCreatedFilter(CreatedWithinFilter):
    field = "created_at"
