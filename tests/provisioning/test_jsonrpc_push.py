"""POST /jsonrpc: boxes push provisioningchange notifications with their CIK (Thunder's JSON-RPC dialect)."""

from __future__ import annotations

import json
import socket

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
    return device_services.device_activate(
        vendor=device.model.vendor.name, model=device.model.name, serial="STB-1", remote_addr=None, user_agent=""
    )


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
        # Refused by the edge (portal.kernel.http.BodyLimitMiddleware) before the view, in the dialect's format.
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


# The sanitising layer: what PostgreSQL cannot store, or no notification carries, is refused before anything else.

NUL_ID = '{"jsonrpc":"2.0","id":"a\\u0000b","method":"client.events.1.provisioningchange","params":{"status":200}}'


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(NUL_ID, id="nul-in-id"),
        pytest.param({**EVENT, "params": {"status": 200, "note": "a\x00b"}}, id="nul-in-a-param"),
        pytest.param(
            '{"jsonrpc":"2.0","method":"client.events.1.provisioningchange","params":{"status":200,"note":"\\ud800"}}',
            id="lone-surrogate-in-a-param",
        ),
        pytest.param(
            '{"jsonrpc":"2.0","id":"\\udfff","method":"client.events.1.provisioningchange","params":{"status":200}}',
            id="lone-surrogate-in-id",
        ),
        pytest.param(
            '{"jsonrpc":"2.0","method":"client.events.1.provisioningchange","params":{"status":200,"\\ud800":1}}',
            id="lone-surrogate-in-a-key",
        ),
        pytest.param({**EVENT, "id": 2**64}, id="huge-integer-id"),
        pytest.param({**EVENT, "params": {"status": 200, "n": -(2**63) - 1}}, id="huge-integer-param"),
        pytest.param({**EVENT, "params": {"status": 200, "deep": json.loads("[" * 40 + "]" * 40)}}, id="deep"),
    ],
)
def test_nul_surrogates_huge_integers_and_deep_nesting_are_invalid_requests(client, cik, body):
    response = push(client, body, cik)

    assert response.status_code == 202
    assert response["Content-Type"] == "application/json"
    answer = response.json()
    assert (answer["id"], answer["error"]["code"]) == (None, -32600)
    assert answer["error"]["message"].startswith("Invalid Request: ")
    assert (BoxEvent.objects.count(), Command.objects.count(), SetTopBox.objects.count()) == (0, 0, 0)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({**EVENT, "id": 2**63 - 1}, id="largest-int64-id"),
        pytest.param({**EVENT, "id": "caf\u00e9 \U0001f4fa"}, id="non-ascii-id"),
        pytest.param(
            '{"jsonrpc":"2.0","id":"\\ud83d\\udcfa","method":"client.events.1.provisioningchange",'
            '"params":{"status":200}}',
            id="surrogate-pair-id",
        ),
        pytest.param(
            {**EVENT, "id": 1, "params": {"status": 200, "deep": json.loads("[" * 14 + "]" * 14)}}, id="deep-ok"
        ),
    ],
)
def test_what_the_layer_lets_through(client, cik, body):
    response = push(client, body, cik)

    assert response.status_code == 200
    assert BoxEvent.objects.count() == 1


# The 204 on the wire: a real server process, raw bytes.


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_204_carries_no_content_type_on_the_wire(portal_server):
    device = device_services.device_enable(device=DeviceFactory(serial_number="WIRE-1"))
    cik = device_services.device_activate(
        vendor=device.model.vendor.name, model=device.model.name, serial="WIRE-1", remote_addr=None, user_agent=""
    )
    base = portal_server()
    host, port = base.removeprefix("http://").split(":")
    body = json.dumps(EVENT, separators=(",", ":")).encode()

    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /jsonrpc HTTP/1.1\r\nHost: box.example\r\nContent-Type: application/json\r\n"
            b"X-Exosite-CIK: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (cik.encode(), len(body), body)
        )
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk

    head, _, rest = reply.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 204 No Content"
    names = [line.split(b":", 1)[0].lower() for line in lines[1:]]
    assert b"content-type" not in names
    assert rest == b""
    assert BoxEvent.objects.count() == 1
