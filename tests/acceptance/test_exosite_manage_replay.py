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

Every example of ``management.md``, ticked off (D: ``every_documented_request``, each request in the form the
documentation writes it; P: ``examples_provisioning_py_step_by_step``, pyonep's bytes; C:
``the_documented_curl_examples``; R: ``range_and_refusals_on_the_wire``). "501" is the dialect's documented
refusal of what the portal does not have (docs/exosite.md, "Not supported").

==================================================================  =====  ==========================================
management.md example                                               where  answer checked
==================================================================  =====  ==========================================
content/<m>/ GET list content ids                                   D P    200 text/csv, ids; 204 when none
content/<m>/ GET ?sn= list authorized content                       D      200 the serial's ids; 400 unknown serial
content/<m>/ POST create (id, meta, {protected=true})               D P    205; 409 when it exists
content/<m>/ POST delete=true&id=                                   D      205
content/<m>/<id> GET content info                                   D P    5 fields, protected "false"
content/<m>/<id> GET ?download=true {Range}                         D R    200 Accept-Ranges; 206 Content-Range
content/<m>/<id> GET ?sn= content info if authorised                D      4 fields; 403 not authorised; 400
content/<m>/<id> GET ?download=true&sn= {Range}                     D      206 for the authorised serial; 403
content/<m>/<id> GET ?show=groups                                   D      204 (a member of no group)
content/<m>/<id> POST upload (blob, its Content-Type)               D P R  205 (a new upload replaces the blob)
content/<m>/<id> DELETE                                             D P    205
group/<m>/ GET show groups, POST create, POST delete                D      501
group/<m>/<id> GET meta, GET ?show=groups, DELETE                   D      501
group/<m>/<id>/ GET info, ?type=, ?id=, ?type=&id=                  D      501
group/<m>/<id>/ POST similar / dissimilar (CSV) / delete, DELETE    D      501
model/ GET list models                                              D P    200 text/csv
model/ GET ?show=shared                                             D      204 (no shared models)
model/ POST create (rid= or code=, options[])                       D P    205; 409 when it exists
model/ POST delete=true&model=                                      D      205
model/<m> GET model info                                            D P    form-encoded rid= / code=, options[]
model/<m> PUT update                                                D      205, then info shows it
model/<m> DELETE                                                    D P    205 (pyonep: with a form body)
model/<m>/ GET list serials ?offset=&limit= (and the curl example)  D P C  200 <sn>,<rid>,<extra>; 204 when none
model/<m>/ GET ?show=ranges                                         D      200 application/javascript
model/<m>/ POST add one sn=&extra= (and the curl example)           D P C  205; 409 serial number already exists
model/<m>/ POST add many sn[]=                                      D P    205
model/<m>/ POST add many text/csv <sn>,<extra>                      D      205
model/<m>/ POST add ranges (JSON)                                   D      205
model/<m>/ POST remove one delete=true&sn=                          D      205
model/<m>/ POST remove many delete=true&sn[]= (pyonep: remove=)     D P    205
model/<m>/ DELETE remove many text/csv (request line shown as POST) D      205 (as DELETE: a POST of CSV adds)
model/<m>/ DELETE ranges (JSON)                                     D      205
model/<m>/<sn> GET client RID                                       D P    200 <status>,<rid>,<extra>; 204 unused
model/<m>/<sn> GET ?show=groups                                     D      204
model/<m>/<sn> GET ?show=log                                        D      200 <ts>,<address>,activated; 204
model/<m>/<sn> POST enable=true&owner= (create client)              D P    200 text/csv <ClientRID>
model/<m>/<sn> POST enable=true&oldsn= (remap)                      D      205, the RID follows the client
model/<m>/<sn> POST enable=true (regenerate CIK)                    D P    205
model/<m>/<sn> POST disable=true                                    D P    205, status disabled
model/<m>/<sn> DELETE                                               D      205
share/<m>/ GET, POST share, POST delete; share/<m>/<v> GET, DELETE  D      501
register GET vendor name                                            D      200 text/plain, the vendor's name
register POST vendor= (request line shown as GET)                   D      205 (its own name)
register POST delete=true&vendor=                                   D      409 (names are managed by staff)
admin/auth/ GET, POST create, POST delete; admin/auth/<id> GET, DEL D      501
==================================================================  =====  ==========================================
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
    every_documented_request(device_server, token)
    examples_provisioning_py_step_by_step(device_server, token)
    the_documented_curl_examples(device_server, token)
    range_and_refusals_on_the_wire(device_server, token)


