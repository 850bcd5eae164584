"""POST /provision/activate: the Exosite dialect, its status codes, bad input and rate limits."""

from __future__ import annotations

import re

import pytest
import redis

from devices import services
from devices.choices import ActivationOutcome, ActivationState
from devices.models import ActivationAttempt, Device
from provisioning.auth import CikMissing, device_from_request
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db
URL = "/provision/activate"
FORM = "application/x-www-form-urlencoded; charset=utf-8"


@pytest.fixture
def device():
    return services.device_enable(
        device=DeviceFactory(model__vendor__name="acme", model__name="stb-4k", serial_number="SN-0001")
    )


def post(client, body, content_type=FORM, **extra):
    return client.generic("POST", URL, body, content_type=content_type, **extra)


def snapshot() -> list[dict]:
    return list(Device.objects.order_by("pk").values())


def test_activation_returns_the_cik_alone_as_plain_text(client, device):
    response = post(client, "vendor=acme&model=stb-4k&sn=SN-0001")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert re.fullmatch(rb"[0-9a-f]{40}", response.content)
    device.refresh_from_db()
    assert device.state == ActivationState.ACTIVATED
    assert device.cik_digest == services.cik_digest(response.content.decode())


@pytest.mark.parametrize(
    ("body", "status", "text", "outcome"),
    [
        pytest.param(
            "vendor=acme&model=nope&sn=SN-0001", 403, b"invalid vendor/model pair", "invalid_model", id="403-model"
        ),
        pytest.param(
            "vendor=nope&model=stb-4k&sn=SN-0001", 403, b"invalid vendor/model pair", "invalid_model", id="403-vendor"
        ),
        pytest.param(
            "vendor=acme&model=stb-4k&sn=SN-9999", 404, b"serial number not found", "unknown_serial", id="404"
        ),
    ],
)
def test_unknown_model_or_serial(client, device, body, status, text, outcome):
    before = snapshot()

    response = post(client, body)

    assert (response.status_code, response.content) == (status, text)
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert snapshot() == before
    assert ActivationAttempt.objects.get().outcome == outcome


@pytest.mark.parametrize(
    ("prepare", "text"),
    [
        pytest.param(
            lambda d: Device.objects.filter(pk=d.pk).update(state="notadded"), b"device not enabled", id="not-enabled"
        ),
        pytest.param(lambda d: services.device_disable(device=d), b"device disabled", id="disabled"),
        pytest.param(
            lambda d: Device.objects.filter(pk=d.pk).update(state="expired"), b"activation window expired", id="expired"
        ),
    ],
)
def test_409_when_the_device_may_not_activate(client, device, prepare, text):
    prepare(device)
    before = snapshot()

    response = post(client, "vendor=acme&model=stb-4k&sn=SN-0001")

    assert (response.status_code, response.content) == (409, text)
    assert snapshot() == before


def test_second_activation_is_409_and_keeps_the_first_cik(client, device):
    cik = post(client, "vendor=acme&model=stb-4k&sn=SN-0001").content.decode()

    again = post(client, "vendor=acme&model=stb-4k&sn=SN-0001")

    assert (again.status_code, again.content) == (409, b"device already activated")
    assert services.device_from_cik(cik=cik).pk == device.pk


