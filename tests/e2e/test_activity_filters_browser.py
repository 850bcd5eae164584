"""The staff activity page's filters in a real browser (Debian's Chromium, Playwright, uvicorn on PostgreSQL): a valid
filter lists what it narrows to, an invalid one answers 400 with the error shown above the form, inside the screen at
desktop (1280x800) and phone (390x844) size, under the Content-Security-Policy. Screenshots go to
``test-artifacts/activity-*.png``."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from provisioning.models import BoxEvent, Command
from provisioning.models import SetTopBox as Box
from tests.e2e.support import DESKTOP, PHONE, Watched, log_in_page, shot
from tests.factories import PASSWORD, DeviceFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}
INVALID = {
    "invalid-type": ("?vendor=acme&type=events", "Type: “events” is not a type of activity"),
    "invalid-state": ("?state=DONE", "State: “DONE” is not a state of any activity: use a status code"),
}


@pytest.fixture
def activity_data():
    for vendor, status in (("acme", 200), ("globex", 500)):
        box = Box.objects.create(device=DeviceFactory(model__vendor__name=vendor), thunder_host="127.0.0.1")
        BoxEvent.objects.create(box=box, status=status, source="push")
        Command.objects.create(box=box, kind="refresh", state="SUCCEEDED", finished_at=timezone.now())
    get_user_model().objects.create_superuser("root-admin", password=PASSWORD)


def _problems(watched: Watched) -> list[str]:
    """What the browser objected to, less the 400 an invalid filter is answered with on purpose."""
    return [line for line in watched.take() if "the server responded with a status of 400" not in line]


@pytest.mark.parametrize("size", VIEWPORTS)
def test_a_valid_filter_lists_what_it_narrows_to(asgi_server, browser, activity_data, size):
    from playwright.sync_api import expect

    watched = Watched(browser, VIEWPORTS[size])
    log_in_page(watched.page, asgi_server, "root-admin", path="/admin/login/")

    response = watched.page.goto(asgi_server + "/admin/activity/?vendor=acme&type=event")
    watched.page.wait_for_load_state("networkidle")
    shot(watched.page, f"activity-valid-{size}")

    assert response.status == 200
    expect(watched.page.locator("#activity tbody tr")).to_have_count(1)
    expect(watched.page.locator("#activity tbody")).to_contain_text("acme")
    expect(watched.page.locator("#filter-errors")).to_have_count(0)
    assert _problems(watched) == []


@pytest.mark.parametrize("size", VIEWPORTS)
@pytest.mark.parametrize("case", INVALID)
def test_an_invalid_filter_is_shown_as_an_error_that_fits_the_screen(asgi_server, browser, activity_data, size, case):
    from playwright.sync_api import expect

    query, message = INVALID[case]
    watched = Watched(browser, VIEWPORTS[size])
    log_in_page(watched.page, asgi_server, "root-admin", path="/admin/login/")

    response = watched.page.goto(asgi_server + "/admin/activity/" + query)
    watched.page.wait_for_load_state("networkidle")
    shot(watched.page, f"activity-{case}-{size}")

    errors = watched.page.locator("#filter-errors")
    box = errors.bounding_box()
    assert response.status == 400
    expect(errors).to_be_visible()
    expect(errors).to_contain_text(message)
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORTS[size]["width"]
    expect(watched.page.locator("[aria-invalid=true]")).to_have_count(1)
    expect(watched.page.locator("#activity")).to_have_count(0)
    assert _problems(watched) == []
