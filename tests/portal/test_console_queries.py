"""Every console list answers in a fixed number of queries at 10 000+ rows (no query per row): devices, set-top boxes,
commands, box events, Conax requests, smartcards, subscriptions, components, background jobs, and the object pages
with their buttons."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone

from components.models import DeviceProvisioning, ProvisioningComponent
from conax.models import ProvisioningRequest, Service, Smartcard, Subscription
from devices.models import Device, DeviceModel, Vendor
from portal.kernel.models import BulkJob
from provisioning.models import BoxEvent, Command, SetTopBox
from tests.factories import DeviceModelFactory

pytestmark = pytest.mark.django_db
ROWS = 10_000
# Session, user and permissions, the count, the page, the filters' choices: Django's admin with our sidebar filters
# needs about a dozen; what matters is that the number does not grow with the rows.
BUDGET = 20


@pytest.fixture(scope="module")
def fleet(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        model = DeviceModelFactory(vendor__name="acme", name="stb-4k")
        devices = Device.objects.bulk_create(
            Device(model=model, serial_number=f"Q{n:06d}", state="activated" if n % 3 else "notadded")
            for n in range(ROWS)
        )
        boxes = SetTopBox.objects.bulk_create(
            SetTopBox(device=d, thunder_host="10.0.0.1", last_event_status=200, last_event_at=timezone.now())
            for d in devices
        )
        Command.objects.bulk_create(
            Command(box=b, kind="reprovision", params={"provision_type": "HARDWARE"}, state="SUCCEEDED") for b in boxes
        )
        BoxEvent.objects.bulk_create(BoxEvent(box=b, status=200, source="push") for b in boxes)
        service = Service.objects.create(code="Q1", service_ca_id="Q1CA")
        subscriptions = Subscription.objects.bulk_create(Subscription(number=f"QS{n:06d}") for n in range(ROWS))
        cards = Smartcard.objects.bulk_create(
            Smartcard(serial_number=f"QC{n:06d}", ca_id=f"QCA{n:06d}", subscription=s)
            for n, s in enumerate(subscriptions)
        )
        now = timezone.now()
        ProvisioningRequest.objects.bulk_create(
            ProvisioningRequest(
                type="ADD_SUBSCRIPTIONS", scheduled_date=now, smartcard=c, subscription=c.subscription, service=service
            )
            for c in cards
        )
        records = DeviceProvisioning.objects.bulk_create(DeviceProvisioning(device=d) for d in devices)
        ProvisioningComponent.objects.bulk_create(
            ProvisioningComponent(provisioning=r, component_type=0, component_id=1, last_modified_datetime=now)
            for r in records
        )
        BulkJob.objects.bulk_create(
            BulkJob(
                operation="devices.enable",
                title=f"job {n}",
                content_type=ContentType.objects.get_for_model(Device),
                object_ids=[],
                total=0,
            )
            for n in range(200)
        )
    yield devices
    with django_db_blocker.unblock():  # without signals (the audit trail would log 90 000 deletions one by one)
        for model in (BulkJob, ProvisioningComponent, DeviceProvisioning, ProvisioningRequest, Smartcard):
            model.objects.all()._raw_delete(model.objects.db)
        for model in (Subscription, Service, BoxEvent, Command, SetTopBox, Device, DeviceModel, Vendor):
            model.objects.all()._raw_delete(model.objects.db)


LISTS = [
    "devices_device",
    "provisioning_settopbox",
    "provisioning_command",
    "provisioning_boxevent",
    "conax_provisioningrequest",
    "conax_smartcard",
    "conax_subscription",
    "components_provisioningcomponent",
    "components_deviceprovisioning",
    "portal_bulkjob",
]


@pytest.mark.parametrize("name", LISTS)
def test_every_list_has_a_fixed_query_budget_at_ten_thousand_rows(
    client, staff_user, fleet, name, django_assert_max_num_queries
):
    client.force_login(staff_user)
    url = reverse(f"admin:{name}_changelist")
    client.get(url)  # warm: content types and permissions cached as in a running server

    with django_assert_max_num_queries(BUDGET):
        response = client.get(url)

    assert response.status_code == 200
    assert response.context["cl"].result_count >= 200


@pytest.mark.parametrize("name", ["devices_device", "provisioning_settopbox", "conax_provisioningrequest"])
def test_object_pages_with_their_buttons_have_a_fixed_budget(
    client, staff_user, fleet, name, django_assert_max_num_queries
):
    client.force_login(staff_user)
    model = {"devices_device": Device, "provisioning_settopbox": SetTopBox}.get(name, ProvisioningRequest)
    url = reverse(f"admin:{name}_change", args=[model.objects.order_by("pk").values_list("pk", flat=True)[500]])
    client.get(url)

    with django_assert_max_num_queries(BUDGET + 10):
        response = client.get(url)

    assert response.status_code == 200
