"""The Exosite vendor-token and content pages of the admin in Chromium, as support staff use them: a token is
created and shown once, then only revocable; a content entry names the devices allowed to download it. No CSP
violation or script error; screenshots at desktop and phone size (``test-artifacts/exosite-*.png``)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from devices import contents, vendor_tokens
from devices.models import VendorToken
from tests.e2e.support import DESKTOP, PHONE, Watched, log_in_page, shot
from tests.factories import DeviceFactory, DeviceModelFactory, StaffFactory, VendorFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_support_creates_a_vendor_token_sees_it_once_and_revokes_it(asgi_server, browser, size):
    StaffFactory(username="support-1")
    vendor = VendorFactory(name="weaver")
    model = DeviceModelFactory(vendor=vendor, name="MyTestModel")
    content = contents.content_create(model=model, name="fw.bin", meta="firmware 1.2", protected=True)
    DeviceFactory(model=model, serial_number="SN-ALLOWED")
    watched = Watched(browser, DESKTOP if size == "desktop" else PHONE)
    page = watched.page
    log_in_page(page, asgi_server, "support-1", path="/admin/login/")

    page.goto(asgi_server + reverse("admin:devices_vendortoken_add"))
    page.select_option("#id_vendor", label="weaver")
    page.fill("#id_name", "factory line 3")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_load_state("networkidle")
    shot(page, f"exosite-token-issued-{size}")
    raw = page.locator("[data-token]").inner_text()
    assert re.fullmatch(r"[0-9a-f]{40}", raw)
    assert "shown this once" in page.content()

    page.get_by_role("link", name="I have copied it").click()
    page.wait_for_load_state("networkidle")
    shot(page, f"exosite-token-page-{size}")
    assert raw not in page.content()
    page.get_by_role("link", name="Revoke").click()
    page.wait_for_load_state("networkidle")
    page.get_by_role("button", name="Revoke").click()
    page.wait_for_load_state("networkidle")
    assert VendorToken.objects.get().revoked_at is not None

    page.goto(asgi_server + reverse("admin:devices_vendortoken_changelist"))
    page.wait_for_load_state("networkidle")
    shot(page, f"exosite-tokens-{size}")
    assert "Revoked" in page.content()

    page.goto(asgi_server + reverse("admin:devices_content_change", args=[content.pk]))
    page.wait_for_load_state("networkidle")
    shot(page, f"exosite-content-{size}")
    assert "firmware 1.2" in page.content()
    assert watched.take() == []
    assert vendor_tokens.vendor_token_digest(raw) == VendorToken.objects.get().digest
