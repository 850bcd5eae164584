"""Webhooks on the staff REST API and in the admin: the secret is write-only, the delivery log filters, redeliver."""

from __future__ import annotations

import pytest

from tests.factories import DeviceFactory
from tests.webhooks.support import SECRET, endpoint
from webhooks import services
from webhooks.choices import DeliveryState
from webhooks.crypto import secret_decrypt
from webhooks.models import Delivery, Endpoint

pytestmark = pytest.mark.django_db
API = "/api/v1/webhooks/"


def delivered(n: int = 1) -> list[Delivery]:
    from devices import services as device_services

    for _ in range(n):
        device_services.device_disable(device=device_services.device_enable(device=DeviceFactory()))
    Delivery.objects.update(state=DeliveryState.DELIVERED, attempts=1)
    return list(Delivery.objects.order_by("pk"))


def test_endpoint_create_never_returns_the_secret(staff_api):
    body = {"name": "crm", "url": "https://crm.example/hook", "event_types": ["device.disabled"], "secret": SECRET}

    response = staff_api.post(f"{API}endpoints/", body, format="json")

    assert response.status_code == 201
    assert SECRET not in response.content.decode() and "secret" not in response.json()
    assert secret_decrypt(Endpoint.objects.get().secret_encrypted) == SECRET
    assert SECRET not in Endpoint.objects.get().secret_encrypted


def test_a_taken_name_is_409(staff_api):
    endpoint("https://crm.example/hook")
    body = {"name": "crm-https://crm.example/hook", "url": "https://b.example/", "event_types": ["device.disabled"]}

    response = staff_api.post(f"{API}endpoints/", {**body, "secret": SECRET}, format="json")

    assert (response.status_code, response.json()["code"]) == (409, "ENDPOINT_EXISTS")
    assert Endpoint.objects.count() == 1


def test_update_without_a_secret_keeps_it(staff_api):
    ep = endpoint("https://crm.example/hook")
    body = {"name": "renamed", "url": "https://crm.example/v2", "event_types": ["command.finished"]}

    assert staff_api.put(f"{API}endpoints/{ep.pk}/", body, format="json").status_code == 200
    assert secret_decrypt(Endpoint.objects.get().secret_encrypted) == SECRET


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "url": "https://a.example/", "event_types": ["device.disabled"]},  # no secret
        {"name": "x", "url": "ftp://a.example/", "event_types": ["device.disabled"], "secret": SECRET},
        {"name": "x", "url": "https://a.example/", "event_types": ["nope"], "secret": SECRET},
        {"name": "x", "url": "https://a.example/", "event_types": [], "secret": SECRET},
        {"name": "x", "url": "https://a.example/", "event_types": ["device.disabled"], "secret": "short"},
    ],
    ids=["no-secret", "scheme", "type", "no-types", "short-secret"],
)
def test_bad_endpoints_are_400_and_write_nothing(staff_api, body):
    assert staff_api.post(f"{API}endpoints/", body, format="json").status_code == 400
    assert not Endpoint.objects.exists()


def test_delivery_log_filters_and_query_count(staff_api, django_assert_max_num_queries):
    endpoint("https://crm.example/hook")
    delivered(4)
    Delivery.objects.filter(pk=Delivery.objects.order_by("pk").first().pk).update(state=DeliveryState.DEAD)

    with django_assert_max_num_queries(3) as small:  # token (its user, support group), count, page
        staff_api.get(f"{API}deliveries/?limit=1")
    with django_assert_max_num_queries(len(small.captured_queries)):
        rows = staff_api.get(f"{API}deliveries/?limit=10").json()["results"]
    dead = staff_api.get(f"{API}deliveries/?state=DEAD").json()["results"]

    assert len(rows) == 4 and [r["state"] for r in dead] == ["DEAD"]
    assert staff_api.get(f"{API}deliveries/?state=BOGUS").status_code == 400


def test_redeliver_over_the_api_and_409_while_pending(staff_api):
    endpoint("https://crm.example/hook")
    [delivery] = delivered()

    again = staff_api.post(f"{API}deliveries/{delivery.pk}/redeliver/")
    twice = staff_api.post(f"{API}deliveries/{delivery.pk}/redeliver/")

    assert (again.status_code, again.json()["state"], again.json()["attempts"]) == (200, "PENDING", 0)
    assert (twice.status_code, twice.json()["code"]) == (409, "NOT_REDELIVERABLE")


def test_admin_endpoint_form_keeps_the_secret_out_of_the_page(client, staff_user):
    client.force_login(staff_user)
    ep = endpoint("https://crm.example/hook")

    html = client.get(f"/admin/webhooks/endpoint/{ep.pk}/change/").content.decode()

    assert SECRET not in html and ep.secret_encrypted not in html


def test_admin_redeliver_button_and_log(client, staff_user):
    client.force_login(staff_user)
    endpoint("https://crm.example/hook")
    [delivery] = delivered()

    page = client.get(f"/admin/webhooks/delivery/{delivery.pk}/change/").content.decode()
    response = client.post(f"/admin/webhooks/delivery/{delivery.pk}/act/redeliver/")
    listing = client.get("/admin/webhooks/delivery/", {"state": "PENDING"})

    assert "Redeliver" in page
    assert response.status_code == 302
    assert Delivery.objects.get().state == DeliveryState.PENDING
    assert listing.status_code == 200 and f">{delivery.pk}<" in listing.content.decode()


def test_backoff_doubles_up_to_the_cap(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS, settings.WEBHOOK_RETRY_MAX_SECONDS = 10, 60

    assert [services.backoff(n).total_seconds() for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 60, 60]