def test_reenabled_device_gets_a_new_cik_and_the_old_one_stops_working(client, device):
    old = post(client, "vendor=acme&model=stb-4k&sn=SN-0001").content.decode()
    services.device_reenable(device=device)

    new = post(client, "vendor=acme&model=stb-4k&sn=SN-0001")

    assert new.status_code == 200 and new.content.decode() != old
    assert services.device_from_cik(cik=new.content.decode()).pk == device.pk


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        pytest.param("&", FORM, b"missing field vendor", id="no-fields"),
        pytest.param("vendor=acme&model=stb-4k", FORM, b"missing field sn", id="missing-sn"),
        pytest.param("vendor=acme&model=stb-4k&sn=", FORM, b"missing field sn", id="empty-sn"),
        pytest.param(
            '{"vendor":"acme","model":"stb-4k","sn":"SN-0001"}',
            "application/json",
            b"Content-Type must be application/x-www-form-urlencoded",
            id="json",
        ),
        pytest.param(
            '--b\r\nContent-Disposition: form-data; name="sn"\r\n\r\nSN-0001\r\n--b--',
            "multipart/form-data; boundary=b",
            b"Content-Type must be application/x-www-form-urlencoded",
            id="multipart",
        ),
        pytest.param(
            "vendor=acme&model=stb-4k&sn=SN-0001",
            "",
            b"Content-Type must be application/x-www-form-urlencoded",
            id="no-content-type",
        ),
        pytest.param("vendor=acme&model=stb-4k&sn=" + "A" * 5000, FORM, b"body too large", id="body-over-4k"),
        pytest.param("vendor=acme&model=stb-4k&sn=" + "A" * 10_000, FORM, b"body too large", id="serial-10000"),
        pytest.param(
            "vendor=acme&model=stb-4k&sn=" + "A" * 129, FORM, b"field sn longer than 128 characters", id="serial-129"
        ),
        pytest.param(
            "vendor=acme&model=stb-4k&sn=%ff%fe", FORM, b"body is not valid UTF-8 form data", id="bad-utf8-escaped"
        ),
        pytest.param(
            b"vendor=acme&model=stb-4k&sn=\xff\xfe", FORM, b"body is not valid UTF-8 form data", id="bad-utf8-raw"
        ),
        pytest.param(
            "vendor=acme&model=stb-4k&sn=SN%000001", FORM, b"field sn contains control characters", id="nul-byte"
        ),
        pytest.param(
            "vendor=acme&model=stb-4k&sn=SN-0001&note=a%00b",
            FORM,
            b"field other contains control characters",
            id="nul-in-another-field",
        ),
        pytest.param(
            "vendor=acme&model=stb-4k&sn=SN-0001&a%00b=1",
            FORM,
            b"a field name contains control characters",
            id="nul-in-a-field-name",
        ),
        pytest.param(
            "vendor=acme&model=stb-4k&sn=SN-%ED%A0%80",
            FORM,
            b"body is not valid UTF-8 form data",
            id="escaped-lone-surrogate",
        ),
        pytest.param(
            "vendor=ac%09me&model=stb-4k&sn=SN-0001", FORM, b"field vendor contains control characters", id="tab"
        ),
        pytest.param(
            "vendor=acme&model=stb-4k&sn=SN-0001&sn=SN-0002", FORM, b"field sn given more than once", id="repeated"
        ),
        pytest.param(
            "vendor=acme&vendor=acme&model=stb-4k&sn=SN-0001",
            FORM,
            b"field vendor given more than once",
            id="repeated-same",
        ),
    ],
)
def test_bad_input_is_400_with_a_reason_and_writes_only_the_attempt_log(client, device, body, content_type, reason):
    before = snapshot()

    response = post(client, body, content_type=content_type)

    assert (response.status_code, response.content) == (400, reason)
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert snapshot() == before
    attempt = ActivationAttempt.objects.get()
    assert attempt.outcome == ActivationOutcome.BAD_REQUEST
    assert "\x00" not in attempt.serial_number and len(attempt.serial_number) <= 128


def test_lying_content_length_is_400(client, device):
    response = post(client, "vendor=acme&model=stb-4k&sn=SN-0001", CONTENT_LENGTH="999999")

    assert (response.status_code, response.content) == (400, b"body too large")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_are_405(client, device, method):
    response = client.generic(method, URL)

    assert (response.status_code, response["Allow"]) == (405, "POST")
    assert ActivationAttempt.objects.count() == 0


