"""POST /jsonrpc: boxes push provisioningchange notifications with their CIK (Thunder's JSON-RPC dialect)."""

from __future__ import annotations

import json

import pytest

from devices import services as device_services
from devices.models import Device
from provisioning.models import BoxEvent, Command, SetTopBox
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db
EVENT = {"jsonrpc": "2.0", "method": "client.events.1.provisioningchange", "params": {"status": 200}}


@pytest.fixture
def cik():
    device = device_services.device_enable(device=DeviceFactory(serial_number="STB-1"))
    return device_services.device_activate(vendor=device.model.vendor.name, model=device.model.name, serial="STB-1",
                                           remote_addr=None, user_agent="")  # fmt: skip


def push(client, body, cik=None, **extra):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    headers = {"HTTP_X_EXOSITE_CIK": cik} if cik else {}
    return client.generic("POST", "/jsonrpc", data, content_type="application/json", **headers, **extra)


def test_a_pushed_event_lands_on_the_timeline_and_queues_one_refresh(client, cik):
    response = push(client, EVENT, cik, REMOTE_ADDR="192.0.2.44")
    push(client, {**EVENT, "params": {"status": 500}}, cik)

    assert response.status_code == 204
    box = SetTopBox.objects.get()
    assert (box.thunder_host, box.thunder_port, box.last_event_status) == ("192.0.2.44", 9998, 500)
    assert list(BoxEvent.objects.order_by("pk").values_list("name", "status", "source")) == [
        ("provisioningchange", 200, "push"),
        ("provisioningchange", 500, "push"),
    ]
    assert list(Command.objects.values_list("kind", "state")) == [("refresh", "QUEUED")]


def test_a_request_with_an_id_gets_a_result(client, cik):
    response = push(client, {**EVENT, "id": 7}, cik)

    assert response.status_code == 200
    assert response.json() == {"jsonrpc": "2.0", "id": 7, "result": None}


@pytest.mark.parametrize(
    ("body", "code", "http"),
    [
        pytest.param("{not json", -32700, 202, id="parse-error"),
        pytest.param(b"\xff\xfe", -32700, 202, id="not-utf8"),
        pytest.param([EVENT], -32600, 202, id="batch-array"),
        pytest.param({"method": EVENT["method"], "params": {"status": 200}}, -32600, 202, id="no-jsonrpc"),
        pytest.param({"jsonrpc": "2.0", "method": 5}, -32600, 202, id="method-not-string"),
        pytest.param({**EVENT, "id": [1]}, -32600, 202, id="bad-id"),
        pytest.param({**EVENT, "method": "client.events.1.otherevent"}, -32601, 202, id="unknown-event"),
        pytest.param({**EVENT, "method": "Provisioning.1.provision"}, -32601, 202, id="a-box-method"),
        pytest.param({**EVENT, "params": {"status": "200"}}, -32602, 202, id="status-string"),
        pytest.param({**EVENT, "params": {"status": True}}, -32602, 202, id="status-bool"),
        pytest.param({**EVENT, "params": [200]}, -32602, 202, id="params-array"),
        pytest.param({**EVENT, "pad": "x" * 20_000}, -32600, 202, id="too-large"),
        pytest.param("[" * 5000, -32700, 202, id="deep-nesting"),
        pytest.param({**EVENT, "params": {"status": 2**31}}, -32602, 202, id="status-over-int32"),
        pytest.param({**EVENT, "params": {"status": -(2**31) - 1}}, -32602, 202, id="status-under-int32"),
        pytest.param(
            '{"jsonrpc": "2.0", "method": "client.events.1.provisioningchange", "params": {"status": 1e400}}',
            -32602,
            202,
            id="status-infinite",
        ),
        pytest.param({**EVENT, "params": {"status": 200.0}}, -32602, 202, id="status-float"),
    ],
)
def test_bad_requests_get_the_thunder_error_and_write_nothing(client, cik, body, code, http):
    response = push(client, body, cik)

    assert response.status_code == http
    assert response.json()["error"]["code"] == code
    assert response.json()["jsonrpc"] == "2.0"
    assert (BoxEvent.objects.count(), Command.objects.count(), SetTopBox.objects.count()) == (0, 0, 0)


@pytest.mark.parametrize("header", [None, "0" * 40, "not-a-cik"])
def test_missing_or_wrong_cik_is_401(client, cik, header):
    response = push(client, EVENT, header)

    assert response.status_code == 401
    assert response.json() == {"jsonrpc": "2.0", "id": None, "error": {"code": 401, "message": "Unauthorized"}}
    assert BoxEvent.objects.count() == 0


def test_a_reenabled_devices_old_cik_is_refused(client, cik):
    device_services.device_reenable(device=Device.objects.get(serial_number="STB-1"))

    assert push(client, EVENT, cik).status_code == 401


def test_get_is_405(client):
    assert client.get("/jsonrpc").status_code == 405
