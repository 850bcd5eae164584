"""Exosite's fleet management API against both HTTP topologies the project ships, over a raw socket, byte for byte:
the requests of Exosite's Python client (``exosite-labs/pyonep``, ``pyonep/provision.py`` on ``http.client``) in
the order ``examples/provisioning.py`` makes them, and the documentation's examples (``unahouExosite/docs``,
``provision/management.md``, its ``curl`` lines).

What pyonep puts on the wire (``Provision._request``): ``Host: m2.exosite.com`` (port 80 is left out),
``Accept-Encoding: identity`` (http.client's own), then ``X-Exosite-Token: <token>`` (or ``X-Exosite-CIK`` — empty
for ``serialnumber_activate``), ``Content-Type: application/x-www-form-urlencoded; charset=utf-8`` on POST only
(replaced by the blob's type on ``content_upload``), ``Accept: text/plain, text/csv,
application/x-www-form-urlencoded`` (``*`` on ``content_download``), and a ``Content-Length`` whenever there is a
body (written before those headers); PUT and DELETE carry their form body with no Content-Type at all. Form lists
are ``urlencode(doseq=True)``: ``options%5B%5D=noaliases``, ``sn%5B%5D=…``.
It reads the status and the body, nothing else.
"""

from __future__ import annotations

import http.client
import socket
import threading
from urllib.parse import urlencode

import pytest

from devices import vendor_tokens
from devices.models import Device, DeviceModel
from tests.acceptance.test_exosite_c_library import exchange
from tests.factories import VendorFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.postgres]

ACCEPT = "text/plain, text/csv, application/x-www-form-urlencoded"
FORM = "application/x-www-form-urlencoded; charset=utf-8"


def pyonep_bytes(method: str, path: str, key: str, data: str, *, key_is_cik: bool = False, extra=None) -> bytes:
    """The bytes http.client writes for ``Provision._request(path, key, data, method, key_is_cik, extra)``."""
    url, body = (path + ("?" + data if data else ""), None) if method == "GET" else (path, data)
    headers = _pyonep_headers(method, key, key_is_cik=key_is_cik, extra=extra)
    lines = [f"{method} {url} HTTP/1.1", "Host: m2.exosite.com", "Accept-Encoding: identity"]
    if body is not None:  # http.client writes the length before the caller's headers
        lines.append(f"Content-Length: {len(body.encode())}")
    elif method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Length: 0")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or "").encode()


def _pyonep_headers(method: str, key: str, *, key_is_cik: bool = False, extra=None) -> dict[str, str]:
    """``Provision._request``'s header dict, in its insertion order."""
    headers = {("X-Exosite-CIK" if key_is_cik else "X-Exosite-Token"): key}
    if method == "POST":
        headers["Content-Type"] = FORM
    headers["Accept"] = ACCEPT
    headers.update(extra or {})
    return headers


SHAPES = [
    (
        "POST",
        "/provision/manage/model/",
        urlencode({"model": "M", "rid": "r", "options[]": ["noaliases"]}, doseq=True),
        {},
    ),
    ("PUT", "/provision/manage/model/M", urlencode({"rid": "r", "options[]": ["nocomments"]}, doseq=True), {}),
    ("DELETE", "/provision/manage/model/M", urlencode({"delete": "true", "model": "M", "confirm": "true"}), {}),
    ("DELETE", "/provision/manage/model/M/SN", "", {}),
    ("GET", "/provision/manage/model/M/", urlencode({"offset": 0, "limit": 1000}), {}),
    ("POST", "/provision/manage/content/M/a.txt", "blob", {"extra": {"Content-Type": "text/plain"}}),
    (
        "GET",
        "/provision/download",
        urlencode({"vendor": "v", "model": "M", "id": "a"}),
        {"key_is_cik": True, "extra": {"Accept": "*"}},
    ),
]


