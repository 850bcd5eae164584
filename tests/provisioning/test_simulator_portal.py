"""Simulated boxes that activate themselves against the portal and push their events with the CIK."""

from __future__ import annotations

import pytest

from devices import services as device_services
from devices.models import Device
from provisioning import thunder
from provisioning.models import BoxEvent, SetTopBox
from provisioning.simulator import Faults, FleetThread
from tests.factories import DeviceModelFactory
from tests.waiting import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_boxes_activate_then_push_events_that_land_on_their_timeline(portal_server):
    model = DeviceModelFactory(vendor__name="simulator", name="stb-sim")
    serials = ["SIM000000", "SIM000001"]
    for serial in serials:
        device_services.devices_import(model=model, rows=[(1, serial, "")], enable=True)
    base = portal_server()

    with FleetThread(
        2, api_version=3, faults=Faults(provision_seconds=0.2), portal_url=base, vendor="simulator", model="stb-sim"
    ) as fleet:
        wait_for(lambda: all(box.cik for box in fleet.boxes), timeout=20, message="boxes did not activate")
        thunder.ThunderClient(fleet.boxes[1].address, timeout=2).provision()
        wait_for(BoxEvent.objects.exists, timeout=20, message="no event reached the portal")

    assert set(Device.objects.filter(serial_number__in=serials).values_list("state", flat=True)) == {"activated"}
    event = BoxEvent.objects.select_related("box__device").get()
    assert (event.box.device.serial_number, event.source, event.status) == ("SIM000001", "push", 200)
    assert SetTopBox.objects.get().thunder_host == "127.0.0.1"
