"""The webhooks console pages in Chromium against a real ASGI server: an endpoint made in the admin (its secret a
password field, never shown back) and the delivery log with a dead delivery redelivered from its page. No CSP
violation or console error on the way. Screenshots (desktop and phone) go to ``test-artifacts/``."""

from __future__ import annotations

import pytest
from django.conf import settings

from devices import services as device_services
from portal.celery import app as celery_app
from tests.conftest import kill_worker, start_worker
from tests.e2e.support import Watched, log_in_page, shot
from tests.factories import DeviceFactory, StaffFactory
from tests.webhooks.support import Receiver
from tests.webhooks.support import endpoint as endpoint_made
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


def test_the_delivery_log_follows_a_delivery_sent_by_a_worker(asgi_server, browser, redis_db, tmp_path):
    """The list open, a worker process sends the delivery to a real receiver: its row goes from Pending to Delivered
    (attempts, status code) without a reload, over the staff WebSocket."""
    from playwright.sync_api import expect

    StaffFactory(username="sam")
    receiver = Receiver(mode="slow", delay=0.5).start()
    endpoint_made(receiver.url, "device.disabled")
    device_services.device_disable(device=device_services.device_enable(device=DeviceFactory(serial_number="SN-L")))
    delivery = Delivery.objects.get()
    watched = Watched(browser, DESKTOP)
    page = watched.page
    log_in_page(page, asgi_server, "sam", path="/admin/login/")
    page.goto(f"{asgi_server}/admin/webhooks/delivery/")
    expect(page.locator("#live-list-status")).to_contain_text("Live updates: on")
    row = page.locator("#result_list tbody tr", has_text=delivery.object_key)
    expect(row).to_contain_text("Pending")
    shot(page, "webhooks-deliveries-live-pending")
    page.evaluate("window.__sameDocument = true")

    # The worker publishes through channels-redis from its own process; the browser listens through uvicorn.
    worker = start_worker(
        tmp_path, redis_db, "regular", concurrency=1, REDIS_URL=redis_db, SECRET_KEY=settings.SECRET_KEY
    )
    try:
        with celery_app.connection_for_write(redis_db) as conn:
            # A batch, as emit queues it: its one webhook.deliveries event moves the row.
            celery_app.send_task("webhooks.tasks.deliver_batch", queue="regular", connection=conn)
        expect(row).to_contain_text("Delivered", timeout=20_000)
    finally:
        kill_worker(worker)
        receiver.stop()

    assert page.evaluate("window.__sameDocument") is True  # no reload
    assert "Pending" not in row.inner_text()
    expect(row).to_contain_text("200")  # the slow receiver answers 200
    assert [r.event["id"] for r in receiver.received] == [str(delivery.event_id)]
    assert Delivery.objects.get().state == DeliveryState.DELIVERED
    shot(page, "webhooks-deliveries-live-delivered")
    assert watched.problems() == []
    phone = Watched(browser, PHONE)
    log_in_page(phone.page, asgi_server, "sam", path="/admin/login/")
    phone.page.goto(f"{asgi_server}/admin/webhooks/delivery/")
    expect(phone.page.locator("#live-list-status")).to_contain_text("Live updates: on")
    shot(phone.page, "webhooks-deliveries-live-delivered-phone")
    assert phone.problems() == []
