"""Exosite's C device library (``exosite/libexosite_c_http-device``, ``exosite-lib/src/exosite.c``) against both
HTTP topologies the project ships, over a raw socket, byte for byte.

``exosite_activate()`` writes ``POST /provision/activate HTTP/1.1``, the hard-coded ``Host: m2.exosite.com``, its
form Content-Type and a Content-Length, then ``vendor=…&model=…&sn=…``; it reads the answer once. It decides with
``exosite_checkResponse`` (the three characters after the first space), finds the body with a case-sensitive
``strstr(response, "Content-Length: ")``, ``atoi`` up to ``\\r``, then ``\\r\\n\\r\\n``, and keeps a CIK only if the
length is 40 and ``exosite_isCIKValid`` (40 lowercase hex characters) holds.
"""

from __future__ import annotations

import json
import socket

import pytest

from devices import services
from devices.choices import ActivationState
from devices.models import Device
from tests.factories import DeviceFactory, DeviceModelFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.postgres]

CIK_LENGTH = 40


def library_request(vendor: str, model: str, sn: str) -> bytes:
    """The bytes of exosite_activate(), in the order it writes them."""
    body = f"vendor={vendor}&model={model}&sn={sn}".encode()
    return (
        b"POST /provision/activate HTTP/1.1\r\n"
        b"Host: m2.exosite.com\r\n"
        b"Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def exchange(base: str, request: bytes) -> bytes:
    """Send and read the whole answer (the library reads what one response holds, then disconnects)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while not _complete(data):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            return len(body) >= int(value)
    return False


def check_response(response: bytes, code: bytes) -> bool:
    """exosite_checkResponse: the first space within the first 15 characters, then the three code digits."""
    space = next((i + 1 for i in range(1, 15) if response[i : i + 1] == b" "), 0)
    return space > 0 and response[space : space + 3] == code


def get_body(response: bytes) -> tuple[bytes, int] | None:
    """exosite_getBody: case-sensitive "Content-Length: ", atoi up to "\\r", the body after "\\r\\n\\r\\n"."""
    start = response.find(b"Content-Length: ")
    if start < 0:
        return None
    start += len(b"Content-Length: ")
    end = response.find(b"\r", start)
    if end < 0:
        return None
    digits = response[start:end]
    length = int(digits) if digits.isdigit() else 0
    body_at = response.find(b"\r\n\r\n", start)
    if body_at < 0:
        return None
    return response[body_at + 4 :], length


def is_cik_valid(cik: bytes) -> bool:
    return len(cik) >= CIK_LENGTH and all(ch in b"0123456789abcdef" for ch in cik[:CIK_LENGTH])


def library_cik(response: bytes) -> bytes | None:
    """What exosite_activate() stores: a CIK only from a 200 whose Content-Length is 40 and whose body is valid."""
    if not check_response(response, b"200"):
        return None
    found = get_body(response)
    if found is None:
        return None
    body, length = found
    return body[:CIK_LENGTH] if is_cik_valid(body) and length == CIK_LENGTH else None


@pytest.fixture
def model():
    return DeviceModelFactory(vendor__name="exosite-vendor", name="c-device")


def test_200_the_library_stores_the_cik_and_it_authenticates(device_server, model):
    services.device_enable(device=DeviceFactory(model=model, serial_number="00:1A:2B:3C:4D:5E"))
    base = device_server

    response = exchange(base, library_request("exosite-vendor", "c-device", "00:1A:2B:3C:4D:5E"))

    cik = library_cik(response)
    assert cik is not None, response
    assert services.device_from_cik(cik=cik.decode()).serial_number == "00:1A:2B:3C:4D:5E"
    assert b"\r\nContent-Type: text/plain; charset=utf-8\r\n" in response


@pytest.mark.parametrize(
    ("vendor", "device_model", "serial", "code"),
    [
        ("exosite-vendor", "c-device", "NOT-IN-THE-PLATFORM", b"404"),
        ("exosite-vendor", "no-such-model", "SN-1", b"403"),
        ("exosite-vendor", "c-device", "NOT-ENABLED", b"409"),
    ],
    ids=["404-unknown-serial", "403-invalid-vendor-model", "409-not-enabled"],
)
def test_refusals_reach_the_library_as_their_codes_without_a_cik(
    device_server, model, vendor, device_model, serial, code
):
    DeviceFactory(model=model, serial_number="NOT-ENABLED")
    base = device_server

    response = exchange(base, library_request(vendor, device_model, serial))

    assert check_response(response, code), response
    assert library_cik(response) is None
    assert get_body(response) is not None  # the library finds the header it searches for, in its case
    assert Device.objects.get(serial_number="NOT-ENABLED").state == ActivationState.NOT_ADDED


def test_409_a_second_activation_after_the_library_kept_its_cik(device_server, model):
    services.device_enable(device=DeviceFactory(model=model, serial_number="TWICE"))
    base = device_server

    first = library_cik(exchange(base, library_request("exosite-vendor", "c-device", "TWICE")))
    second = exchange(base, library_request("exosite-vendor", "c-device", "TWICE"))

    assert first is not None
    assert check_response(second, b"409")
    assert services.device_from_cik(cik=first.decode()).serial_number == "TWICE"


@pytest.mark.parametrize(
    "path",
    [
        "/provision/activate",
        "/jsonrpc",
        "/v1/Login/",
        "/v1/DeviceProvisioningComponents/",
        "/crmapi/rest/v2/authentication/token",
    ],
)
def test_every_header_name_is_canonical_on_device_endpoints(device_server, model, path):
    base = device_server
    request = library_request("exosite-vendor", "c-device", "X").replace(b"/provision/activate", path.encode())
    if not path.startswith(("/provision/", "/jsonrpc")):  # integrations name the portal's host
        request = request.replace(b"Host: m2.exosite.com", b"Host: 127.0.0.1")

    head = exchange(base, request).partition(b"\r\n\r\n")[0]

    names = [line.partition(b":")[0] for line in head.split(b"\r\n")[1:]]
    assert b"Content-Length" in names
    assert b"Content-Type" in names
    assert all(part[:1].isupper() for name in names for part in name.split(b"-")), names
    assert not any(
        name.lower() == b"server" and value.strip().lower() != b"portal"
        for name, _, value in (line.partition(b":") for line in head.split(b"\r\n")[1:])
    )


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        (
            "/crmapi/rest/v2/authentication/token",
            b"400",
            {
                "status": {"code": "INVALID_REQUEST", "message": "the request could not be read", "description": None},
                "data": None,
            },
        ),
        (
            "/v1/Login/",
            b"200",
            {
                "token": "ERROR",
                "userid": "",
                "userrole": "",
                "status": "FAILURE",
                "error": "INVALID_REQUEST_PRAM",
                "username": "",
                "CONTENT_TYPE": "",
            },
        ),
        ("/api/v1/devices/", b"400", {"detail": "Bad request."}),
    ],
    ids=["crm-envelope", "v1-error-on-200", "rest-detail"],
)
def test_integration_dialects_refuse_an_unknown_host_in_their_own_format(device_server, path, status, body):
    request = f"GET {path} HTTP/1.1\r\nHost: evil.example\r\n\r\n".encode()

    response = exchange(device_server, request)

    head, _, payload = response.partition(b"\r\n\r\n")
    assert check_response(response, status), response
    assert b"\r\nContent-Type: application/json\r\n" in head
    assert json.loads(payload) == body
