"""The Exosite fleet management dialect in process: every call pyonep makes and the documentation describes, the
bad-input table, and the rules beneath (the same devices as the admin and the staff API). The raw-socket replays
against real servers are in tests/acceptance/test_exosite_manage_replay.py."""

from __future__ import annotations

import io
import json

import pytest
from auditlog.models import LogEntry
from django.test import Client

from devices import contents, selectors, services, vendor_tokens
from devices.choices import ActivationState
from devices.exceptions import ContentTooLarge, InvalidImport
from devices.models import Content, Device, DeviceModel, SerialRange, VendorToken
from tests.factories import CustomerFactory, DeviceFactory, DeviceModelFactory, VendorFactory

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded; charset=utf-8"


@pytest.fixture(autouse=True)
def _content_storage(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "exosite_content": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "content")},
        },
    }


@pytest.fixture
def vendor():
    return VendorFactory(name="weaver")


@pytest.fixture
def token(vendor) -> str:
    return vendor_tokens.vendor_token_create(vendor=vendor, name="factory").raw


@pytest.fixture
def device_model(vendor):
    return DeviceModelFactory(vendor=vendor, name="MyTestModel")


class Exosite:
    """Requests as pyonep's ``Provision._request`` builds them (``manage_by_cik=False``)."""

    def __init__(self, token: str) -> None:
        self.client, self.token = Client(), token

    def call(self, method: str, path: str, body: bytes | str = b"", content_type: str | None = None, **headers):
        extra = {
            "HTTP_X_EXOSITE_TOKEN": self.token,
            "HTTP_ACCEPT": "text/plain, text/csv, application/x-www-form-urlencoded",
        }
        extra |= {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
        if method == "GET":
            return self.client.get(path, **extra)
        if content_type is None and method == "POST":
            content_type = FORM
        data = body.encode() if isinstance(body, str) else body
        return self.client.generic(method, path, data, content_type=content_type or "", **extra)


@pytest.fixture
def api(token) -> Exosite:
    return Exosite(token)


def body(response) -> str:
    return b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()


# --- models -------------------------------------------------------------------------------------------------------


def test_model_create_list_info_update_delete_as_pyonep_sends_them(api, vendor):
    created = api.call("POST", "/provision/manage/model/", "model=MyTestModel1&rid=68f080d4&options%5B%5D=noaliases")
    assert (created.status_code, created.content, created.has_header("Content-Type")) == (205, b"", False)
    assert body(api.call("GET", "/provision/manage/model/")) == "MyTestModel1"
    info = api.call("GET", "/provision/manage/model/MyTestModel1")
    assert (info["Content-Type"], body(info)) == (FORM, "rid=68f080d4&options[]=noaliases")

    updated = api.call(
        "PUT", "/provision/manage/model/MyTestModel1", "rid=aa&options%5B%5D=nocomments&options%5B%5D=nohistorical"
    )
    assert updated.status_code == 205
    assert (
        body(api.call("GET", "/provision/manage/model/MyTestModel1"))
        == "rid=aa&options[]=nocomments&options[]=nohistorical"
    )

    removed = api.call("DELETE", "/provision/manage/model/MyTestModel1", "delete=true&model=MyTestModel1&confirm=true")
    assert removed.status_code == 205
    assert not DeviceModel.objects.filter(name="MyTestModel1").exists()


def test_model_create_by_code_and_delete_by_post(api):
    assert api.call("POST", "/provision/manage/model/", "model=M2&code=tmpl").status_code == 205
    assert body(api.call("GET", "/provision/manage/model/M2")) == "code=tmpl"
    assert api.call("POST", "/provision/manage/model/", "delete=true&model=M2").status_code == 205
    assert not DeviceModel.objects.filter(name="M2").exists()


def test_a_second_model_of_that_name_is_409_and_nothing_changes(api, device_model):
    response = api.call("POST", "/provision/manage/model/", "model=MyTestModel&rid=x")
    assert (response.status_code, body(response)) == (409, "model MyTestModel already exists")
    assert DeviceModel.objects.get(pk=device_model.pk).clone_rid == ""


def test_a_token_sees_only_its_vendors_models(api, device_model):
    other = DeviceModelFactory(vendor=VendorFactory(name="other"), name="Theirs")
    DeviceFactory(model=other, serial_number="THEIRS-1")
    assert body(api.call("GET", "/provision/manage/model/")) == "MyTestModel"
    for method, path in [
        ("GET", "/provision/manage/model/Theirs"),
        ("GET", "/provision/manage/model/Theirs/"),
        ("GET", "/provision/manage/model/Theirs/THEIRS-1"),
        ("DELETE", "/provision/manage/model/Theirs"),
        ("POST", "/provision/manage/model/Theirs/"),
    ]:
        response = api.call(method, path, "sn=X" if method == "POST" else "")
        assert (response.status_code, body(response)) == (404, "model not found"), path
    assert Device.objects.filter(model=other).count() == 1


@pytest.mark.parametrize(
    ("headers", "status", "text"),
    [
        ({}, 403, "missing X-Exosite-Token"),
        ({"HTTP_X_EXOSITE_TOKEN": "0" * 40}, 403, "invalid vendor token"),
        ({"HTTP_X_EXOSITE_TOKEN": "tok\x01en"}, 403, "invalid vendor token"),
    ],
    ids=["missing", "wrong", "control-characters"],
)
def test_vendor_authentication_refusals(headers, status, text):
    response = Client().get("/provision/manage/model/", **headers)
    assert (response.status_code, response["Content-Type"], body(response)) == (
        status,
        "text/plain; charset=utf-8",
        text,
    )


def test_a_revoked_token_is_refused_at_once(api, token, vendor):
    vendor_tokens.vendor_token_revoke(token=VendorToken.objects.get(vendor=vendor))
    assert api.call("GET", "/provision/manage/model/").status_code == 403


def test_the_token_in_x_exosite_cik_as_pyonep_sends_it_with_manage_by_cik(token, device_model):
    response = Client().get("/provision/manage/model/", HTTP_X_EXOSITE_CIK=token)
    assert (response.status_code, body(response)) == (200, "MyTestModel")


# --- serials --------------------------------------------------------------------------------------------------------


def test_serials_add_one_many_list_remove_as_pyonep(api, device_model):
    path = "/provision/manage/model/MyTestModel/"
    assert api.call("POST", path, "add=true&sn=0011").status_code == 205
    assert api.call("POST", path, "add=true&sn%5B%5D=0021&sn%5B%5D=0031").status_code == 205
    listed = api.call("GET", path + "?offset=0&limit=10")
    assert (listed.status_code, listed["Content-Type"]) == (200, "text/csv; charset=utf-8")
    assert body(listed) == "0011,,\n0021,,\n0031,,"
    assert api.call("POST", path, "remove=true&sn%5B%5D=0021&sn%5B%5D=0031").status_code == 205
    assert body(api.call("GET", path + "?offset=0&limit=1000")) == "0011,,"


def test_serials_with_extra_csv_and_delete_by_csv(api, device_model):
    path = "/provision/manage/model/MyTestModel/"
    assert api.call("POST", path, "sn=12345678&extra=blue").status_code == 205
    added = api.call("POST", path, 'A1,first\nA2,"with, comma"\n', content_type="text/csv; charset=utf-8")
    assert added.status_code == 205
    assert body(api.call("GET", path)) == '12345678,,blue\nA1,,first\nA2,,"with, comma"'
    assert api.call("DELETE", path, "A1\nA2\n", content_type="text/csv; charset=utf-8").status_code == 205
    assert api.call("POST", path, "delete=true&sn=12345678").status_code == 205
    assert api.call("GET", path).status_code == 204


def test_a_batch_with_one_existing_serial_is_409_and_adds_nothing(api, device_model):
    DeviceFactory(model=device_model, serial_number="TAKEN")
    response = api.call("POST", "/provision/manage/model/MyTestModel/", "sn[]=NEW-1&sn[]=TAKEN&sn[]=NEW-2")
    assert (response.status_code, body(response)) == (409, "serial number already exists: TAKEN")
    assert list(Device.objects.filter(model=device_model).values_list("serial_number", flat=True)) == ["TAKEN"]


def test_list_pages_and_limits_are_enforced_5_to_1000(api, device_model):
    for n in range(12):
        DeviceFactory(model=device_model, serial_number=f"S{n:02d}")
    path = "/provision/manage/model/MyTestModel/"
    assert body(api.call("GET", path + "?offset=2&limit=1")).split("\n") == [f"S{n:02d},," for n in range(2, 7)]
    assert len(body(api.call("GET", path + "?limit=5000")).split("\n")) == 12
    assert api.call("GET", path + "?offset=100").status_code == 204


def test_list_by_status_and_rids(api, device_model):
    pending = services.device_enable(device=DeviceFactory(model=device_model, serial_number="P1"))
    DeviceFactory(model=device_model, serial_number="N1")
    response = api.call("GET", "/provision/manage/model/MyTestModel/?status=notactivated")
    assert body(response) == f"P1,{selectors.device_rid(pending.pk)},"


def test_ranges_add_show_and_remove(api, device_model):
    path = "/provision/manage/model/MyTestModel/"
    ranges = {
        "ranges": [
            {"format": "base10", "length": 6, "first": 98, "last": 101},
            {"format": "base16", "length": 4, "casing": "upper", "first": 254, "last": 256},
            {"format": "mac:48", "casing": "lower", "first": 0x001A2B3C4D5E, "last": 0x001A2B3C4D5F},
            {"format": "mac.48", "first": 1, "last": 1},
        ]
    }
    response = api.call("POST", path, json.dumps(ranges), content_type="application/javascript; charset=utf-8")
    assert response.status_code == 205, body(response)
    serials = set(Device.objects.filter(model=device_model).values_list("serial_number", flat=True))
    assert serials == {
        "000098", "000099", "000100", "000101", "00FE", "00FF", "0100",
        "00:1a:2b:3c:4d:5e", "00:1a:2b:3c:4d:5f", "0000.0000.0001",
    }  # fmt: skip
    shown = api.call("GET", path + "?show=ranges")
    assert shown["Content-Type"] == "application/javascript; charset=utf-8"
    assert json.loads(body(shown))["ranges"][1] == {
        "format": "base16",
        "length": 4,
        "casing": "upper",
        "first": 254,
        "last": 256,
    }

    removed = api.call("DELETE", path, json.dumps({"ranges": ranges["ranges"][:1]}), content_type="application/json")
    assert removed.status_code == 205
    assert Device.objects.filter(model=device_model).count() == 6
    assert SerialRange.objects.filter(model=device_model).count() == 3


# --- the bad-input table ----------------------------------------------------------------------------------------

BAD = [
    ("POST", "/provision/manage/model/", "model=&rid=x", FORM, 400, "missing field model"),
    ("POST", "/provision/manage/model/", "model=A&rid=x&code=y", FORM, 400, "give rid or code, not both"),
    ("POST", "/provision/manage/model/", "model=A&options[]=fast", FORM, 400, "unknown option fast"),
    ("POST", "/provision/manage/model/", "model=A%00B", FORM, 400, "field model contains control characters"),
    ("POST", "/provision/manage/model/", "model=%FF", FORM, 400, "body is not valid UTF-8 form data"),
    (
        "POST",
        "/provision/manage/model/",
        "model=A",
        "text/html",
        400,
        "Content-Type must be application/x-www-form-urlencoded",
    ),
    ("POST", "/provision/manage/model/", "model=A&model=B", FORM, 400, "field model given more than once"),
    ("POST", "/provision/manage/model/MyTestModel/", "", FORM, 400, "missing field sn"),
    ("POST", "/provision/manage/model/MyTestModel/", "sn=has space", FORM, 400, "line 1: contains a space"),
    ("POST", "/provision/manage/model/MyTestModel/", 'A,"unclosed\nB', "text/csv", 400, None),
    ("POST", "/provision/manage/model/MyTestModel/", b"A\xff\n", "text/csv", 400, "body is not valid UTF-8"),
    ("POST", "/provision/manage/model/MyTestModel/", "{", "application/json", 400, "body is not valid JSON"),
    ("POST", "/provision/manage/model/MyTestModel/", '{"ranges": []}', "application/json", 400, None),
    (
        "POST",
        "/provision/manage/model/MyTestModel/",
        '{"ranges": [{"format": "base10", "first": 0, "last": 9999999}]}',
        "application/json",
        400,
        "the ranges hold 10000000 serial numbers; one request may hold at most 100000",
    ),
    (
        "POST",
        "/provision/manage/model/MyTestModel/",
        '{"ranges": [{"format": "base36", "first": 0, "last": 1}]}',
        "application/json",
        400,
        "range 1: format must be one of base10, base16, mac:48, mac-48, mac.48",
    ),
    (
        "POST",
        "/provision/manage/model/MyTestModel/",
        '{"ranges": [{"format": "base10", "first": 5, "last": 1}]}',
        "application/json",
        400,
        "range 1: last is below first",
    ),
    (
        "POST",
        "/provision/manage/model/MyTestModel/",
        '{"ranges": [{"format": "mac-48", "first": 0, "last": 281474976710656}]}',
        "application/json",
        400,
        "range 1: a MAC-48 address is at most 281474976710655",
    ),
    (
        "POST",
        "/provision/manage/model/MyTestModel/",
        '{"ranges": [{"format": "base10", "first": NaN, "last": 1}]}',
        "application/json",
        400,
        "body is not valid JSON",
    ),
    (
        "POST",
        "/provision/manage/model/MyTestModel/",
        '{"ranges": [{"format": "base10", "length": 2, "first": 0, "last": 100}]}',
        "application/json",
        400,
        "range 1: last has more than 2 digits",
    ),
    ("GET", "/provision/manage/model/MyTestModel/?limit=ten", "", None, 400, "limit must be a non-negative integer"),
    ("GET", "/provision/manage/model/MyTestModel/?status=happy", "", None, 400, None),
    (
        "POST",
        "/provision/manage/model/MyTestModel/EXISTING",
        "frobnicate=true",
        FORM,
        400,
        "give enable=true or disable=true",
    ),
    (
        "POST",
        "/provision/manage/model/MyTestModel/EXISTING",
        "enable=maybe",
        FORM,
        400,
        "field enable must be true or false",
    ),
    ("GET", "/provision/manage/model/MyTestModel/NOPE", "", None, 404, "serial number not found"),
    ("GET", "/provision/manage/model/MyTestModel/A%00B", "", None, 404, "not found"),
    ("GET", "/provision/manage/model/My%00Model/", "", None, 404, "not found"),
    ("DELETE", "/provision/manage/content/MyTestModel/a%01b", "", None, 404, "not found"),
    (
        "POST",
        "/provision/manage/model/MyTestModel/",
        "[" * 100000 + "]" * 100000,
        "application/json",
        400,
        "body is not valid JSON",
    ),
    ("GET", "/provision/manage/nothing/here", "", None, 404, "not found"),
    ("GET", "/provision/manage/group/MyTestModel/", "", None, 501, "not supported by this portal"),
    ("POST", "/provision/manage/share/MyTestModel/", "vendor=x", FORM, 501, "not supported by this portal"),
    ("GET", "/provision/admin/auth/", "", None, 501, "not supported by this portal"),
    ("PATCH", "/provision/manage/model/", "", None, 405, "method not allowed"),
]


@pytest.mark.parametrize(
    ("method", "path", "payload", "content_type", "status", "text"), BAD, ids=[f"{b[4]}-{i}" for i, b in enumerate(BAD)]
)
def test_bad_input_gets_its_status_in_plain_text_and_writes_nothing(
    api, device_model, method, path, payload, content_type, status, text
):
    DeviceFactory(model=device_model, serial_number="EXISTING")
    before = (Device.objects.count(), DeviceModel.objects.count(), LogEntry.objects.count())
    response = api.call(method, path, payload, content_type=content_type)
    assert response.status_code == status
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    if text is not None:
        assert body(response) == text
    assert (Device.objects.count(), DeviceModel.objects.count(), LogEntry.objects.count()) == before


def test_a_form_body_over_the_limit_is_413(api, device_model, settings):
    settings.EXOSITE_FORM_MAX_BYTES = 100
    response = api.call("POST", "/provision/manage/model/MyTestModel/", "sn[]=A&" * 50)
    assert (response.status_code, body(response)) == (413, "body too large")
    assert not Device.objects.filter(model=device_model).exists()


# --- one serial -----------------------------------------------------------------------------------------------------


def test_the_pyonep_example_enable_disable_reenable_activate_info(api, device_model):
    path = "/provision/manage/model/MyTestModel/"
    api.call("POST", path, "add=true&sn=0011")
    device = Device.objects.get(serial_number="0011")
    assert api.call("GET", path + "0011").status_code == 204  # unused: never enabled

    enabled = api.call("POST", path + "0011", "enable=true&owner=5de0cfcf7b5bed2ea7a802ebe0679b9c8a0a3e2c")
    rid = selectors.device_rid(device.pk)
    assert (enabled.status_code, enabled["Content-Type"], body(enabled)) == (200, "text/csv; charset=utf-8", rid)
    assert body(api.call("GET", path + "0011")) == f"notactivated,{rid},"
    assert api.call("POST", path + "0011", "enable=true&owner=x").status_code == 409

    assert api.call("POST", path + "0011", "disable=true").status_code == 205
    assert body(api.call("GET", path + "0011")) == f"disabled,{rid},"
    assert api.call("POST", path + "0011", "enable=true").status_code == 205
    assert body(api.call("GET", path + "0011")) == f"notactivated,{rid},"

    activated = Client().post(
        "/provision/activate", "vendor=weaver&model=MyTestModel&sn=0011", content_type=FORM, HTTP_X_EXOSITE_CIK=""
    )
    assert activated.status_code == 200 and len(activated.content) == 40
    assert body(api.call("GET", path + "0011")) == f"activated,{rid},"
    log = body(api.call("GET", path + "0011?show=log")).split("\n")
    assert len(log) == 1 and log[0].endswith(",127.0.0.1,activated")

    # regenerate: the CIK stops working, a new window opens
    assert api.call("POST", path + "0011", "enable=true").status_code == 205
    assert Device.objects.get(pk=device.pk).state == ActivationState.NOT_ACTIVATED
    assert Device.objects.get(pk=device.pk).cik_digest is None
    entries = [e for e in LogEntry.objects.get_for_object(device) if e.additional_data == {"action": "regenerate_cik"}]
    assert [e.actor_email for e in entries] == [f"vendor token #{VendorToken.objects.get().pk} weaver/factory"] * 2

    assert api.call("DELETE", path + "0011").status_code == 205
    assert not Device.objects.filter(pk=device.pk).exists()


def test_enable_with_a_customer_username_is_accepted(api, device_model):
    DeviceFactory(model=device_model, serial_number="C1")
    CustomerFactory(username="alice")
    assert api.call("POST", "/provision/manage/model/MyTestModel/C1", "enable=true&owner=alice").status_code == 200


def test_remap_moves_the_device_to_the_new_serial(api, device_model):
    old = services.device_enable(device=DeviceFactory(model=device_model, serial_number="OLD", extra="x"))
    DeviceFactory(model=device_model, serial_number="NEW")  # added, never enabled
    response = api.call("POST", "/provision/manage/model/MyTestModel/NEW", "enable=true&oldsn=OLD")
    assert response.status_code == 205
    moved = Device.objects.get(pk=old.pk)
    assert (moved.serial_number, moved.extra, moved.state) == ("NEW", "x", ActivationState.NOT_ACTIVATED)
    assert not Device.objects.filter(serial_number="OLD").exists()
    assert body(api.call("GET", "/provision/manage/model/MyTestModel/NEW")).split(",")[1] == selectors.device_rid(
        old.pk
    )


def test_remap_onto_an_enabled_serial_is_409(api, device_model):
    services.device_enable(device=DeviceFactory(model=device_model, serial_number="OLD"))
    services.device_enable(device=DeviceFactory(model=device_model, serial_number="NEW"))
    response = api.call("POST", "/provision/manage/model/MyTestModel/NEW", "enable=true&oldsn=OLD")
    assert (response.status_code, body(response)) == (409, "serial number NEW is already enabled")
    assert Device.objects.filter(serial_number="OLD").exists()


def test_disable_twice_is_409(api, device_model):
    services.device_disable(device=services.device_enable(device=DeviceFactory(model=device_model, serial_number="D")))
    response = api.call("POST", "/provision/manage/model/MyTestModel/D", "disable=true")
    assert (response.status_code, body(response)) == (409, "cannot disable a device in state disabled")


def test_groups_of_a_serial_are_none(api, device_model):
    DeviceFactory(model=device_model, serial_number="G")
    assert api.call("GET", "/provision/manage/model/MyTestModel/G?show=groups").status_code == 204
    assert api.call("GET", "/provision/manage/model/?show=shared").status_code == 204


# --- register ------------------------------------------------------------------------------------------------------


def test_register_show_register_unregister(api):
    shown = api.call("GET", "/provision/register")
    assert (shown.status_code, shown["Content-Type"], body(shown)) == (200, "text/plain; charset=utf-8", "weaver")
    assert api.call("POST", "/provision/register", "vendor=weaver").status_code == 205
    assert api.call("POST", "/provision/register", "vendor=other").status_code == 409
    assert api.call("POST", "/provision/register", "delete=true&vendor=weaver").status_code == 409


# --- content ---------------------------------------------------------------------------------------------------------


def _activated(device_model, serial: str) -> tuple[Device, str]:
    device = services.device_enable(device=DeviceFactory(model=device_model, serial_number=serial))
    cik = services.device_activate(
        vendor="weaver", model=device_model.name, serial=serial, remote_addr=None, user_agent=""
    )
    return device, cik


def test_content_create_upload_list_info_download_remove_as_pyonep(api, device_model):
    base = "/provision/manage/content/MyTestModel/"
    assert api.call("POST", base, "id=a.txt&meta=This+is+text").status_code == 205
    assert body(api.call("GET", base)) == "a.txt"
    uploaded = api.call("POST", base + "a.txt", "This is content data", content_type="text/plain")
    assert uploaded.status_code == 205
    info = body(api.call("GET", base + "a.txt")).split(",")
    assert (info[0], info[1], info[3], info[4]) == ("text/plain", "20", "This is text", "false")

    _, cik = _activated(device_model, "0011")
    download = Client().get(
        "/provision/download?vendor=weaver&model=MyTestModel&id=a.txt", HTTP_X_EXOSITE_CIK=cik, HTTP_ACCEPT="*"
    )
    assert (download.status_code, download["Content-Type"], download["Content-Length"]) == (200, "text/plain", "20")
    assert download["Accept-Ranges"] == "bytes"
    assert body(download) == "This is content data"
    device_info = Client().get(
        "/provision/download?vendor=weaver&model=MyTestModel&id=a.txt&info=true", HTTP_X_EXOSITE_CIK=cik
    )
    assert body(device_info).split(",")[3] == "This is text"

    assert api.call("DELETE", base + "a.txt").status_code == 205
    assert not Content.objects.exists()


@pytest.mark.parametrize(
    ("header", "status", "content_range", "payload"),
    [
        ("bytes=0-0", 206, "bytes 0-0/20", "T"),
        ("bytes=5-", 206, "bytes 5-19/20", "is content data"),
        ("bytes=-4", 206, "bytes 16-19/20", "data"),
        ("bytes=-400", 206, "bytes 0-19/20", "This is content data"),
        ("bytes=18-99", 206, "bytes 18-19/20", "ta"),
        ("bytes=20-", 416, "bytes */20", "range not satisfiable"),
        ("bytes=5-4", 416, "bytes */20", "range not satisfiable"),
        ("bytes=-0", 416, "bytes */20", "range not satisfiable"),
        ("bytes=-", 416, "bytes */20", "range not satisfiable"),
        ("bytes=0-1,3-4", 416, "bytes */20", "range not satisfiable"),
        ("items=0-1", 416, "bytes */20", "range not satisfiable"),
    ],
    ids=[
        "first-byte",
        "from-5",
        "last-4",
        "last-more-than-all",
        "end-past-size",
        "start-at-size",
        "reversed",
        "suffix-zero",
        "empty",
        "multiple",
        "other-unit",
    ],
)
def test_range_edges(api, device_model, header, status, content_range, payload):
    content = contents.content_create(model=device_model, name="fw.bin")
    api.call(
        "POST",
        "/provision/manage/content/MyTestModel/fw.bin",
        "This is content data",
        content_type="application/octet-stream",
    )
    response = api.call("GET", "/provision/manage/content/MyTestModel/fw.bin?download=true", range=header)
    assert (response.status_code, response["Content-Range"], body(response)) == (status, content_range, payload)
    if status == 206:
        assert response["Content-Length"] == str(len(payload))
    assert content.pk


def test_protected_content_per_serial(api, device_model):
    base = "/provision/manage/content/MyTestModel/"
    api.call("POST", base, "id=secret.bin&meta=m&protected=true")
    api.call("POST", base, "id=open.bin&meta=m")
    api.call("POST", base + "secret.bin", b"\x00\x01", content_type="application/octet-stream")
    allowed, allowed_cik = _activated(device_model, "ALLOWED")
    _, other_cik = _activated(device_model, "OTHER")
    content = Content.objects.get(name="secret.bin")
    contents.content_save(content=content, meta="m", protected=True, allowed=[allowed])

    assert body(api.call("GET", base + "?sn=ALLOWED")) == "open.bin\nsecret.bin"
    assert body(api.call("GET", base + "?sn=OTHER")) == "open.bin"
    assert api.call("GET", base + "secret.bin?sn=OTHER").status_code == 403
    assert api.call("GET", base + "secret.bin?sn=ALLOWED").status_code == 200
    assert api.call("GET", base + "secret.bin?sn=NOPE").status_code == 400
    url = "/provision/download?vendor=weaver&model=MyTestModel&id=secret.bin"
    assert Client().get(url, HTTP_X_EXOSITE_CIK=allowed_cik).status_code == 200
    assert Client().get(url, HTTP_X_EXOSITE_CIK=other_cik).status_code == 403
    listed = Client().get("/provision/download?vendor=weaver&model=MyTestModel", HTTP_X_EXOSITE_CIK=other_cik)
    assert body(listed) == "open.bin"


@pytest.mark.parametrize(
    ("query", "cik", "status", "text"),
    [
        ("vendor=weaver&model=MyTestModel&id=a", "", 401, "invalid CIK"),
        ("vendor=weaver&model=MyTestModel&id=a", "f" * 40, 401, "invalid CIK"),
        ("vendor=other&model=MyTestModel&id=a", None, 403, "invalid vendor/model pair"),
        ("vendor=weaver&model=MyTestModel&id=missing", None, 404, "content not found"),
        ("vendor=weaver&model=MyTestModel&id=empty", None, 404, "no content uploaded"),
    ],
    ids=["no-cik", "unknown-cik", "other-vendor", "unknown-id", "never-uploaded"],
)
def test_device_download_refusals(device_model, query, cik, status, text):
    _, real = _activated(device_model, "DEV")
    contents.content_create(model=device_model, name="empty")
    response = Client().get(f"/provision/download?{query}", HTTP_X_EXOSITE_CIK=real if cik is None else cik)
    assert (response.status_code, body(response)) == (status, text)


def test_an_oversize_blob_is_refused_and_the_old_blob_kept(api, device_model, settings, tmp_path):
    base = "/provision/manage/content/MyTestModel/"
    api.call("POST", base, "id=fw&meta=m")
    api.call("POST", base + "fw", b"old", content_type="application/octet-stream")
    settings.EXOSITE_CONTENT_MAX_BYTES = 10
    response = api.call("POST", base + "fw", b"x" * 11, content_type="application/octet-stream")
    assert (response.status_code, body(response)) == (413, "body too large")  # declared: refused unread
    with pytest.raises(ContentTooLarge):  # streamed (chunked): refused at the limit, what was written deleted
        contents.content_upload(
            content=Content.objects.get(name="fw"), stream=io.BytesIO(b"x" * 11), content_type="a/b"
        )
    content = Content.objects.get(name="fw")
    assert (content.size, content.content_type) == (3, "application/octet-stream")
    assert [p.name for p in (tmp_path / "content" / str(device_model.pk)).iterdir()] == [content.blob.split("/")[1]]


def test_a_model_delete_takes_its_serials_and_content(api, device_model, tmp_path, django_capture_on_commit_callbacks):
    DeviceFactory(model=device_model, serial_number="S1")
    api.call("POST", "/provision/manage/content/MyTestModel/", "id=fw&meta=m")
    api.call("POST", "/provision/manage/content/MyTestModel/fw", b"blob", content_type="application/octet-stream")
    with django_capture_on_commit_callbacks(execute=True):
        assert api.call("DELETE", "/provision/manage/model/MyTestModel").status_code == 205
    assert not Device.objects.filter(serial_number="S1").exists()
    assert list((tmp_path / "content" / str(device_model.pk)).iterdir()) == []


def test_a_csv_add_audits_each_new_device_as_created_by_the_token_and_the_model_once(api, device_model):
    """The bulk path (unnest INSERT, COPY of the entries) leaves the trail a device_create would: each device's own
    creation entry naming the token, its address and the import, and one summary on the model."""
    path = "/provision/manage/model/MyTestModel/"
    csv = "".join(f"C{n:04d},lot-{n}\n" for n in range(1, 1502))  # two batches

    assert api.call("POST", path, csv, content_type="text/csv; charset=utf-8").status_code == 205

    actor = f"vendor token #{VendorToken.objects.get().pk} weaver/factory"
    devices = Device.objects.filter(model=device_model)
    assert devices.count() == 1501
    for serial in ("C0001", "C1000", "C1001", "C1501"):
        device = devices.get(serial_number=serial)
        (entry,) = LogEntry.objects.get_for_object(device)
        assert entry.action == LogEntry.Action.CREATE and entry.additional_data == {"action": "import_serials"}
        assert (entry.actor_email, entry.remote_addr) == (actor, "127.0.0.1")
        assert entry.changes_dict["serial_number"] == [None, serial]
        assert entry.changes_dict["extra"] == [None, f"lot-{int(serial[1:])}"]
        assert entry.changes_dict["id"] == [None, device.pk]
        assert device.state == ActivationState.NOT_ADDED and device.extra == f"lot-{int(serial[1:])}"
    summary = LogEntry.objects.get_for_object(device_model).latest("pk")
    assert summary.actor_email == actor and summary.additional_data["created"] == 1501


def test_authorising_a_serial_for_protected_content_is_audited_and_honoured_at_once(device_model):
    """The one place a serial is authorised (devices.contents.content_save, the content's admin page): each grant
    and each withdrawal is an entry of the content's trail naming the serial, and the device side follows it."""
    content = contents.content_create(model=device_model, name="fw.bin", protected=True)
    contents.content_upload(content=content, stream=io.BytesIO(b"fw"), content_type="application/octet-stream")
    device, cik = _activated(device_model, "GRANTED")
    url = "/provision/download?vendor=weaver&model=MyTestModel&id=fw.bin"
    assert Client().get(url, HTTP_X_EXOSITE_CIK=cik).status_code == 403

    contents.content_save(content=content, meta="", protected=True, allowed=[device])
    assert body(Client().get(url, HTTP_X_EXOSITE_CIK=cik)) == "fw"
    contents.content_save(content=content, meta="", protected=True, allowed=[])
    assert Client().get(url, HTTP_X_EXOSITE_CIK=cik).status_code == 403

    m2m = [e.changes_dict["allowed"] for e in LogEntry.objects.get_for_object(content) if "allowed" in e.changes_dict]
    assert [(c["operation"], c["objects"]) for c in reversed(m2m)] == [("add", ["GRANTED"]), ("delete", ["GRANTED"])]
    with pytest.raises(InvalidImport, match="only devices of the content's own model"):
        contents.content_save(content=content, meta="", protected=True, allowed=[DeviceFactory()])
