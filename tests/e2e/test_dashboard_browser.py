"""The fleet dashboard in a real browser (Debian's Chromium, Playwright) against uvicorn with channels-redis: a
support-staff user (not a superuser) sees the same counts as the staff API, and a Conax request rejected by the
pipeline (which publishes the live event) changes the counts and the failure list without a reload, the keyboard
focus staying where it was. Screenshots (desktop 1280x800, phone 390x844) go to ``test-artifacts/dashboard-*.png``."""

from __future__ import annotations

import pytest
from django.utils import timezone

from conax import pipeline
from conax.models import ProvisioningRequest
from devices import services as device_services
from provisioning.models import Command, SetTopBox, TypeStatus
from tests.e2e.support import ARTIFACTS, DESKTOP, PHONE, Watched, log_in_page, shot
from tests.factories import DeviceFactory, DeviceModelFactory, StaffFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

# Every data-tally of the panel, as {key: count}, read in the page.
READ_COUNTS = """() => Object.fromEntries([...document.querySelectorAll('#fleet-panel [data-tally]')].map(
  (el) => [el.dataset.tally, parseInt(el.textContent.trim().split(/\\s+/).pop(), 10)]))"""


def api_counts(body: dict) -> dict[str, int]:
    counts = {f"devices.{t['key']}": t["count"] for t in body["devices"]}
    counts |= {f"boxes.{t['key']}": t["count"] for t in body["boxes_heard"]}
    for i, row in enumerate(body["provisioning"]):
        counts |= {f"provisioning.{i}.{t['key']}": t["count"] for t in row["states"]}
    counts |= {f"commands.{t['key']}": t["count"] for t in body["commands"]}
    counts |= {f"requests.{t['key']}": t["count"] for t in body["requests"]}
    return counts


@pytest.fixture
def fleet_rows():
    model = DeviceModelFactory(vendor__name="acme", name="stb-4k")
    for n in range(3):
        device_services.device_enable(device=DeviceFactory(model=model, serial_number=f"ACME-{n:04d}"))
    activated = DeviceFactory(model=model, serial_number="ACME-0100", state="activated", activated_at=timezone.now())
    DeviceFactory(model=model, serial_number="ACME-0200", state="disabled", disabled_at=timezone.now())
    box = SetTopBox.objects.create(device=activated, thunder_host="10.0.0.7", last_event_at=timezone.now())
    TypeStatus.objects.create(box=box, provision_type="HARDWARE", state="PROVISIONED", refreshed_at=timezone.now())
    Command.objects.create(box=box, kind="refresh", state="SUCCEEDED", finished_at=timezone.now())
    Command.objects.create(
        box=box, kind="refresh", state="FAILED", finished_at=timezone.now(), last_error="connection refused"
    )
    # A PIN change whose stored PIN cannot be decrypted: the pipeline rejects it without calling the head-end.
    return ProvisioningRequest.objects.create(
        type="UPDATE_CA_PIN_TO_GIVEN_VALUE",
        scheduled_date=timezone.now(),
        ca_pin_encrypted="not-a-fernet-token",
        parameters_set=[{"smartcard_ca_id": "CA-DASH-1", "id": "C" * 32}],
    )


@pytest.fixture
def live_layer(settings, redis_db):
    """This process publishes through the same channels-redis as the server, so the browser hears the event."""
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [redis_db]}}
    }


def test_the_dashboard_matches_the_api_and_updates_live(asgi_server, browser, fleet_rows, live_layer):
    from playwright.sync_api import expect

    StaffFactory(username="support-1")
    watched = Watched(browser, DESKTOP)
    page = watched.page
    log_in_page(page, asgi_server, "support-1", path="/admin/login/")
    page.goto(asgi_server + "/admin/")
    expect(page.locator("#fleet-updated")).to_contain_text("Live updates: on")

    shown = page.evaluate(READ_COUNTS)
    from_api = api_counts(page.request.get(asgi_server + "/api/v1/fleet/summary/").json())
    assert shown == from_api
    assert (shown["requests.PENDING"], shown["requests.REJECTED"], shown["commands.FAILED"]) == (1, 0, 1)
    assert page.locator("[data-failure]").count() == 1
    shot(page, "dashboard-desktop")

    page.evaluate("window.__sameDocument = true")
    total = page.locator('[data-tally="devices.total"] a')
    total.focus()
    assert pipeline.request_process(number=fleet_rows.pk) == "REJECTED"

    expect(page.locator('[data-tally="requests.REJECTED"] .tally-count')).to_have_text("1", timeout=10_000)
    expect(page.locator('[data-tally="requests.PENDING"] .tally-count')).to_have_text("0")
    expect(page.locator('[data-failure="request"]')).to_have_count(1)
    expect(page.locator('[data-failure="request"]')).to_contain_text("CA_PIN_UNREADABLE")
    assert page.evaluate("window.__sameDocument") is True  # updated in place, no reload
    assert page.evaluate("document.activeElement.closest('[data-tally]').dataset.tally") == "devices.total"
    assert page.evaluate(READ_COUNTS) == api_counts(page.request.get(asgi_server + "/api/v1/fleet/summary/").json())
    shot(page, "dashboard-desktop-after-rejection")

    page.goto(asgi_server + "/admin/?range=7d")
    expect(page.locator(".fleet-ranges a.current")).to_have_text("last 7 days, per day")
    shot(page, "dashboard-desktop-7d")
    assert watched.take() == []


def test_the_dashboard_on_a_phone(asgi_server, browser, fleet_rows):
    from playwright.sync_api import expect

    StaffFactory(username="support-2")
    watched = Watched(browser, PHONE)
    log_in_page(watched.page, asgi_server, "support-2", path="/admin/login/")
    watched.page.goto(asgi_server + "/admin/")
    expect(watched.page.locator("#fleet-updated")).to_contain_text("Live updates: on")

    width = watched.page.evaluate("document.documentElement.scrollWidth")
    shot(watched.page, "dashboard-phone")
    for name in ("health", "failures"):  # one screen each, at the phone's own scale, to read
        watched.page.locator(f"#fleet-{name}").evaluate("(heading) => heading.scrollIntoView()")
        watched.page.screenshot(path=str(ARTIFACTS / f"dashboard-phone-{name}.png"))
    assert width <= PHONE["width"]  # nothing wider than the screen: tables scroll inside their cards
    assert watched.take() == []
