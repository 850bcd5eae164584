"""The operator console in a real browser (Chromium + Playwright) against a real ASGI server process: a device's
Disable button with its confirmation, and a bulk reprovision of 50 simulated boxes as a background job whose
progress page follows a real Celery worker to the end. Screenshots (desktop and phone) go to ``test-artifacts/``."""

from __future__ import annotations

import pytest

from devices import services as device_services
from devices.models import Device
from portal.kernel.models import BulkJob
from provisioning import services as box_services
from provisioning.models import Command
from provisioning.simulator import Faults, FleetThread
from tests.conftest import kill_worker, start_worker
from tests.e2e.support import log_in, shot
from tests.factories import DeviceFactory, DeviceModelFactory, StaffFactory
from tests.waiting import wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_disable_from_the_device_page_asks_first_and_says_what_happened(asgi_server, browser, viewport):
    from playwright.sync_api import expect

    StaffFactory(username="sam")
    device = device_services.device_enable(device=DeviceFactory(serial_number="STB-DISABLE-1"))
    suffix = "-phone" if viewport is PHONE else ""

    page = log_in(browser, asgi_server, "sam", path="/admin/login/", viewport=viewport)
    page.goto(f"{asgi_server}/admin/devices/device/{device.pk}/change/")
    expect(page.locator('[data-field="device-state"]')).to_contain_text("Pending activation")
    expect(page.locator("#live-updated")).to_contain_text("Live updates: on")
    expect(page.get_by_role("button", name="Enable")).to_have_count(0)  # only what applies to a pending device
    shot(page, f"console-device{suffix}")

    page.get_by_role("link", name="Disable…").click()
    expect(page.locator(".console-confirm-text")).to_contain_text("revokes the device's key (CIK) at once")
    shot(page, f"console-device-disable-confirm{suffix}")
    assert Device.objects.get(pk=device.pk).state == "notactivated"  # asking changed nothing

    page.get_by_role("button", name="Disable").click()
    expect(page.locator(".messagelist")).to_contain_text("Disabled STB-DISABLE-1. Its key no longer works.")
    expect(page.locator('[data-field="device-state"]')).to_contain_text("Disabled")
    expect(page.get_by_role("link", name="Re-enable…")).to_be_visible()
    expect(page.get_by_role("link", name="Disable…")).to_have_count(0)
    shot(page, f"console-device-disabled{suffix}")
    assert Device.objects.get(pk=device.pk).state == "disabled"