def test_attempt_log_records_address_and_user_agent(client, device):
    post(client, "vendor=acme&model=stb-4k&sn=SN-0001", REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="exo/1.0")

    attempt = ActivationAttempt.objects.get()
    assert (attempt.remote_addr, attempt.user_agent, attempt.outcome, attempt.device) == (
        "203.0.113.9",
        "exo/1.0",
        "activated",
        device,
    )


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [
        pytest.param([], "10.0.0.5", id="untrusted-peer-ignores-header"),
        pytest.param(["10.0.0.0/8"], "203.0.113.50", id="trusted-proxy"),
    ],
)
def test_forwarded_for_is_believed_only_from_configured_proxies(client, device, settings, trusted, expected):
    settings.TRUSTED_PROXIES = trusted

    post(client, "vendor=acme&model=stb-4k&sn=SN-0001", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.50")

    assert ActivationAttempt.objects.get().remote_addr == expected


def test_per_serial_rate_limit_gives_429_with_retry_after(client, device, settings):
    settings.ACTIVATION_RATE_LIMIT_SERIAL = "3/60"
    statuses = [post(client, "vendor=acme&model=stb-4k&sn=SN-0001").status_code for _ in range(4)]

    limited = post(client, "vendor=acme&model=stb-4k&sn=SN-0001")

    assert statuses == [200, 409, 409, 429]
    assert limited.status_code == 429 and limited.content == b"too many requests"
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert ActivationAttempt.objects.count() == 3


def test_per_address_rate_limit_covers_bad_requests_too(client, device, settings):
    settings.ACTIVATION_RATE_LIMIT_IP = "2/60"

    statuses = [post(client, "garbage").status_code for _ in range(3)]

    assert statuses == [400, 400, 429]


def test_limits_count_per_address(client, device, settings):
    settings.ACTIVATION_RATE_LIMIT_IP = "1/60"

    first = post(client, "vendor=acme&model=stb-4k&sn=SN-9", REMOTE_ADDR="192.0.2.1").status_code
    other = post(client, "vendor=acme&model=stb-4k&sn=SN-9", REMOTE_ADDR="192.0.2.2").status_code
    again = post(client, "vendor=acme&model=stb-4k&sn=SN-9", REMOTE_ADDR="192.0.2.1").status_code

    assert (first, other, again) == (404, 404, 429)


@pytest.mark.redis
def test_rate_limits_use_atomic_redis_counters_when_redis_is_configured(client, device, settings, redis_url):
    settings.REDIS_URL = redis_url.rsplit("/", 1)[0] + "/13"
    settings.ACTIVATION_RATE_LIMIT_SERIAL = "2/60"
    store = redis.Redis.from_url(settings.REDIS_URL)
    store.flushdb()

    statuses = [post(client, "vendor=acme&model=stb-4k&sn=SN-0001").status_code for _ in range(3)]

    keys = sorted(key.decode() for key in store.keys("rl:*"))
    assert statuses == [200, 409, 429]
    assert [key.split(":")[1] for key in keys] == ["activate-ip", "activate-sn"]
    assert all(0 < store.ttl(key) <= 61 for key in keys)
    assert "SN-0001" not in " ".join(keys)
    store.flushdb()


def test_redis_down_lets_activation_through(client, device, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    response = post(client, "vendor=acme&model=stb-4k&sn=SN-0001")

    assert response.status_code == 200


# --- the CIK helper the device endpoints of later issues use ------------------------------------------------------


def test_cik_header_authenticates_the_device(client, rf, device):
    cik = post(client, "vendor=acme&model=stb-4k&sn=SN-0001").content.decode()

    assert device_from_request(rf.post("/x", HTTP_X_EXOSITE_CIK=cik)) == device


def test_missing_cik_header_is_its_own_error(rf):
    with pytest.raises(CikMissing):
        device_from_request(rf.post("/x"))


@pytest.mark.parametrize("state", ["missing", "unknown", "reenabled", "disabled"])
def test_cik_required_views_answer_the_dialects_401(client, rf, device, state):
    from django.http import HttpResponse

    from provisioning.auth import cik_required

    @cik_required(lambda exc: HttpResponse(exc.code, status=401))
    def view(request, device):
        return HttpResponse(device.serial_number)

    cik = post(client, "vendor=acme&model=stb-4k&sn=SN-0001").content.decode()
    assert view(rf.get("/x", HTTP_X_EXOSITE_CIK=cik)).content == b"SN-0001"
    headers = {} if state == "missing" else {"HTTP_X_EXOSITE_CIK": "f" * 40 if state == "unknown" else cik}
    if state == "reenabled":
        services.device_reenable(device=device)
    if state == "disabled":
        services.device_disable(device=device)

    response = view(rf.get("/x", **headers))

    assert response.status_code == 401
    assert response.content == (b"CIK_MISSING" if state == "missing" else b"CIK_INVALID")
