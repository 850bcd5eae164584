"""Customer pages: log in (brute-force protected), "My devices", the device page and its panel, and that a customer
sees only their own devices."""

from __future__ import annotations

import pytest
from django.utils import timezone

from conax.models import Entitlement, Pairing, ProvisioningRequest, Service, SetTopBox, Smartcard, Subscription
from devices import services as device_services
from provisioning.models import BoxEvent
from provisioning.models import SetTopBox as Box
from tests.factories import PASSWORD, CustomerFactory, DeviceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owned(customer_user):
    device = device_services.device_enable(device=DeviceFactory(owner=customer_user, serial_number="STB-OWN-1"))
    box = Box.objects.create(
        device=device, thunder_host="127.0.0.1", last_event_status=200, last_event_at=timezone.now()
    )
    box.type_statuses.create(
        provision_type="HARDWARE", kind="factory", state="PROVISIONED", reason="ok", refreshed_at=timezone.now()
    )
    BoxEvent.objects.create(box=box, status=200, source="push")
    subscription = Subscription.objects.create(number="SUB-CAROL", customer=customer_user)
    pairing = Pairing.objects.create(subscription=subscription)
    SetTopBox.objects.create(
        serial_number="STB-OWN-1", ca_id="STB-CA-1", device=device, subscription=subscription, pairing=pairing
    )
    card = Smartcard.objects.create(
        serial_number="SC-CAROL", ca_id="CA-CAROL", subscription=subscription, pairing=pairing
    )
    sports = Service.objects.create(code="SPORTS", name="Sports", service_ca_id="2002")
    Entitlement.objects.create(smartcard=card, service=sports, active=True, changed_at=timezone.now())
    ProvisioningRequest.objects.create(type="ADD_SUBSCRIPTIONS", scheduled_date=timezone.now(), smartcard=card)
    return device


def test_login_page_is_accessible_and_logs_in(client, customer_user):
    page = client.get("/login/")
    answer = client.post("/login/", {"username": "carol", "password": PASSWORD})

    html = page.content.decode()
    assert page.status_code == 200
    assert '<label for="id_username">' in html and '<label for="id_password">' in html and 'lang="en"' in html
    assert (answer.status_code, answer["Location"]) == (302, "/")


def test_anonymous_is_sent_to_the_login_page(client, owned):
    for url in ("/", f"/devices/{owned.pk}/", f"/devices/{owned.pk}/panel/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


def test_repeated_wrong_passwords_lock_the_login(client, customer_user, settings):
    statuses = [
        client.post("/login/", {"username": "carol", "password": "wrong-one-9"}).status_code
        for _ in range(settings.AXES_FAILURE_LIMIT)
    ]
    locked = client.post("/login/", {"username": "carol", "password": PASSWORD})

    assert statuses[:-1] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    assert locked.status_code == 429 and "Retry-After" in locked


def test_my_devices_lists_only_my_devices(client, customer_user, owned):
    DeviceFactory(owner=CustomerFactory(), serial_number="STB-OTHER")
    client.force_login(customer_user)

    html = client.get("/").content.decode()

    assert "STB-OWN-1" in html and "STB-OTHER" not in html
    assert f'href="/devices/{owned.pk}/"' in html
    assert 'data-socket-path="/ws/my/"' in html
    panel = client.get("/panel/").content.decode()
    assert "STB-OWN-1" in panel and "STB-OTHER" not in panel and "<html" not in panel


def test_the_device_page_shows_box_and_conditional_access(client, customer_user, owned, django_assert_max_num_queries):
    client.force_login(customer_user)

    with django_assert_max_num_queries(16):
        page = client.get(f"/devices/{owned.pk}/")

    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-field="activation-state" data-state="notactivated">Waiting for activation<' in html
    assert "Last heard from your box <time" in html and "Its last key update went through." in html
    assert 'data-field="last-event-status"' not in html and "<details" not in html  # no code, not even folded away
    assert ">Box security keys</th>" in html and 'data-state="PROVISIONED">Installed<' in html
    assert "Card number SC-CAROL" in html and "Sports" in html and 'data-field="paired">Paired with this box<' in html
    assert 'data-field="request-state" data-state="PENDING">Waiting<' in html and ">Add a package</th>" in html
    assert f'data-socket-path="/ws/devices/{owned.pk}/"' in html


def test_another_customers_device_is_a_404_page_and_panel(client, owned):
    client.force_login(CustomerFactory(username="mallory"))

    assert client.get(f"/devices/{owned.pk}/").status_code == 404
    assert client.get(f"/devices/{owned.pk}/panel/").status_code == 404


def test_the_panel_is_the_live_part_alone(client, customer_user, owned):
    client.force_login(customer_user)

    panel = client.get(f"/devices/{owned.pk}/panel/").content.decode()

    assert "<html" not in panel and 'data-field="activation-state"' in panel


def test_staff_may_open_any_device_page(client, staff_user, owned):
    client.force_login(staff_user)

    assert client.get(f"/devices/{owned.pk}/").status_code == 200


# --- staff live views ----------------------------------------------------------------------------------------------


def test_admin_device_and_request_pages_carry_a_live_panel(client, staff_user, owned):
    client.force_login(staff_user)
    request = ProvisioningRequest.objects.get()

    device_page = client.get(f"/admin/devices/device/{owned.pk}/change/").content.decode()
    request_page = client.get(f"/admin/conax/provisioningrequest/{request.pk}/change/").content.decode()
    panel = client.get(f"/admin/requests/{request.pk}/panel/")

    assert f'data-socket-path="/ws/devices/{owned.pk}/"' in device_page and "portal/live.js" in device_page
    assert 'data-socket-path="/ws/staff/"' in request_page and f'{{"number": {request.pk}}}' in request_page
    assert panel.status_code == 200 and 'data-field="request-state">PENDING<' in panel.content.decode()


def test_the_request_panel_is_for_staff_only(client, customer_user, owned):
    client.force_login(customer_user)
    number = ProvisioningRequest.objects.get().pk

    assert client.get(f"/admin/requests/{number}/panel/").status_code == 302  # to the admin login


def test_activity_lists_the_fleet_with_filters(client, staff_user, owned, django_assert_max_num_queries):
    other = DeviceFactory(model__vendor__name="globex", model__name="gw")
    box = Box.objects.create(device=other, thunder_host="127.0.0.1")
    BoxEvent.objects.create(box=box, status=500, source="push")
    ProvisioningRequest.objects.update(life_cycle_state="COMPLETED", executed_date=timezone.now())
    client.force_login(staff_user)

    with django_assert_max_num_queries(12):
        everything = client.get("/admin/activity/").content.decode()
    globex = client.get("/admin/activity/", {"vendor": "globex", "fragment": "1"}).content.decode()
    failed = client.get("/admin/activity/", {"type": "event", "state": "500", "fragment": "1"}).content.decode()
    requests = client.get("/admin/activity/", {"type": "request", "fragment": "1"}).content.decode()

    assert everything.count("<tr><td><time") == 3 and 'data-socket-path="/ws/staff/"' in everything
    assert globex.count("<tr><td><time") == 1 and "globex gw" in globex
    assert failed.count("<tr><td><time") == 1 and ">500<" in failed
    assert requests.count("<tr><td><time") == 1 and "ADD_SUBSCRIPTIONS #" in requests and ">COMPLETED<" in requests
    assert "<html" not in globex


def test_activity_is_for_staff_only(client, customer_user):
    client.force_login(customer_user)

    assert client.get("/admin/activity/").status_code == 302
