"""The live admin lists (portal/static/portal/livelist.js) in Chromium against a real ASGI server process with
channels-redis, from their empty state: Django renders no ``#result_list`` table for an empty changelist (a fresh
install, a filter that matches nothing), and the list must still go live and take its first row without a reload.
The events are published by this process through the server's channels-redis. Screenshots (desktop and phone) go to
``test-artifacts/``."""

from __future__ import annotations

import pytest

from devices import services as device_services
from provisioning import services as box_services
from provisioning.simulator import FleetThread
from tests.e2e.support import PHONE, Watched, log_in_page, shot
from tests.factories import DeviceFactory, StaffFactory
from tests.webhooks.support import Receiver
from tests.webhooks.support import endpoint as endpoint_made
from webhooks import services as webhook_services
from webhooks.choices import DeliveryState
from webhooks.models import Delivery

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]
WIDE = {"width": 1366, "height": 900}
# An event's re-read waits up to 2 s (livelist.js reads at most once per 2 s); the list's own poll is every 15 s.
ROW_WITHIN_MS = 6000
LOG = "/admin/webhooks/delivery/"


@pytest.fixture
def live_layer(settings, redis_db):
    """This process publishes through the same channels-redis as the server, so the browser hears the event."""
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [redis_db]}}
    }


@pytest.fixture
def receiver():
    receiver = Receiver(mode="ok").start()
    endpoint_made(receiver.url, "device.disabled")
    yield receiver
    receiver.stop()


def _disable_a_device(serial_number: str = "SN-1ST") -> Delivery:
    """Through the services: disabling a device records its webhook delivery (the row; no live event yet)."""
    device = device_services.device_enable(device=DeviceFactory(serial_number=serial_number))
    device_services.device_disable(device=device)
    return Delivery.objects.get(object_key=f"device:{device.pk}")


def _open(browser, base: str, path: str, viewport: dict) -> Watched:
    StaffFactory(username="sam")
    watched = Watched(browser, viewport)
    log_in_page(watched.page, base, "sam", path="/admin/login/")
    watched.page.goto(base + path)
    return watched


@pytest.mark.parametrize(("size", "viewport"), [("desktop", WIDE), ("phone", PHONE)])
def test_an_empty_list_goes_live_and_shows_its_first_row_without_a_reload(
    asgi_server, browser, live_layer, receiver, size, viewport
):
    from playwright.sync_api import expect

    watched = _open(browser, asgi_server, LOG, viewport)
    page = watched.page
    expect(page.locator("#live-list-status")).to_contain_text("Live updates: on")
    expect(page.locator("#result_list")).to_have_count(0)  # Django's empty changelist: no table
    expect(page.locator("#changelist-form .paginator")).to_have_text("0 deliveries")
    expect(page.locator("#changelist-search .quiet")).to_have_text("0 results (Show all)")
    shot(page, f"livelist-empty-{size}")
    page.evaluate("window.__sameDocument = true")

    delivery = _disable_a_device()
    sent = webhook_services.delivery_send(delivery_id=delivery.pk)  # publishes webhook.delivery to staff

    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1, timeout=ROW_WITHIN_MS)
    shot(page, f"livelist-first-row-{size}")
    assert sent == DeliveryState.DELIVERED
    expect(rows).to_contain_text(delivery.object_key)
    expect(rows).to_contain_text("Delivered")
    expect(rows).to_have_class("live-new")
    expect(rows.locator("input.action-select")).to_be_disabled()  # Django's actions script never saw this row
    expect(page.locator("#action-toggle")).to_be_disabled()
    expect(page.locator(".actions .action-counter")).to_have_text("0 of 1 selected")
    expect(page.locator("#changelist-form .results #result_list")).to_have_count(1)  # where Django puts the table
    expect(page.locator("#changelist-form .paginator")).to_have_text("1 delivery")
    expect(page.locator("#changelist-search .quiet")).to_have_text("1 result (Show all)")
    expect(page.locator("#live-list-status")).to_contain_text("(1 new)")

    second = _disable_a_device("SN-2ND")
    webhook_services.delivery_send(delivery_id=second.pk)  # now the list has its table: the new row goes on top

    expect(rows).to_have_count(2, timeout=ROW_WITHIN_MS)
    expect(rows.first).to_contain_text(second.object_key)
    expect(page.locator("#changelist-form .paginator")).to_have_text("2 deliveries")
    expect(page.locator("#changelist-search .quiet")).to_have_text("2 results (Show all)")
    expect(page.locator(".actions .action-counter")).to_have_text("0 of 2 selected")
    assert page.evaluate("window.__sameDocument") is True  # no reload
    assert watched.problems() == []


def test_a_list_whose_filter_matches_nothing_takes_the_row_that_comes_to_match(
    asgi_server, browser, live_layer, receiver
):
    from playwright.sync_api import expect

    delivery = _disable_a_device()  # pending: not in the list of delivered ones
    watched = _open(browser, asgi_server, f"{LOG}?state=DELIVERED", WIDE)
    page = watched.page
    expect(page.locator("#live-list-status")).to_contain_text("Live updates: on")
    expect(page.locator("#result_list")).to_have_count(0)
    expect(page.locator("#changelist-form .paginator")).to_have_text("0 deliveries")
    page.evaluate("window.__sameDocument = true")

    assert webhook_services.delivery_send(delivery_id=delivery.pk) == DeliveryState.DELIVERED

    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1, timeout=ROW_WITHIN_MS)
    expect(rows).to_contain_text("Delivered")
    expect(page.locator("#changelist-form .paginator")).to_have_text("1 delivery")
    expect(page.locator("#changelist-search .quiet")).to_have_text("1 result (Show all)")
    shot(page, "livelist-filtered-first-row")
    assert page.evaluate("window.__sameDocument") is True
    assert watched.problems() == []


def test_a_list_that_shows_no_actions_bar_while_empty_takes_its_first_row_under_the_status(
    asgi_server, browser, live_layer
):
    """The commands list counts its full result, so Django shows no actions bar while it is empty: the first row's
    table goes right under the live status, where a reload would put it (the bar comes with that reload)."""
    from playwright.sync_api import expect

    with FleetThread(1, api_version=3) as fleet:
        host, port = fleet.boxes[0].address.rsplit(":", 1)
        box = box_services.box_register(device=DeviceFactory(serial_number="SIM-1ST"), host=host, port=int(port))
        watched = _open(browser, asgi_server, "/admin/provisioning/command/", WIDE)
        page = watched.page
        expect(page.locator("#live-list-status")).to_contain_text("Live updates: on")
        expect(page.locator("#changelist-form .paginator")).to_have_text("0 commands")
        expect(page.locator("#changelist-form .actions")).to_have_count(0)
        page.evaluate("window.__sameDocument = true")

        command = box_services.command_create(box=box, kind="refresh")
        assert box_services.command_run(command_id=command.pk) == "SUCCEEDED"  # publishes device.command to staff

    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1, timeout=ROW_WITHIN_MS)
    expect(rows).to_contain_text("Succeeded")
    expect(page.locator("#live-list + .results > #result_list")).to_have_count(1)
    expect(page.locator("#changelist-form .actions")).to_have_count(0)
    expect(page.locator("#changelist-form .paginator")).to_have_text("1 command")
    shot(page, "livelist-commands-first-row")
    assert page.evaluate("window.__sameDocument") is True
    assert watched.problems() == []
