"""The webhooks console pages in Chromium against a real ASGI server: an endpoint made in the admin (its secret a
password field, never shown back) and the delivery log with a dead delivery redelivered from its page. No CSP
violation or console error on the way. Screenshots (desktop and phone) go to ``test-artifacts/``."""

from __future__ import annotations

import pytest

from devices import services as device_services
from tests.e2e.support import Watched, log_in_page, shot
from tests.factories import DeviceFactory, StaffFactory
from webhooks.choices import DeliveryState
from webhooks.models import Delivery, Endpoint

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
SECRET = "typed-in-the-admin-0123456789"


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_an_endpoint_is_made_and_a_dead_delivery_redelivered(asgi_server, browser, viewport):
    from playwright.sync_api import expect

    StaffFactory(username="sam")
    suffix = "-phone" if viewport is PHONE else ""
    watched = Watched(browser, viewport)
    page = watched.page
    log_in_page(page, asgi_server, "sam", path="/admin/login/")

    page.goto(f"{asgi_server}/admin/webhooks/endpoint/add/")
    page.get_by_label("Name").fill("CRM")
    page.get_by_label("URL").fill("http://127.0.0.1:9/hook")
    page.get_by_label("Secret").fill(SECRET)
    page.get_by_label("Device disabled").check()
    shot(page, f"webhooks-endpoint-add{suffix}")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    endpoint = Endpoint.objects.get()
    assert endpoint.event_types == ["device.disabled"]
    page.goto(f"{asgi_server}/admin/webhooks/endpoint/{endpoint.pk}/change/")
    assert SECRET not in page.content()

    device_services.device_disable(device=device_services.device_enable(device=DeviceFactory(serial_number="SN-W")))
    Delivery.objects.update(state=DeliveryState.DEAD, attempts=10, last_status_code=500, last_error="HTTP 500")
    delivery = Delivery.objects.get()
    page.goto(f"{asgi_server}/admin/webhooks/delivery/?state=DEAD")
    expect(page.locator("#result_list")).to_contain_text("device:")
    shot(page, f"webhooks-deliveries{suffix}")
    page.goto(f"{asgi_server}/admin/webhooks/delivery/{delivery.pk}/change/")
    shot(page, f"webhooks-delivery{suffix}")
    page.get_by_role("button", name="Redeliver").click()
    expect(page.locator(".messagelist")).to_contain_text(
        f"Queued for delivery again Delivery {delivery.pk} (device disabled)."
    )

    assert Delivery.objects.get().state == DeliveryState.PENDING
    assert watched.problems() == []
