"""End to end in a real browser (Debian's Chromium driven by Playwright): the live pages against a real ASGI server
process (uvicorn) on PostgreSQL with channels-redis, fed by a simulated set-top box over real sockets and by a Celery
worker in another process. Screenshots of each page go to ``test-artifacts/`` (``TEST_ARTIFACTS`` to move it)."""

from __future__ import annotations

import time

import pytest

from conax.models import ProvisioningRequest, Service, Smartcard, Subscription
from conax.simulator import CasServerThread
from devices import services as device_services
from devices.models import Device
from portal.celery import app as celery_app
from provisioning import services as box_services
from provisioning import thunder
from provisioning.simulator import Faults, FleetThread
from tests.conftest import free_port, kill_worker, start_worker
from tests.e2e.support import log_in, shot, start_uvicorn, stop
from tests.factories import CustomerFactory, DeviceFactory, DeviceModelFactory, StaffFactory
from tests.waiting import wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]
LIVE_WITHIN_MS = 2000


def test_a_customer_sees_a_provisioningchange_within_two_seconds(asgi_server, browser):
    from playwright.sync_api import expect

    customer = CustomerFactory(username="erin")
    model = DeviceModelFactory(vendor__name="simulator", name="stb-sim")
    device = device_services.device_enable(device=DeviceFactory(model=model, serial_number="SIM000000", owner=customer))
    with FleetThread(1, api_version=3, portal_url=asgi_server, faults=Faults(provision_seconds=0.3)) as fleet:
        sim = fleet.boxes[0]
        wait_for(lambda: Device.objects.get(pk=device.pk).state == "activated", timeout=30)  # the box activated itself
        host, port = sim.address.rsplit(":", 1)
        box_services.box_register(device=device, host=host, port=int(port))

        page = log_in(browser, asgi_server, "erin")
        shot(page, "customer-my-devices")
        expect(page.get_by_role("link", name="SIM000000")).to_be_visible()
        page.get_by_role("link", name="SIM000000").click()
        expect(page.locator("#live-updated")).to_contain_text("Live updates: on")
        heard = page.locator('[data-field="last-heard"]')
        expect(heard).to_have_text("No news from your box yet.")
        page.evaluate("window.__sameDocument = true")

        with thunder.ThunderClient(sim.address, timeout=5) as client:
            client.reprovision(thunder.ProvisionType.HARDWARE)  # the run ends in 0.3 s with provisioningchange 200
        started = time.monotonic()
        expect(heard).to_contain_text("Its last key update went through.", timeout=300 + LIVE_WITHIN_MS)
        elapsed_ms = (time.monotonic() - started) * 1000

    shot(page, "customer-device-live")
    assert elapsed_ms < 300 + LIVE_WITHIN_MS
    assert heard.inner_text().startswith("Last heard from your box just now")
    assert page.evaluate("window.__sameDocument") is True  # no reload: the panel was updated in place
    assert page.locator("#live-banner").is_hidden()


def test_another_customer_cannot_open_the_device_page_or_its_socket(asgi_server, browser):
    owner, _ = CustomerFactory(username="erin"), CustomerFactory(username="mallory")
    device = DeviceFactory(owner=owner, serial_number="SIM000001")

    page = log_in(browser, asgi_server, "mallory")
    response = page.goto(f"{asgi_server}/devices/{device.pk}/")
    shot(page, "other-customer-404")
    opened = page.evaluate(
        """(path) => new Promise((resolve) => {
             const ws = new WebSocket("ws://" + location.host + path);
             ws.onopen = () => resolve("open"); ws.onclose = () => resolve("closed");
           })""",
        f"/ws/devices/{device.pk}/",
    )

    assert response.status == 404
    assert opened == "closed"
    assert "SIM000001" not in page.goto(f"{asgi_server}/").text()