def test_a_bulk_reprovision_of_50_boxes_shows_its_progress_to_the_end(asgi_server, browser, redis_db, tmp_path):
    from playwright.sync_api import expect

    StaffFactory(username="sam")
    model = DeviceModelFactory(vendor__name="simulator", name="stb-sim")
    with FleetThread(50, api_version=3, faults=Faults(provision_seconds=0.2)) as fleet:
        for n, sim in enumerate(fleet.boxes):
            host, port = sim.address.rsplit(":", 1)
            device = DeviceFactory(model=model, serial_number=f"SIM{n:06d}")
            box_services.box_register(device=device, host=host, port=int(port))
        page = log_in(browser, asgi_server, "sam", path="/admin/login/", viewport=DESKTOP)
        page.goto(f"{asgi_server}/admin/provisioning/settopbox/")
        page.locator("#action-toggle").check()
        page.select_option("select[name=action]", "reprovision_hardware")
        page.get_by_role("button", name="Go").click()

        # No worker yet: the job waits, and the page is watched from its first state on.
        expect(page.locator(".job-counts")).to_contain_text("0 / 50 done")
        expect(page.locator(".job-counts")).to_contain_text("waiting for a worker")
        expect(page.locator("#live-updated")).to_contain_text("Live updates: on", timeout=15_000)
        page.evaluate(
            """() => { window.__sameDocument = true; window.__seen = new Set();
              new MutationObserver(() => window.__seen.add(document.querySelector('.job-counts').textContent))
                .observe(document.getElementById('live-panel'),
                         {childList: true, subtree: true, characterData: true, attributes: true}); }"""
        )
        shot(page, "console-bulk-waiting")
        # The server queued on the embedded broker in its var dir (the same tmp_path); the worker takes the job and
        # the commands from there and publishes progress through channels-redis. Ten boxes per chunk: five steps.
        worker = start_worker(
            tmp_path,
            "portalfs://localhost//",
            "regular,devices",
            concurrency=4,
            REDIS_URL=redis_db,
            BULK_JOB_CHUNK="10",
        )
        try:
            shot(page, "console-bulk-progress")
            expect(page.locator(".job-counts")).to_contain_text("50 / 50 done", timeout=60_000)
            expect(page.locator(".job-state .badge")).to_have_text("Finished")
            shot(page, "console-bulk-finished")
            wait_for(lambda: Command.objects.filter(state="SUCCEEDED").count() == 50, timeout=90)
        finally:
            kill_worker(worker)

    job = BulkJob.objects.get()
    assert (job.operation, job.total, job.done, job.failed, job.state) == ("boxes.reprovision", 50, 50, 0, "finished")
    assert job.title == "Queue a reprovision for 50 set-top boxes"
    assert page.evaluate("window.__sameDocument") is True  # followed live, no reload
    seen = page.evaluate("Array.from(window.__seen)")
    assert any("50 / 50 done" in text for text in seen)
    assert list(Command.objects.order_by().values_list("params", flat=True).distinct()) == [
        {"provision_type": "HARDWARE"}
    ]

    page.goto(f"{asgi_server}/admin/provisioning/command/")
    expect(page.locator("#result_list .badge-ok").first).to_have_text("Succeeded")
    shot(page, "console-commands-list")


@pytest.fixture
def live_layer(settings, redis_db):
    """This process publishes through the same channels-redis as the server, so the browser hears the event."""
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [redis_db]}}
    }


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_device_page_staff_panel_updates_live(asgi_server, browser, live_layer, viewport):
    from playwright.sync_api import expect

    from provisioning.choices import EventSource

    StaffFactory(username="sam")
    device = device_services.device_enable(device=DeviceFactory(serial_number="STB-STAFF-LIVE"))
    box = box_services.box_register(device=device, host="10.1.2.3", port=9998)
    suffix = "-phone" if viewport is PHONE else ""

    page = log_in(browser, asgi_server, "sam", path="/admin/login/", viewport=viewport)
    page.goto(f"{asgi_server}/admin/devices/device/{device.pk}/change/")
    expect(page.locator("#live-updated")).to_contain_text("Live updates: on")
    expect(page.locator('[data-field="thunder-address"]')).to_have_text("10.1.2.3:9998")
    expect(page.locator('[data-field="staff-last-status"]')).to_have_text("none yet")
    expect(page.locator('[data-field="staff-last-command"]')).to_have_text("none yet")
    expect(page.locator('[data-type="HARDWARE"] [data-field="staff-type-state"]')).to_have_text("Not checked yet")
    shot(page, f"console-device-staff-panel{suffix}")
    page.evaluate("window.__sameDocument = true")

    box_services.event_ingest(box=box, name="provisioningchange", params={"status": 599}, source=EventSource.PUSH)

    expect(page.locator('[data-field="staff-last-status"]')).to_have_text("599 provisioningchange", timeout=5000)
    expect(page.locator('[data-field="staff-last-event"]')).to_contain_text(
        "Box reported provisioning failed (status 599), pushed by the box"
    )
    command = page.locator('[data-field="staff-last-command"]')
    expect(command).to_contain_text("Status refresh requested by the portal: Queued")
    expect(command.locator(".badge")).to_have_text("Queued")
    assert page.evaluate("window.__sameDocument") is True  # patched in place, no reload
    assert page.locator("text=Keys on your box").count() == 0  # the staff's panel, not the customer's
    shot(page, f"console-device-staff-panel-live{suffix}")
