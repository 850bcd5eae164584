"""The pages' 404: their look, plain words and the way back to "My devices"; the other dialects keep their own 404
(tests/portal/test_http_edge.py checks those over a real server) and the admin keeps Django's."""

from __future__ import annotations

import re

import pytest

from tests.factories import CustomerFactory, DeviceFactory

pytestmark = pytest.mark.django_db


def _unmasked(html: str) -> str:
    """The page without its CSRF token (masked afresh in every answer)."""
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


@pytest.mark.parametrize("path", ["/no-such-page/", "/devices/999999/", "/devices/999999/panel/"], ids=str)
def test_a_missing_page_is_the_branded_404(client, customer_user, path):
    client.force_login(customer_user)

    response = client.get(path)

    html = response.content.decode()
    assert response.status_code == 404
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert "<h1>We could not find that page</h1>" in html
    assert '<a class="button" href="/">Back to My devices</a>' in html
    assert "/static/portal/pages.css" in html and "Signed in as <strong>carol</strong>" in html


def test_another_customers_device_is_the_same_404_as_a_missing_one(client, customer_user):
    device = DeviceFactory(owner=CustomerFactory(username="erin"), serial_number="STB-NOT-YOURS")
    client.force_login(customer_user)

    mine = client.get(f"/devices/{device.pk}/")
    missing = client.get("/devices/999999/")

    assert mine.status_code == missing.status_code == 404
    assert _unmasked(mine.content.decode()) == _unmasked(missing.content.decode())
    assert "STB-NOT-YOURS" not in mine.content.decode()


def test_anonymous_visitors_get_the_404_too(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404 and "Back to My devices" in response.content.decode()
    assert "Signed in as" not in response.content.decode()


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        ("/provision/nothing-here", "text/plain; charset=utf-8", "not found"),
        ("/api/v1/no-such-collection/", "application/json", '{"detail": "Not found."}'),
        ("/crmapi/rest/v2/no/such/resource", "application/json", '"code": "UNKNOWN_METHOD"'),
    ],
    ids=["activation", "rest", "crm"],
)
def test_the_other_dialects_keep_their_own_404(client, path, content_type, body):
    response = client.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == content_type
    assert body in response.content.decode() and "We could not find that page" not in response.content.decode()


def test_the_admin_keeps_djangos_404(client, staff_user):
    client.force_login(staff_user)

    response = client.get("/admin/no/such/page/")

    assert response.status_code == 404 and "We could not find that page" not in response.content.decode()