def test_staff_watch_a_conax_request_complete_live_from_a_worker_process(asgi_server, browser, redis_db, tmp_path):
    from playwright.sync_api import expect

    StaffFactory(username="sam")
    subscription = Subscription.objects.create(number="SUB-LIVE")
    service = Service.objects.create(code="LIVE", service_ca_id="LIVE-CA")
    subscription.services.add(service)
    card = Smartcard.objects.create(serial_number="SC-LIVE", ca_id="CA-LIVE", subscription=subscription)
    request = ProvisioningRequest.objects.create(
        type="ADD_SUBSCRIPTIONS",
        scheduled_date=card.subscription.created_at,
        subscription=subscription,
        smartcard=card,
        service=service,
        sequence_number=1,
        parameters_set=[{"service_ca_id": "LIVE-CA", "id": "A" * 32}, {"smartcard_ca_id": "CA-LIVE", "id": "B" * 32}],
    )

    with CasServerThread(auto_register=True, latency_ms=300) as head_end:
        # The worker publishes through channels-redis from its own process; the browser listens through uvicorn.
        worker = start_worker(
            tmp_path, redis_db, "express,regular", concurrency=1, REDIS_URL=redis_db, CAS_GATEWAY_URL=head_end.url
        )
        try:
            page = log_in(browser, asgi_server, "sam", path="/admin/login/")
            page.goto(f"{asgi_server}/admin/conax/provisioningrequest/{request.pk}/change/")
            expect(page.locator("#live-updated")).to_contain_text("Live updates: on")
            expect(page.locator('#live-panel [data-field="request-state"]')).to_have_text("PENDING")
            expect(page.locator('[data-field="request-state-words"]')).to_have_text("Waiting to be sent")
            expect(page.locator('[data-field="request-attempts"]')).to_have_text("0")
            expect(page.get_by_role("button", name="Process now")).to_be_visible()
            shot(page, "staff-request-pending")
            page.evaluate("window.__sameDocument = true")

            with celery_app.connection_for_write(redis_db) as conn:
                celery_app.send_task("conax.tasks.process_request", args=[request.pk], queue="express", connection=conn)
            expect(page.locator('#live-panel [data-field="request-state"]')).to_have_text("COMPLETED", timeout=20_000)
        finally:
            kill_worker(worker)

    # Every field of the page moved with the state: nothing still says pending, the buttons are those that apply.
    expect(page.locator('[data-field="request-state-words"]')).to_have_text("Completed by the head-end")
    expect(page.locator('[data-field="request-attempts"]')).to_have_text("1")
    expect(page.locator('[data-field="request-executed"]')).to_contain_text("Completed")
    expect(page.locator('[data-field="request-sent"]')).to_contain_text("attempt 1")
    expect(page.get_by_role("button", name="Process now")).to_have_count(0)
    content = page.locator("#content").inner_text()
    assert "PENDING" not in content and "Waiting" not in content
    assert "PENDING" not in page.locator(".breadcrumbs").inner_text()
    assert page.locator('input[name="_save"]').count() == 0  # a read-only record has no Save button
    shot(page, "staff-request-completed")
    assert page.evaluate("window.__sameDocument") is True
    request.refresh_from_db()
    assert request.life_cycle_state == "COMPLETED"


def test_the_page_says_when_live_updates_are_lost_and_back(tmp_path, redis_db, browser):
    from playwright.sync_api import expect

    customer = CustomerFactory(username="erin")
    device = DeviceFactory(owner=customer, serial_number="SIM000002")
    port = free_port()
    server = start_uvicorn(port, tmp_path, redis_db)
    try:
        page = log_in(browser, f"http://127.0.0.1:{port}", "erin")
        page.goto(f"http://127.0.0.1:{port}/devices/{device.pk}/")
        expect(page.locator("#live-updated")).to_contain_text("Live updates: on")
        expect(page.locator("#live-banner")).to_be_hidden()

        stop(server)  # the live connection drops
        expect(page.locator("#live-banner")).to_have_text("Live updates lost — reconnecting…")
        expect(page.locator("#live-banner")).to_have_attribute("role", "status")
        shot(page, "customer-live-lost")
        server = start_uvicorn(port, tmp_path, redis_db)
        expect(page.locator("#live-banner")).to_have_text("Live updates are back.", timeout=20_000)
        shot(page, "customer-live-back")
        expect(page.locator("#live-updated")).to_contain_text("Live updates: on")
    finally:
        stop(server)
