"""Helpers for the campaign tests: boxes registered at simulated addresses, definitions with sane defaults."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from campaigns import services
from campaigns.models import Member
from provisioning import services as provisioning
from tests.factories import DeviceFactory, DeviceModelFactory

REPROVISION = {"provision_type": "HARDWARE"}


def definition(**overrides: Any) -> services.Definition:
    base = services.Definition(
        name="key rotation",
        target_kind="devices",
        target_filters={},
        action_kind="command",
        action="reprovision",
        params=REPROVISION,
        waves=["10%", "rest"],
        rate_per_second=1000.0,
    )
    return replace(base, **overrides)


def boxes(addresses: list[str], *, model=None) -> list:
    """A device and a set-top box per ``host:port`` address (all of one device model unless given)."""
    model = model or DeviceModelFactory()
    made = []
    for address in addresses:
        host, port = address.rsplit(":", 1)
        made.append(provisioning.box_register(device=DeviceFactory(model=model), host=host, port=int(port)))
    return made


def member_states(campaign) -> dict[str, int]:
    found: dict[str, int] = {}
    for state in Member.objects.filter(campaign=campaign).values_list("state", flat=True):
        found[state] = found.get(state, 0) + 1
    return found
