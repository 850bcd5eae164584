"""Seed 002 (Exosite provisioning), replayed from the document itself (``tests/acceptance/seeds/002_*``): its HTTP
request block (method, path, headers, form body, placeholders filled in) and each of its four response codes, the
CIK of a 200 checked for its form (40 lowercase hex digits, the body and nothing else). The request goes through
Django's test client, and once as the block's own bytes to a live server over a real socket."""

from __future__ import annotations

import http.client
import re
import socket

import pytest

from devices import services
from devices.models import Device
from tests.acceptance.seeds import exosite_codes, exosite_request
from tests.factories import DeviceFactory, DeviceModelFactory

pytestmark = pytest.mark.django_db
METHOD, PATH, HEADERS, FORM = exosite_request()
CODES = exosite_codes()
CIK = re.compile(rb"[0-9a-f]{40}")


def filled(vendor: str, model: str, sn: str) -> str:
    """The document's body, its ``<vendor>``, ``<model>`` and ``<sn>`` filled in."""
    return FORM.replace("<vendor>", vendor).replace("<model>", model).replace("<sn>", sn)


def activate(client, vendor: str, model: str, sn: str):
    """The document's request; the test client writes Content-Length (the document's ``<length>``) itself."""
    assert HEADERS["Content-Length"] == "<length>"
    return client.generic(
        METHOD,
        PATH,
        filled(vendor, model, sn),
        content_type=HEADERS["Content-Type"],
        HTTP_HOST=HEADERS["Host"],
    )


@pytest.fixture
def model(settings):
    settings.ALLOWED_HOSTS = [HEADERS["Host"]]
    return DeviceModelFactory(vendor__name="myvendor", name="mymodel")


def test_the_document_has_its_request_and_four_codes():
    assert (METHOD, PATH) == ("POST", "/provision/activate")
    assert list(HEADERS) == ["Host", "Content-Type", "Content-Length"]
    assert HEADERS["Content-Type"] == "application/x-www-form-urlencoded; charset=utf-8"
    assert FORM == "vendor=<vendor>&model=<model>&sn=<sn>"
    assert list(CODES) == [200, 404, 403, 409]


def test_200_request_was_accepted_and_the_body_has_the_cik(client, model):
    assert CODES[200] == "Request was accepted and the response body will have the CIK"
    services.device_enable(device=DeviceFactory(model=model, serial_number="000001"))

    response = activate(client, "myvendor", "mymodel", "000001")

    assert response.status_code == 200
    assert CIK.fullmatch(response.content)
    assert Device.objects.get().state == "activated"


def test_404_the_serial_number_is_not_in_the_platform(client, model):
    assert CODES[404] == "The serial number of the device isn't in the 1P"

    assert activate(client, "myvendor", "mymodel", "000002").status_code == 404
    assert not Device.objects.exists()


def test_403_invalid_vendor_model_pair(client, model):
    assert CODES[403] == "Invalid vendor/model pair"
    DeviceModelFactory(vendor__name="othervendor", name="othermodel")
    device = services.device_enable(device=DeviceFactory(model=model, serial_number="000001"))

    assert activate(client, "myvendor", "othermodel", "000001").status_code == 403
    assert Device.objects.get(pk=device.pk).state == device.state


@pytest.mark.parametrize("state", ["not-added", "already-activated"])
def test_409_not_yet_added_or_already_through_activation(client, model, state):
    assert CODES[409] == (
        "Device has not yet been added to a portal, or it has already been added to a portal and gone through its "
        "activation process."
    )
    device = DeviceFactory(model=model, serial_number="000003")
    if state == "already-activated":
        services.device_enable(device=device)
        assert activate(client, "myvendor", "mymodel", "000003").status_code == 200

    assert activate(client, "myvendor", "mymodel", "000003").status_code == 409
    assert Device.objects.get(pk=device.pk).state == ("activated" if state == "already-activated" else "notadded")


@pytest.mark.django_db(transaction=True)
def test_the_documents_request_bytes_over_a_socket(live_server, settings):
    """The block as an HTTP/1.1 client writes it: request line, the three headers in the document's order
    (``<length>`` the body's length), a blank line, the form."""
    settings.ALLOWED_HOSTS = [HEADERS["Host"]]
    model = DeviceModelFactory(vendor__name="myvendor", name="mymodel")
    services.device_enable(device=DeviceFactory(model=model, serial_number="000001"))
    body = filled("myvendor", "mymodel", "000001").encode()
    head = [f"{METHOD} {PATH} HTTP/1.1", *(f"{name}: {value}" for name, value in HEADERS.items())]
    raw = "\r\n".join(head).replace("<length>", str(len(body))).encode() + b"\r\n\r\n" + body

    host, port = live_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(raw)
        response = http.client.HTTPResponse(conn)
        response.begin()
        content = response.read()

    assert response.status == 200
    assert CIK.fullmatch(content)