def documented(method: str, path: str, token: str, body: bytes = b"", content_type: str | None = None, **headers):
    """A request as management.md writes it: ``Host: m2.exosite.com``, the vendor's ``X-Exosite-Token`` (or the
    header ``key_header`` names), the ``Content-Type`` and ``Content-Length`` it shows, then the body."""
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: m2.exosite.com",
        f"{headers.pop('key_header', 'X-Exosite-Token')}: {token}",
    ]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def every_documented_request(base: str, token: str) -> None:
    """Each request of management.md in the form it is written there, with its documented answer (the portal's
    deviations are the ones docs/exosite.md names). The table in this module's docstring ticks them off."""
    from devices import contents, services
    from devices.models import Content, Vendor

    vendor = Vendor.objects.get(name="weaver")
    csv, js = "text/csv; charset=utf-8", "application/javascript; charset=utf-8"

    def call(method, path, body=b"", content_type=None, **headers):
        status, heads, names, payload = answer(base, documented(method, path, token, body, content_type, **headers))
        assert_canonical(names)
        return status, heads, payload

    def changed(method, path, body=b"", content_type=FORM):
        status, heads, payload = call(method, path, body, content_type)
        assert (status, heads.get("Content-Length"), payload) == (205, "0", b""), (method, path, payload)

    # --- /provision/manage/model/ and /provision/manage/model/<model> ---
    model = "/provision/manage/model/"
    changed("POST", model, b"model=docs&rid=68f080d4&options[]=noaliases&options[]=nocomments&options[]=nohistorical")
    changed("POST", model, b"model=docs-code&code=abc123&options[]=noaliases")
    status, heads, payload = call("POST", model, b"model=docs&rid=68f080d4", FORM)
    assert (status, payload) == (409, b"model docs already exists")
    status, heads, payload = call("GET", model)
    assert (status, heads["Content-Type"], payload) == (200, csv, b"docs\ndocs-code")
    assert call("GET", model + "?show=shared")[0] == 204  # no shared models
    status, heads, payload = call("GET", model + "docs")
    assert (status, heads["Content-Type"]) == (200, FORM)
    assert payload == b"rid=68f080d4&options[]=noaliases&options[]=nocomments&options[]=nohistorical"
    changed("PUT", model + "docs-code", b"code=def456&options[]=nohistorical")
    assert call("GET", model + "docs-code")[2] == b"code=def456&options[]=nohistorical"
    changed("DELETE", model + "docs-code", content_type=None)
    changed("POST", model, b"model=gone&rid=1")
    changed("POST", model, b"delete=true&model=gone")
    assert call("GET", model)[2] == b"docs"

    # --- /provision/manage/model/<model>/ ---
    serials = model + "docs/"
    changed("POST", serials, b"sn=0001&extra=first")
    assert call("POST", serials, b"sn=0001&extra=", FORM)[:3:2] == (409, b"serial number already exists: 0001")
    changed("POST", serials, b"sn[]=0002&sn[]=0003&sn[]=0004")
    changed("POST", serials, b"0005,fifth\n0006,sixth", csv)
    ranges = b'{"ranges":[{"format":"base16","length":4,"casing":"upper","first":250,"last":251}]}'
    changed("POST", serials, ranges, js)
    status, heads, payload = call("GET", serials + "?offset=0&limit=5")
    assert (status, heads["Content-Type"]) == (200, csv)
    assert payload == b"0001,,first\n0002,,\n0003,,\n0004,,\n0005,,fifth"
    status, heads, payload = call("GET", serials + "?show=ranges")
    assert (status, heads["Content-Type"]) == (200, js)
    assert b'"first": 250' in payload and b'"format": "base16"' in payload
    changed("POST", serials, b"delete=true&sn=0002")
    changed("POST", serials, b"delete=true&sn[]=0003&sn[]=0004")
    changed("DELETE", serials, b"0006", csv)  # the documentation writes this one's request line as POST
    changed("DELETE", serials, ranges, js)
    assert call("GET", serials + "?offset=0&limit=1000")[2] == b"0001,,first\n0005,,fifth"

    # --- /provision/manage/model/<model>/<sn> ---
    assert call("GET", serials + "0001")[0] == 204  # unused
    status, heads, rid = call("POST", serials + "0001", b"enable=true&owner=5de0cfcf", FORM)
    assert (status, heads["Content-Type"], len(rid)) == (200, csv, 40)
    status, heads, payload = call("GET", serials + "0001")
    assert (status, heads["Content-Type"], payload) == (200, csv, b"notactivated," + rid + b",first")
    assert call("GET", serials + "0001?show=groups")[0] == 204
    assert call("GET", serials + "0001?show=log")[0] == 204  # no attempt yet
    changed("POST", serials + "0001", b"enable=true")  # regenerate CIK
    changed("POST", serials + "0001", b"disable=true")
    assert call("GET", serials + "0001")[2] == b"disabled," + rid + b",first"
    changed("POST", serials + "0005", b"enable=true&oldsn=0001")  # remap: the client keeps its RID
    assert call("GET", serials + "0005")[2] == b"notactivated," + rid + b",first"
    services.device_activate(vendor="weaver", model="docs", serial="0005", remote_addr="192.0.2.9", user_agent="")
    status, heads, payload = call("GET", serials + "0005?show=log")
    assert (status, heads["Content-Type"]) == (200, csv) and payload.endswith(b",192.0.2.9,activated")
    changed("DELETE", serials + "0005", content_type=None)
    assert call("GET", serials + "?offset=0&limit=5")[0] == 204

    # --- /provision/manage/content/<model>/ and /provision/manage/content/<model>/<id> ---
    content = "/provision/manage/content/docs/"
    changed("POST", content, b"id=open.bin&meta=for+all")
    changed("POST", content, b"id=secret.bin&meta=for+some&protected=true")
    assert call("POST", content, b"id=open.bin&meta=again", FORM)[0] == 409
    changed("POST", content + "open.bin", b"0123456789", "application/octet-stream")
    changed("POST", content + "secret.bin", b"secret", "text/plain")
    status, heads, payload = call("GET", content)
    assert (status, heads["Content-Type"], payload) == (200, csv, b"open.bin\nsecret.bin")
    status, heads, payload = call("GET", content + "open.bin")
    kind, size, updated, meta, protected = payload.decode().split(",")
    assert (status, kind, size, meta, protected, updated.isdigit()) == (
        200, "application/octet-stream", "10", "for all", "false", True
    )  # fmt: skip
    status, heads, payload = call("GET", content + "open.bin?download=true")
    assert (status, heads["Content-Type"], heads["Accept-Ranges"], payload) == (
        200, "application/octet-stream", "bytes", b"0123456789"
    )  # fmt: skip
    status, heads, payload = call("GET", content + "open.bin?download=true", Range="bytes=2-4")
    assert (status, heads["Content-Range"], payload) == (206, "bytes 2-4/10", b"234")
    assert call("GET", content + "open.bin?show=groups")[0] == 204

    # per serial: a device the protected content is authorised for, one it is not
    docs = DeviceModel.objects.get(vendor=vendor, name="docs")
    allowed = services.device_enable(device=Device.objects.create(model=docs, serial_number="A1"))
    services.device_enable(device=Device.objects.create(model=docs, serial_number="B1"))
    secret = Content.objects.get(model=docs, name="secret.bin")
    contents.content_save(content=secret, meta=secret.meta, protected=True, allowed=[allowed])
    status, heads, payload = call("GET", content + "?sn=A1")
    assert (status, heads["Content-Type"], payload) == (200, csv, b"open.bin\nsecret.bin")
    assert call("GET", content + "?sn=B1")[2] == b"open.bin"
    assert call("GET", content + "?sn=NOPE")[0] == 400  # an invalid model/serial combination
    status, heads, payload = call("GET", content + "secret.bin?sn=A1")
    assert (status, heads["Content-Type"], payload.decode().split(",")[::3]) == (200, csv, ["text/plain", "for some"])
    assert call("GET", content + "secret.bin?sn=NOPE")[0] == 400
    assert call("GET", content + "secret.bin?sn=B1")[0] == 403
    status, heads, payload = call("GET", content + "secret.bin?download=true&sn=A1", Range="bytes=-3")
    assert (status, heads["Content-Range"], payload) == (206, "bytes 3-5/6", b"ret")
    assert call("GET", content + "secret.bin?download=true&sn=B1")[0] == 403
    changed("DELETE", content + "secret.bin", content_type=None)
    changed("POST", content, b"delete=true&id=open.bin")
    assert call("GET", content)[0] == 204

    # --- groups, shares, vendor token administration: answered in the dialect, not supported ---
    for method, path, body, kind in [
        ("GET", "/provision/manage/group/docs/?offset=0&limit=5", b"", None),
        ("POST", "/provision/manage/group/docs/", b"id=g1&meta=m", FORM),
        ("POST", "/provision/manage/group/docs/", b"id=g1&delete=true", FORM),
        ("GET", "/provision/manage/group/docs/g1", b"", None),
        ("GET", "/provision/manage/group/docs/g1?show=groups", b"", None),
        ("DELETE", "/provision/manage/group/docs/g1", b"", None),
        ("GET", "/provision/manage/group/docs/g1/?offset=0&limit=5", b"", None),
        ("GET", "/provision/manage/group/docs/g1/?type=sn", b"", None),
        ("GET", "/provision/manage/group/docs/g1/?id=A1", b"", None),
        ("GET", "/provision/manage/group/docs/g1/?type=sn&id=A1", b"", None),
        ("POST", "/provision/manage/group/docs/g1/", b"type=sn&id[]=A1&id[]=B1&expire=0&meta=m", FORM),
        ("POST", "/provision/manage/group/docs/g1/", b"sn,A1,0,m\nsn,B1,0,m", csv),
        ("POST", "/provision/manage/group/docs/g1/", b"type=sn&id=A1&delete=true", FORM),
        ("DELETE", "/provision/manage/group/docs/g1/", b"sn,A1\nsn,B1", csv),
        ("GET", "/provision/manage/share/docs/", b"", None),
        ("POST", "/provision/manage/share/docs/", b"vendor=other", FORM),
        ("POST", "/provision/manage/share/docs/", b"vendor=other&delete=true", FORM),
        ("GET", "/provision/manage/share/docs/other", b"", None),
        ("DELETE", "/provision/manage/share/docs/other", b"", None),
        ("GET", "/provision/admin/auth/", b"", None),
        ("POST", "/provision/admin/auth/", b"id=t1", FORM),
        ("POST", "/provision/admin/auth/", b"delete=true&id=t1", FORM),
        ("GET", "/provision/admin/auth/t1", b"", None),
        ("DELETE", "/provision/admin/auth/t1", b"", None),
    ]:
        key = "X-Exosite-CIK" if path.startswith("/provision/admin/") else "X-Exosite-Token"
        status, heads, names, payload = answer(base, documented(method, path, token, body, kind, key_header=key))
        assert (status, heads["Content-Type"], payload) == (
            501, "text/plain; charset=utf-8", b"not supported by this portal"
        ), (method, path)  # fmt: skip

    # --- /provision/register (the vendor's key as X-Exosite-CIK) ---
    status, heads, names, payload = answer(
        base, documented("GET", "/provision/register", token, key_header="X-Exosite-CIK")
    )
    assert (status, heads["Content-Type"], payload) == (200, "text/plain; charset=utf-8", b"weaver")
    register = documented("POST", "/provision/register", token, b"vendor=weaver", FORM, key_header="X-Exosite-CIK")
    assert answer(base, register)[0] == 205  # the documentation writes this request line as GET
    unregister = documented(
        "POST", "/provision/register", token, b"delete=true&vendor=weaver", FORM, key_header="X-Exosite-CIK"
    )
    status, heads, names, payload = answer(base, unregister)
    assert (status, payload) == (409, b"vendor names are managed by staff in the portal")
    assert_canonical(names)
    changed("DELETE", model + "docs", content_type=None)  # the later steps list the vendor's models