@pytest.mark.parametrize(("method", "path", "data", "options"), SHAPES, ids=[f"{m} {p}" for m, p, _, _ in SHAPES])
def test_the_replayed_bytes_are_what_http_client_sends(method, path, data, options):
    """The replay is checked against http.client itself (pyonep's transport, ``OnePHTTP.request``) on a socket of
    our own; only the Host differs (pyonep connects to m2.exosite.com:80, which http.client names without port)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    received: list[bytes] = []

    def capture() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(1)
            data = b""
            try:
                while chunk := conn.recv(65536):
                    data += chunk
            except TimeoutError:
                pass
            received.append(data)

    thread = threading.Thread(target=capture)
    thread.start()
    client = http.client.HTTPConnection(f"127.0.0.1:{port}", timeout=5)
    url, body = (path + ("?" + data if data else ""), None) if method == "GET" else (path, data)
    client.request(method, url, body, _pyonep_headers(method, "k", **options))
    thread.join(timeout=5)
    client.close()
    listener.close()
    sent = received[0].replace(f"Host: 127.0.0.1:{port}".encode(), b"Host: m2.exosite.com")
    assert sent == pyonep_bytes(method, path, "k", data, **options)


def answer(base: str, request: bytes) -> tuple[int, dict[str, str], list[bytes], bytes]:
    """(status, headers by exact name, header names in order, body) of one exchange."""
    response = exchange(base, request)
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *lines = head.split(b"\r\n")
    names = [line.partition(b":")[0] for line in lines]
    headers = {line.partition(b":")[0].decode(): line.partition(b":")[2].strip().decode() for line in lines}
    return int(status_line.split()[1]), headers, names, body


def assert_canonical(names: list[bytes]) -> None:
    assert all(part[:1].isupper() for name in names for part in name.split(b"-")), names


@pytest.fixture
def token():
    return vendor_tokens.vendor_token_create(vendor=VendorFactory(name="weaver"), name="factory").raw


def examples_provisioning_py_step_by_step(base: str, token: str) -> None:
    model, sn1, sn2, sn3 = "MyTestModel42", "00142", "00242", "00342"
    manage = "/provision/manage/model/"

    def call(method, path, data="", **kw):
        status, headers, names, body = answer(base, pyonep_bytes(method, path, token, data, **kw))
        assert_canonical(names)
        return status, headers, body

    # model_create(vendortoken, model, clonerid, aliases=False)
    data = urlencode(
        {"model": model, "rid": "68f080d449808a1e4bfb91487623330d437b0214", "options[]": ["noaliases"]}, doseq=True
    )
    status, headers, body = call("POST", manage, data)
    assert (status, headers.get("Content-Length"), body) == (205, "0", b"")
    assert "Content-Type" not in headers
    # model_list, model_info
    status, headers, body = call("GET", manage)
    assert (status, headers["Content-Type"], body) == (200, "text/csv; charset=utf-8", model.encode())
    status, headers, body = call("GET", manage + model)
    assert (status, headers["Content-Type"]) == (200, FORM)
    assert body == b"rid=68f080d449808a1e4bfb91487623330d437b0214&options[]=noaliases"
    # serialnumber_add, serialnumber_add_batch, serialnumber_list(limit=10)
    assert call("POST", manage + model + "/", urlencode({"add": "true", "sn": sn1}))[0] == 205
    assert call("POST", manage + model + "/", urlencode({"add": "true", "sn[]": [sn2, sn3]}, doseq=True))[0] == 205
    status, _, body = call("GET", manage + model + "/", urlencode({"offset": 0, "limit": 10}))
    assert (status, body) == (200, f"{sn1},,\n{sn2},,\n{sn3},,".encode())
    # serialnumber_remove_batch, serialnumber_list
    assert call("POST", manage + model + "/", urlencode({"remove": "true", "sn[]": [sn2, sn3]}, doseq=True))[0] == 205
    assert call("GET", manage + model + "/", urlencode({"offset": 0, "limit": 1000}))[2] == f"{sn1},,".encode()
    # serialnumber_enable(owner=portalrid): 200 with the client RID
    status, headers, rid = call("POST", manage + model + "/" + sn1, urlencode({"enable": "true", "owner": "5de0cfcf"}))
    assert (status, headers["Content-Type"], len(rid)) == (200, "text/csv; charset=utf-8", 40)
    assert call("GET", manage + model + "/" + sn1)[2] == b"notactivated," + rid + b","
    # serialnumber_disable, serialnumber_reenable
    assert call("POST", manage + model + "/" + sn1, urlencode({"disable": "true"}))[0] == 205
    assert call("GET", manage + model + "/" + sn1)[2] == b"disabled," + rid + b","
    assert call("POST", manage + model + "/" + sn1, urlencode({"enable": "true"}))[0] == 205
    # serialnumber_activate(model, sn1, vendorname): pyonep sends an empty X-Exosite-CIK (manage_by_cik=False
    # sends the key as X-Exosite-Token: empty)
    activate = pyonep_bytes(
        "POST", "/provision/activate", "", urlencode({"vendor": "weaver", "model": model, "sn": sn1})
    )
    status, headers, _, cik = answer(base, activate)
    assert (status, headers["Content-Type"], len(cik)) == (200, "text/plain; charset=utf-8", 40)
    assert call("GET", manage + model + "/" + sn1)[2] == b"activated," + rid + b","
    # content_create, content_list, content_upload, content_info
    content = "/provision/manage/content/" + model + "/"
    assert call("POST", content, urlencode({"id": "a.txt", "meta": "This is text"}))[0] == 205
    assert call("GET", content)[2] == b"a.txt"
    upload = pyonep_bytes(
        "POST", content + "a.txt", token, "This is content data", extra={"Content-Type": "text/plain"}
    )
    assert answer(base, upload)[0] == 205
    info = call("GET", content + "a.txt")[2].decode().split(",")
    assert (info[0], info[1], info[3], info[4]) == ("text/plain", "20", "This is text", "false")
    # content_download(sn_cik, vendorname, model, id): X-Exosite-CIK, Accept: *
    download = pyonep_bytes(
        "GET", "/provision/download", cik.decode(), urlencode({"vendor": "weaver", "model": model, "id": "a.txt"}),
        key_is_cik=True, extra={"Accept": "*"},
    )  # fmt: skip
    status, headers, names, body = answer(base, download)
    assert (status, headers["Content-Type"], headers["Content-Length"], body) == (
        200,
        "text/plain",
        "20",
        b"This is content data",
    )
    assert headers["Accept-Ranges"] == "bytes"
    assert_canonical(names)
    # content_remove, model_remove (DELETE with a form body and no Content-Type)
    assert call("DELETE", content + "a.txt")[0] == 205
    assert call("DELETE", manage + model, urlencode({"delete": "true", "model": model, "confirm": "true"}))[0] == 205
    assert not DeviceModel.objects.filter(name=model).exists()
    assert not Device.objects.filter(serial_number=sn1).exists()


def the_documented_curl_examples(base: str, token: str) -> None:
    """management.md: "white lists the serial number 12345678" and lists them, as curl sends it."""
    from devices.models import Vendor

    DeviceModel.objects.create(vendor=Vendor.objects.get(name="weaver"), name="MY_CLIENT_MODEL_ID")
    path = "/provision/manage/model/MY_CLIENT_MODEL_ID/"
    body = b"sn=12345678&extra="
    add = (
        f"POST {path} HTTP/1.1\r\nHost: m2.exosite.com\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n"
        f"X-Exosite-Token: {token}\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    status, headers, _, payload = answer(base, add)
    assert (status, headers["Content-Length"], payload) == (205, "0", b"")
    listing = (
        f"GET {path} HTTP/1.1\r\nHost: m2.exosite.com\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n"
        f"X-Exosite-Token: {token}\r\n\r\n"
    )
    status, headers, names, payload = answer(base, listing.encode())
    assert (status, headers["Content-Type"], payload) == (200, "text/csv; charset=utf-8", b"12345678,,")
    assert_canonical(names)
    again = answer(base, add)
    assert (again[0], again[3]) == (409, b"serial number already exists: 12345678")


def range_and_refusals_on_the_wire(base: str, token: str) -> None:
    from devices import contents, services
    from devices.models import Vendor

    device_model = DeviceModel.objects.create(vendor=Vendor.objects.get(name="weaver"), name="fw-model")
    contents.content_create(model=device_model, name="fw.bin")
    blob = bytes(range(256)) * 4
    upload = pyonep_bytes(
        "POST",
        "/provision/manage/content/fw-model/fw.bin",
        token,
        "",
        extra={"Content-Type": "application/octet-stream"},
    )
    upload = upload.replace(b"Content-Length: 0", f"Content-Length: {len(blob)}".encode()) + blob
    assert answer(base, upload)[0] == 205
    device = services.device_enable(device=Device.objects.create(model=device_model, serial_number="D1"))
    cik = services.device_activate(
        vendor="weaver", model="fw-model", serial=device.serial_number, remote_addr=None, user_agent=""
    )

    def get(range_header: str) -> tuple[int, dict[str, str], bytes]:
        request = (
            f"GET /provision/download?vendor=weaver&model=fw-model&id=fw.bin HTTP/1.1\r\nHost: m2.exosite.com\r\n"
            f"X-Exosite-CIK: {cik}\r\nRange: {range_header}\r\n\r\n"
        )
        status, headers, _, body = answer(base, request.encode())
        return status, headers, body

    status, headers, body = get("bytes=0-0")
    assert (status, headers["Content-Range"], headers["Content-Length"], body) == (206, "bytes 0-0/1024", "1", b"\x00")
    status, headers, body = get("bytes=-16")
    assert (status, headers["Content-Range"], body) == (206, "bytes 1008-1023/1024", blob[-16:])
    status, headers, body = get("bytes=1024-")
    assert (status, headers["Content-Range"], body) == (416, "bytes */1024", b"range not satisfiable")

    wrong = f"GET /provision/manage/model/ HTTP/1.1\r\nHost: m2.exosite.com\r\nX-Exosite-Token: {'0' * 40}\r\n\r\n"
    status, headers, _, body = answer(base, wrong.encode())
    assert (status, headers["Content-Type"], body) == (403, "text/plain; charset=utf-8", b"invalid vendor token")
    groups = (
        f"GET /provision/manage/group/fw-model/ HTTP/1.1\r\nHost: m2.exosite.com\r\nX-Exosite-Token: {token}\r\n\r\n"
    )
    status, headers, _, body = answer(base, groups.encode())
    assert (status, headers["Content-Type"], body) == (
        501,
        "text/plain; charset=utf-8",
        b"not supported by this portal",
    )
    unknown = b"GET /provision/manage/nothing HTTP/1.1\r\nHost: m2.exosite.com\r\n\r\n"
    status, headers, _, body = answer(base, unknown)
    assert (status, headers["Content-Type"], body) == (404, "text/plain; charset=utf-8", b"not found")


def test_pyonep_and_the_documentation_on_the_wire(device_server, token):
    """One test per server: the servers cache content-type ids, which a transactional test's flush renumbers."""
    examples_provisioning_py_step_by_step(device_server, token)
    the_documented_curl_examples(device_server, token)
    range_and_refusals_on_the_wire(device_server, token)
