"""Vendor tokens of the Exosite fleet management API: created by staff (admin, staff API), shown once, stored as a
digest, scoped to one vendor, revocable, audited."""

from __future__ import annotations

import re

import pytest
from auditlog.models import LogEntry
from django.test import Client
from django.urls import reverse

from devices import vendor_tokens
from devices.models import VendorToken
from tests.factories import DeviceModelFactory, VendorFactory

pytestmark = pytest.mark.django_db
TOKENS = "/api/v1/vendor-tokens/"


def test_staff_api_creates_a_token_shown_once_and_stored_as_a_digest(staff_api):
    vendor = VendorFactory(name="weaver")
    DeviceModelFactory(vendor=vendor, name="M")

    created = staff_api.post(TOKENS, {"vendor_id": vendor.pk, "name": "factory"}, format="json")

    assert created.status_code == 201
    raw = created.json()["token"]
    assert re.fullmatch(r"[0-9a-f]{40}", raw)
    token = VendorToken.objects.get()
    assert token.digest == vendor_tokens.vendor_token_digest(raw) and raw not in token.digest
    listed = staff_api.get(TOKENS).json()["results"]
    assert [t["name"] for t in listed] == ["factory"] and "token" not in listed[0] and "digest" not in listed[0]
    assert staff_api.get(f"{TOKENS}{token.pk}/").json().get("token") is None
    assert Client().get("/provision/manage/model/", HTTP_X_EXOSITE_TOKEN=raw).content == b"M"
    assert LogEntry.objects.get_for_object(token).get().action == LogEntry.Action.CREATE


def test_staff_api_revokes_and_a_second_revoke_is_409(staff_api):
    issued = vendor_tokens.vendor_token_create(vendor=VendorFactory(), name="t")

    first = staff_api.post(f"{TOKENS}{issued.token.pk}/revoke/")
    second = staff_api.post(f"{TOKENS}{issued.token.pk}/revoke/")

    assert first.status_code == 200 and first.json()["revoked_at"] is not None
    assert second.status_code == 409
    assert Client().get("/provision/manage/model/", HTTP_X_EXOSITE_TOKEN=issued.raw).status_code == 403
    revokes = [e for e in LogEntry.objects.get_for_object(issued.token) if e.additional_data == {"action": "revoke"}]
    assert len(revokes) == 1


def test_staff_api_refuses_a_bad_vendor_and_writes_nothing(staff_api):
    response = staff_api.post(TOKENS, {"vendor_id": 999999, "name": "x"}, format="json")
    assert response.status_code == 400
    assert not VendorToken.objects.exists()


def test_customers_cannot_see_tokens(api_client, customer_user):
    api_client.force_authenticate(customer_user)
    assert api_client.get(TOKENS).status_code == 403


def test_admin_creates_a_token_and_shows_it_once(client, staff_user):
    client.force_login(staff_user)
    vendor = VendorFactory(name="weaver")

    page = client.post(reverse("admin:devices_vendortoken_add"), {"vendor": vendor.pk, "name": "line-3"})

    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    raw = re.search(r"data-token>([0-9a-f]{40})<", page.content.decode()).group(1)
    token = VendorToken.objects.get()
    assert token.digest == vendor_tokens.vendor_token_digest(raw) and token.created_by == staff_user
    change = client.get(reverse("admin:devices_vendortoken_change", args=[token.pk])).content.decode()
    assert raw not in change and token.digest not in change


def test_admin_revoke_button(client, staff_user):
    client.force_login(staff_user)
    issued = vendor_tokens.vendor_token_create(vendor=VendorFactory(), name="t")
    url = reverse("admin:devices_vendortoken_act", args=[issued.token.pk, "revoke"])

    client.post(url)  # without the confirmation: nothing happens
    assert VendorToken.objects.get().revoked_at is None
    client.post(url, {"confirmed": "1"})
    assert VendorToken.objects.get().revoked_at is not None


def test_admin_lists_live_and_revoked_tokens_apart(client, staff_user):
    client.force_login(staff_user)
    vendor = VendorFactory()
    vendor_tokens.vendor_token_create(vendor=vendor, name="still-live")
    vendor_tokens.vendor_token_revoke(token=vendor_tokens.vendor_token_create(vendor=vendor, name="gone").token)
    changelist = reverse("admin:devices_vendortoken_changelist")

    live = client.get(changelist, {"status": "live"}).content.decode()
    revoked = client.get(changelist, {"status": "revoked"}).content.decode()

    assert "still-live" in live and "gone" not in live
    assert "gone" in revoked and "still-live" not in revoked
