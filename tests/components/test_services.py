"""The provisioning-component records and the staff bulk actions (the /v1/ API is still to come)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError
from django.urls import reverse
from django.utils import timezone

from components import services
from components.models import ProvisioningComponent, Sensor
from devices.models import Device
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db


def component(record, component_id: int, status: int = 0, component_type: int = 0) -> ProvisioningComponent:
    return ProvisioningComponent.objects.create(
        provisioning=record,
        component_type=component_type,
        component_id=component_id,
        active_status=status,
        last_modified_datetime=timezone.now(),
    )


def test_a_device_gets_one_provisioning_record_on_first_use():
    device = DeviceFactory(serial_number="PV-1")

    first = services.provisioning_for_device(device=device)
    again = services.provisioning_for_device(device=device)

    assert first.pk == again.pk and first.name == "PV-1"


def test_one_component_per_provisioning_type_and_id():
    record = services.provisioning_for_device(device=DeviceFactory())
    component(record, 7)

    with pytest.raises(IntegrityError):
        component(record, 7)


def test_bulk_status_change_bumps_each_devices_version_once(staff_user):
    one, two = (services.provisioning_for_device(device=DeviceFactory()) for _ in range(2))
    ids = [component(one, 1).pk, component(one, 2).pk, component(two, 1).pk, component(two, 2, status=1).pk]

    changed = services.components_set_status(ids=ids, active_status=1, user=staff_user)

    assert changed == 3
    versions = dict(
        Device.objects.filter(pk__in=[one.device_id, two.device_id]).values_list("pk", "configuration_version")
    )
    assert versions == {one.device_id: 1, two.device_id: 1}
    assert set(ProvisioningComponent.objects.values_list("active_status", flat=True)) == {1}
    modified = ProvisioningComponent.objects.order_by("pk").values_list("last_modified_by", flat=True)
    assert list(modified) == [staff_user.pk, staff_user.pk, staff_user.pk, None]  # the last one was already inactive


def test_a_change_that_changes_nothing_bumps_nothing(staff_user):
    record = services.provisioning_for_device(device=DeviceFactory())
    pk = component(record, 1, status=1).pk

    assert services.components_set_status(ids=[pk], active_status=1, user=staff_user) == 0
    assert Device.objects.get(pk=record.device_id).configuration_version == 0


def test_admin_bulk_deactivate(client, staff_user):
    record = services.provisioning_for_device(device=DeviceFactory())
    Sensor.objects.create(id=1, name="Carbon Monoxide")
    pk = component(record, 1).pk
    client.force_login(staff_user)

    response = client.post(
        reverse("admin:components_provisioningcomponent_changelist"),
        {"action": "deactivate", "_selected_action": [pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert ProvisioningComponent.objects.get(pk=pk).active_status == 1
    assert Device.objects.get(pk=record.device_id).configuration_version == 1
