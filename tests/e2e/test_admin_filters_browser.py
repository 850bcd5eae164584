"""An admin list asked for an invalid filter, in a real browser: the error reads at the top in words, nothing is
listed, and the page breaks no policy. Screenshots: ``test-artifacts/admin-filter-refused-{desktop,phone}.png``."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from tests.e2e.support import DESKTOP, PHONE, Watched, log_in_page, shot
from tests.factories import PASSWORD, DeviceFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


@pytest.mark.parametrize(("size", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_a_refused_filter_says_so_and_lists_nothing(asgi_server, browser, size, viewport):
    get_user_model().objects.create_superuser("root-admin", password=PASSWORD)
    DeviceFactory(serial_number="STB-FILTER-1")
    watched = Watched(browser, viewport)
    log_in_page(watched.page, asgi_server, "root-admin", path="/admin/login/")

    response = watched.page.goto(f"{asgi_server}/admin/devices/device/?model_id=abc&state=bogus")
    watched.page.wait_for_load_state("networkidle")
    shot(watched.page, f"admin-filter-refused-{size}")

    assert response.status == 400
    messages = watched.page.locator("ul.messagelist li.error")
    expect(messages).to_have_count(2)
    expect(messages.first).to_contain_text("Filter not applied, nothing is listed.")
    expect(watched.page.locator("#result_list")).to_have_count(0)  # Django's "0 devices" page, no table
    expect(watched.page.get_by_text("STB-FILTER-1")).to_have_count(0)
    # The 400 of the document itself is the answer asked for; nothing else may complain.
    assert [p for p in watched.take() if "status of 400" not in p] == []
