"""The device simulator over real sockets: both plugins, both transports, events, errors and every fault knob.

The clients here are plain httpx and the ``websockets`` library, never the portal's own Thunder client, so that
the simulator is checked against the wire format itself.
"""

from __future__ import annotations

import asyncio
import json
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from aiohttp import web
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from provisioning.simulator import Box, Faults, Fleet, FleetThread, ProvisionState, esn_for, soc_id_for
from tests.conftest import REPO, clean_env
from tests.waiting import await_for

DP = "com.comcast.DeviceProvisioning"
TH = "Provisioning.1"
EVENTS = {"event": "provisioningchange", "id": "client.events.1"}
TIMEOUT = 5.0
TRANSPORTS = ["http", "ws"]


KINDS = {"HARDWARE": "RT.2", "CRYPTANIUM": "CRYPTANIUM.4"}
REASONS = {
    ("HARDWARE", "NOT_PROVISIONED"): "RT_NO_CREDS. No credentials present on the device",
    ("HARDWARE", "IN_PROGRESS"): "RT_IN_PROGRESS. Credential fetch in progress",
    ("HARDWARE", "PROVISIONED"): "RT_GOOD_ACTIVE_PREFETCH_CREDS. Active device and NOT NEW prefetch creds are valid",
    ("HARDWARE", "CORRUPTED"): "RT_CORRUPT_CREDS. Credentials failed the integrity check",
    ("CRYPTANIUM", "NOT_PROVISIONED"): "CRYPTANIUM_NO_CREDS. No Cryptanium credentials present on the device",
    ("CRYPTANIUM", "IN_PROGRESS"): "CRYPTANIUM_IN_PROGRESS. Cryptanium credential fetch in progress",
    ("CRYPTANIUM", "PROVISIONED"): "CRYPTANIUM_GOOD_ACTIVE_CREDS. Active device and Cryptanium creds are valid",
    ("CRYPTANIUM", "CORRUPTED"): "CRYPTANIUM_CORRUPT_CREDS. Cryptanium credentials failed the integrity check",
}


def entry(provision_type: str, state: str) -> dict[str, str]:
    """One provisionTypes item as the wire must show it."""
    return {
        "provisionType": provision_type,
        "provisionKind": KINDS[provision_type],
        "state": state,
        "reason": REASONS[provision_type, state],
    }


def request(method: str, params=None, request_id=1) -> str:
    message = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message)


def ok(result, request_id=1) -> dict:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def error(code: int, message: str, request_id=1) -> dict:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def event(status: int, client_id: str = "client.events.1") -> dict:
    return {"jsonrpc": "2.0", "method": f"{client_id}.provisioningchange", "params": {"status": status}}


async def post(box: Box, body: str | bytes, timeout: float = TIMEOUT) -> httpx.Response:
    async with httpx.AsyncClient(timeout=timeout) as client:
        return await client.post(box.url, content=body)


async def call(transport: str, box: Box, method: str = "", params=None, *, raw: str | bytes | None = None) -> dict:
    """One request on a fresh connection. Over HTTP, also checks the status: 200 for a result, 202 for an error."""
    body = raw if raw is not None else request(method, params)
    if transport == "http":
        response = await post(box, body)
        answer = response.json()
        assert response.status_code == (202 if "error" in answer else 200)
        assert response.headers["content-type"] == "application/json"
        return answer
    async with connect(box.ws_url, subprotocols=["notification"], open_timeout=TIMEOUT) as ws:
        await ws.send(body)
        return json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))


async def ws_call(ws, method: str, params=None, request_id=1) -> dict:
    await ws.send(request(method, params, request_id))
    return json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))


async def next_message(ws, timeout: float = TIMEOUT) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def silent(ws, within: float) -> bool:
    try:
        await asyncio.wait_for(ws.recv(), within)
    except TimeoutError:
        return True
    return False


def refused(box: Box) -> bool:
    try:
        socket.create_connection((box.host, box.port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.fixture
async def start_fleet():
    """Start fleets on the test's own loop; every one of them stops (and frees its ports) at teardown."""
    fleets: list[Fleet] = []

    async def start(count: int = 1, **kwargs) -> Fleet:
        fleet = Fleet(count, **kwargs)
        fleets.append(fleet)
        await fleet.start()
        return fleet

    yield start
    for fleet in fleets:
        await fleet.stop()
    assert all(refused(box) for fleet in fleets for box in fleet.boxes[:3])


# com.comcast.DeviceProvisioning --------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_every_device_provisioning_method_of_a_version_3_box(start_fleet, transport):
    fleet = await start_fleet(2, api_version=3, faults=Faults(provision_seconds=0.3))
    box = fleet.boxes[1]
    good = [entry("HARDWARE", "PROVISIONED"), entry("CRYPTANIUM", "PROVISIONED")]

    assert await call(transport, box, f"{DP}.getApiVersionNumber") == ok({"version": "3", "success": True})
    assert await call(transport, box, f"{DP}.getNetflixESN") == ok({"esn": esn_for(1), "success": True})
    assert await call(transport, box, f"{DP}.1.getSOCId") == ok({"socid": soc_id_for(1), "success": True})
    notified = await call(transport, box, f"{DP}.notifyProvisioning", {"provisionType": "CRYPTANIUM"})
    assert notified == ok({"success": True})
    assert box.notified_types == ["CRYPTANIUM"]
    assert await call(transport, box, f"{DP}.provisionCheck") == ok({"provisionTypes": good, "success": True})
    started = await call(transport, box, f"{DP}.1.reprovision", {"provisionType": "CRYPTANIUM"})
    progress = [entry("HARDWARE", "PROVISIONED"), entry("CRYPTANIUM", "IN_PROGRESS")]
    assert started == ok({"provisionTypes": progress, "success": True})


@pytest.mark.parametrize(
    ("version", "allowed"),
    [
        pytest.param(1, {"getApiVersionNumber", "provisionCheck"}, id="v1"),
        pytest.param(2, {"getApiVersionNumber", "provisionCheck", "getNetflixESN", "notifyProvisioning"}, id="v2"),
        pytest.param(
            3, {"getApiVersionNumber", "provisionCheck", "getNetflixESN", "notifyProvisioning", "getSOCId"}, id="v3"
        ),
    ],
)
async def test_methods_above_the_box_api_version_are_unknown(start_fleet, version, allowed):
    fleet = await start_fleet(1, api_version=version)
    methods = ["getApiVersionNumber", "provisionCheck", "getNetflixESN", "notifyProvisioning", "getSOCId"]

    answers = {
        name: await call("http", fleet.boxes[0], f"{DP}.{name}", {"provisionType": "HARDWARE"}) for name in methods
    }

    assert {name for name, answer in answers.items() if "result" in answer} == allowed
    assert all(answers[name] == error(-32601, "Unknown method.") for name in set(methods) - allowed)
    assert fleet.boxes[0].notified_types == (["HARDWARE"] if "notifyProvisioning" in allowed else [])


UNSUPPORTED_VERSION = (-32602, "Requested version is not supported.")
DP_METHODS = {"getApiVersionNumber": 1, "provisionCheck": 1, "getNetflixESN": 2, "notifyProvisioning": 2, "getSOCId": 3}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("api_version", [1, 2, 3])
async def test_versioned_designators_up_to_the_box_api_version(start_fleet, transport, api_version):
    fleet = await start_fleet(1, api_version=api_version)
    box = fleet.boxes[0]

    answers = {
        (n, name): await call(transport, box, f"{DP}.{n}.{name}", {"provisionType": "HARDWARE"})
        for n in range(0, 5)
        for name in DP_METHODS
    }

    for (n, name), answer in answers.items():
        if not 1 <= n <= api_version:
            assert answer == error(*UNSUPPORTED_VERSION), (n, name)
        elif DP_METHODS[name] > api_version:
            assert answer == error(-32601, "Unknown method."), (n, name)
        else:
            assert "result" in answer, (n, name)
    assert answers[api_version, "getApiVersionNumber"] == ok({"version": str(api_version), "success": True})


@pytest.mark.parametrize(
    ("designator", "expected"),
    [
        pytest.param(f"{DP}.01.getSOCId", ok({"socid": soc_id_for(0), "success": True}), id="leading-zero"),
        pytest.param(f"{DP}.003.getSOCId", ok({"socid": soc_id_for(0), "success": True}), id="leading-zeros"),
        pytest.param(f"{DP}.00.getSOCId", error(*UNSUPPORTED_VERSION), id="zero"),
        pytest.param(f"{DP}.259.getSOCId", error(*UNSUPPORTED_VERSION), id="wraps-in-a-byte"),
        pytest.param(f"{DP}.{'9' * 5000}.getSOCId", error(*UNSUPPORTED_VERSION), id="huge"),
        pytest.param(f"{DP}.\u00b2.getSOCId", error(-32601, "Unknown method."), id="superscript-two"),
        pytest.param(f"{DP}.1.", error(-32601, "Unknown method."), id="no-method"),
        pytest.param("Provisioning.1.id", ok("WPE00000uCfrLF45"), id="provisioning-1"),
        pytest.param("Provisioning.3.id", error(*UNSUPPORTED_VERSION), id="provisioning-3"),
        pytest.param("Provisioning.0.id", error(*UNSUPPORTED_VERSION), id="provisioning-0"),
    ],
)
async def test_version_numbers_are_read_as_thunder_reads_them(start_fleet, designator, expected):
    fleet = await start_fleet(1, api_version=3)

    assert await call("http", fleet.boxes[0], raw=request(designator)) == expected


@pytest.mark.parametrize("callsign", [f"{DP}.1", f"{DP}.2", "Provisioning.1"])
async def test_events_register_and_unregister_with_a_versioned_designator(start_fleet, callsign):
    fleet = await start_fleet(1, api_version=2, faults=Faults(provision_seconds=0))
    box = fleet.boxes[0]
    async with connect(box.ws_url, subprotocols=["notification"], open_timeout=TIMEOUT) as ws:
        assert await ws_call(ws, f"{callsign}.register", EVENTS) == ok(0)
        await box.notify(200)
        assert await next_message(ws) == event(200)

        assert await ws_call(ws, f"{callsign}.unregister", EVENTS, request_id=2) == ok(0, 2)
        await box.notify(500)
        assert await silent(ws, 0.3)
    assert box.subscriber_count == 0


@pytest.mark.parametrize("designator", [f"{DP}.3.register", "Provisioning.2.register"])
async def test_registering_on_a_version_the_box_lacks_is_refused(start_fleet, designator):
    fleet = await start_fleet(1, api_version=2)
    box = fleet.boxes[0]
    async with connect(box.ws_url, subprotocols=["notification"], open_timeout=TIMEOUT) as ws:
        assert await ws_call(ws, designator, EVENTS) == error(*UNSUPPORTED_VERSION)
        assert box.subscriber_count == 0


async def test_api_versions_default_to_one_plus_index_modulo_three(start_fleet):
    fleet = await start_fleet(4)

    versions = [(await call("http", box, f"{DP}.getApiVersionNumber"))["result"]["version"] for box in fleet.boxes]

    assert versions == ["1", "2", "3", "1"]


@pytest.mark.parametrize("method", ["reprovision", "notifyProvisioning"])
@pytest.mark.parametrize(
    ("params", "why"),
    [
        pytest.param(None, "provisionType is required", id="no-params"),
        pytest.param({}, "provisionType is required", id="missing"),
        pytest.param(
            {"provisionType": "SOFTWARE"},
            'Invalid provisionType "SOFTWARE": expected one of HARDWARE, CRYPTANIUM',
            id="invalid",
        ),
        pytest.param(
            {"provisionType": 7}, "Invalid provisionType 7: expected one of HARDWARE, CRYPTANIUM", id="not-a-string"
        ),
        pytest.param(
            {"provisionType": "CRYPTANIUM"},
            "provisionType CRYPTANIUM is not supported on this device",
            id="unsupported",
        ),
    ],
)
async def test_a_bad_provision_type_is_a_failed_result_and_changes_nothing(start_fleet, method, params, why):
    fleet = await start_fleet(1, api_version=3)
    box = fleet.boxes[0]  # supports HARDWARE only, as the seed's example box

    answer = await call("http", box, f"{DP}.{method}", params)

    assert answer == ok({"success": False, "error": why})
    assert box.provision_check() == [entry("HARDWARE", "PROVISIONED")]
    assert box.notified_types == []


async def test_params_that_are_not_an_object_are_invalid(start_fleet):
    fleet = await start_fleet(1)

    answer = await call("http", fleet.boxes[0], f"{DP}.reprovision", ["HARDWARE"])

    assert answer == error(-32602, "Invalid params")
    assert fleet.boxes[0].type_state("HARDWARE") is ProvisionState.PROVISIONED


async def test_netflix_esn_is_empty_until_the_box_is_provisioned(start_fleet):
    fleet = await start_fleet(10, api_version=2, faults=Faults(provision_seconds=0))
    box = fleet.boxes[9]  # every fifth box starts NOT_PROVISIONED; this one supports both types

    checked = await call("http", box, f"{DP}.provisionCheck")
    before = await call("http", box, f"{DP}.getNetflixESN")
    await call("http", box, f"{DP}.reprovision", {"provisionType": "HARDWARE"})
    after = await call("http", box, f"{DP}.getNetflixESN")

    nothing = [entry("HARDWARE", "NOT_PROVISIONED"), entry("CRYPTANIUM", "NOT_PROVISIONED")]
    assert checked == ok({"provisionTypes": nothing, "success": True})
    assert before == ok({"esn": "", "success": True})
    assert after == ok({"esn": esn_for(9), "success": True})


# Provisioning (Thunder) ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_every_provisioning_method_and_property(start_fleet, transport):
    fleet = await start_fleet(5, faults=Faults(provision_seconds=0.3))
    box = fleet.boxes[4]  # never provisioned: status 0, no tokens

    assert await call(transport, box, f"{TH}.id") == ok(box.provision_id)
    assert await call(transport, box, f"{TH}.state") == ok({"id": box.provision_id, "status": 0, "tokens": []})
    assert await call(transport, box, f"{TH}.index", {"label": "cobalt", "index": 3}) == ok(None)
    assert box.indexes == {"cobalt": 3}
    assert await call(transport, box, f"{TH}.provision") == ok(None)
    assert await call(transport, box, "Provisioning.provision") == error(12, "ERROR_INPROGRESS")
    final = {"id": box.provision_id, "status": 200, "tokens": ["netflix, playready"]}
    await await_for(lambda: box.platform_state() == final, timeout=TIMEOUT, interval=0.02, message=box.platform_state)
    assert await call(transport, box, "Provisioning.state") == ok(final)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"label": 5, "index": 0}, id="label-not-string"),
        pytest.param({"label": "cobalt", "index": -1}, id="negative"),
        pytest.param({"label": "cobalt", "index": 2**32}, id="over-32-bits"),
        pytest.param({"label": "cobalt", "index": 1.5}, id="fraction"),
        pytest.param({"label": "cobalt", "index": "0"}, id="index-string"),
        pytest.param({"label": "cobalt", "index": True}, id="boolean"),
        pytest.param(["cobalt", 0], id="array"),
    ],
)
async def test_index_with_bad_params_is_invalid_params(start_fleet, params):
    fleet = await start_fleet(1)
    box = fleet.boxes[0]

    answer = await call("http", box, f"{TH}.index", params)

    assert answer == error(-32602, "Invalid params")
    assert box.indexes == {}


async def test_index_params_are_optional_as_in_the_seed(start_fleet):
    fleet = await start_fleet(1)

    assert await call("http", fleet.boxes[0], f"{TH}.index") == ok(None)
    assert await call("http", fleet.boxes[0], f"{TH}.index", {"label": "x", "index": 2**32 - 1}) == ok(None)
    assert fleet.boxes[0].indexes == {"": 0, "x": 2**32 - 1}


@pytest.mark.parametrize("prop", ["id", "state"])
async def test_writing_a_read_only_property_is_invalid_params(start_fleet, prop):
    fleet = await start_fleet(1)

    assert await call("http", fleet.boxes[0], f"{TH}.{prop}", {"id": "other"}) == error(-32602, "Invalid params")
    assert await call("http", fleet.boxes[0], f"{TH}.id") == ok("WPE00000uCfrLF45")


# Envelope errors ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("{not json", error(-32700, "Parse error", None), id="parse-error"),
        pytest.param(b"\xff\xfe", error(-32700, "Parse error", None), id="not-utf8"),
        pytest.param("[" * 100_000, error(-32700, "Parse error", None), id="too-deep"),
        pytest.param("[]", error(-32600, "Invalid Request", None), id="batch"),
        pytest.param('"text"', error(-32600, "Invalid Request", None), id="not-an-object"),
        pytest.param('{"id": 7, "method": "Provisioning.1.id"}', error(-32600, "Invalid Request", 7), id="no-jsonrpc"),
        pytest.param(
            '{"jsonrpc": "1.0", "id": 7, "method": "Provisioning.1.id"}',
            error(-32600, "Invalid Request", 7),
            id="jsonrpc-1.0",
        ),
        pytest.param('{"jsonrpc": "2.0", "id": 7}', error(-32600, "Invalid Request", 7), id="no-method"),
        pytest.param(
            '{"jsonrpc": "2.0", "id": 7, "method": 3}', error(-32600, "Invalid Request", 7), id="method-number"
        ),
        pytest.param(
            '{"jsonrpc": "2.0", "id": {}, "method": "Provisioning.1.id"}',
            error(-32600, "Invalid Request", None),
            id="id-object",
        ),
        pytest.param(request("Nobody.1.id", request_id="a"), error(-32601, "Unknown method.", "a"), id="callsign"),
        pytest.param(request(f"{DP}.getEverything"), error(-32601, "Unknown method."), id="method"),
        pytest.param(
            request(f"{DP}.2.provisionCheck"),
            error(-32602, "Requested version is not supported."),
            id="version-2-on-a-version-1-box",
        ),
        pytest.param(
            request("Provisioning.2.id"),
            error(-32602, "Requested version is not supported."),
            id="provisioning-version-2",
        ),
        pytest.param(request("Provisioning"), error(-32601, "Unknown method."), id="bare-callsign"),
        pytest.param(request("provisionCheck"), error(-32601, "Unknown method."), id="no-callsign"),
        pytest.param(request("provisioning.1.id"), error(-32601, "Unknown method."), id="case-sensitive"),
    ],
)
async def test_envelope_errors_have_thunder_codes_and_http_202(start_fleet, transport, raw, expected):
    fleet = await start_fleet(1)
    if transport == "ws" and isinstance(raw, bytes):
        raw = raw.decode("latin-1")  # a text frame must be UTF-8: send the same characters, still not JSON

    assert await call(transport, fleet.boxes[0], raw=raw) == expected


async def test_a_request_without_id_is_answered_with_a_null_id(start_fleet):
    fleet = await start_fleet(1)

    answer = await call("http", fleet.boxes[0], raw='{"jsonrpc": "2.0", "method": "Provisioning.1.id"}')

    assert answer == ok("WPE00000uCfrLF45", None)


async def test_both_transports_send_the_same_bytes(start_fleet):
    fleet = await start_fleet(1)
    box = fleet.boxes[0]

    over_http = (await post(box, request(f"{DP}.provisionCheck", request_id=42))).content
    async with connect(box.ws_url, subprotocols=["notification"]) as ws:
        await ws.send(request(f"{DP}.provisionCheck", request_id=42))
        over_ws = await ws.recv()

    assert over_ws == over_http.decode()


async def test_other_paths_are_404_and_get_without_upgrade_is_405(start_fleet):
    fleet = await start_fleet(1)
    box = fleet.boxes[0]

    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        elsewhere = await client.post(f"{box.url}/Provisioning", content=request(f"{TH}.id"))
        root = await client.get(f"http://{box.address}/")
        plain_get = await client.get(box.url)
        put = await client.put(box.url, content=request(f"{TH}.id"))

    assert [elsewhere.status_code, root.status_code, plain_get.status_code, put.status_code] == [404, 404, 405, 405]


@pytest.mark.parametrize(
    ("asked", "chosen"), [(["notification"], "notification"), (None, None)], ids=["notification", "none"]
)
async def test_websocket_accepts_the_notification_subprotocol_or_none(start_fleet, asked, chosen):
    fleet = await start_fleet(1)

    async with connect(fleet.boxes[0].ws_url, subprotocols=asked) as ws:
        assert ws.subprotocol == chosen
        assert await ws_call(ws, f"{TH}.id") == ok("WPE00000uCfrLF45")


# Events and the state machine --------------------------------------------------------------------------------------


async def test_reprovision_runs_in_progress_then_provisioned_with_an_event(start_fleet):
    fleet = await start_fleet(1, faults=Faults(provision_seconds=0.3))
    box = fleet.boxes[0]

    async with connect(box.ws_url, subprotocols=["notification"]) as ws:
        assert await ws_call(ws, f"{DP}.register", EVENTS) == ok(0)
        started = await ws_call(ws, f"{DP}.reprovision", {"provisionType": "HARDWARE"}, request_id=2)
        again = await ws_call(ws, f"{DP}.1.reprovision", {"provisionType": "HARDWARE"}, request_id=3)
        assert box.type_state("HARDWARE") is ProvisionState.IN_PROGRESS
        notification = await next_message(ws)
        checked = await ws_call(ws, f"{DP}.provisionCheck", request_id=4)

    assert started == ok({"provisionTypes": [entry("HARDWARE", "IN_PROGRESS")], "success": True}, 2)
    assert again == error(12, "ERROR_INPROGRESS", 3)
    assert notification == event(200)
    assert checked == ok({"provisionTypes": [entry("HARDWARE", "PROVISIONED")], "success": True}, 4)


async def test_a_corrupt_run_ends_corrupted_with_status_500(start_fleet):
    fleet = await start_fleet(2, faults=Faults(provision_seconds=0.1, corrupt_share=1.0))
    box = fleet.boxes[1]

    async with connect(box.ws_url) as ws:
        assert await ws_call(ws, f"{TH}.register", {"event": "provisioningchange", "id": "portal.7"}) == ok(0)
        await call("http", box, f"{DP}.reprovision", {"provisionType": "CRYPTANIUM"})
        type_event = await next_message(ws)
        await call("http", box, f"{TH}.provision")
        platform_event = await next_message(ws)

    assert type_event == event(500, "portal.7")
    assert platform_event == event(500, "portal.7")
    assert box.provision_check() == [entry("HARDWARE", "PROVISIONED"), entry("CRYPTANIUM", "CORRUPTED")]
    assert box.platform_state() == {"id": box.provision_id, "status": 500, "tokens": []}


async def test_thunder_provision_notifies_subscribers_of_either_callsign(start_fleet):
    fleet = await start_fleet(1, faults=Faults(provision_seconds=0.1))
    box = fleet.boxes[0]

    async with connect(box.ws_url) as thunder, connect(box.ws_url) as rdk, connect(box.ws_url) as bystander:
        assert await ws_call(thunder, f"{TH}.register", EVENTS) == ok(0)
        assert await ws_call(rdk, f"{DP}.1.register", {"event": "provisioningchange", "id": "rdk"}) == ok(0)
        assert await ws_call(rdk, f"{DP}.register", {"event": "provisioningchange", "id": "rdk"}) == ok(0)
        assert await call("http", box, "Provisioning.provision") == ok(None)

        assert await next_message(thunder) == event(200)
        assert await next_message(rdk) == event(200, "rdk")
        assert await silent(rdk, 0.3)  # registered twice, notified once
        assert await silent(bystander, 0.1)


async def test_no_event_after_unregister(start_fleet):
    fleet = await start_fleet(1, faults=Faults(provision_seconds=0.1))
    box = fleet.boxes[0]

    async with connect(box.ws_url) as ws:
        await ws_call(ws, f"{TH}.register", EVENTS)
        assert await ws_call(ws, f"{TH}.unregister", EVENTS, request_id=2) == ok(0, 2)
        assert await ws_call(ws, f"{TH}.unregister", EVENTS, request_id=3) == ok(0, 3)
        await ws_call(ws, f"{DP}.reprovision", {"provisionType": "HARDWARE"}, request_id=4)

        assert await silent(ws, 0.5)
    assert box.type_state("HARDWARE") is ProvisionState.PROVISIONED
    assert box.subscriber_count == 0


@pytest.mark.parametrize(
    ("transport", "params", "expected"),
    [
        pytest.param("http", EVENTS, error(5, "ERROR_ILLEGAL_STATE"), id="over-http"),
        pytest.param("ws", {"event": "statechange", "id": "c"}, error(22, "ERROR_UNKNOWN_KEY"), id="unknown-event"),
        pytest.param("ws", {"event": "provisioningchange"}, error(-32602, "Invalid params"), id="no-id"),
        pytest.param("ws", None, error(-32602, "Invalid params"), id="no-params"),
    ],
)
async def test_bad_registrations(start_fleet, transport, params, expected):
    fleet = await start_fleet(1)

    assert await call(transport, fleet.boxes[0], f"{TH}.register", params) == expected
    assert fleet.boxes[0].subscriber_count == 0


async def test_set_type_state_and_notify_for_tests(start_fleet):
    fleet = await start_fleet(2)
    box = fleet.boxes[1]

    async with connect(box.ws_url) as ws:
        await ws_call(ws, f"{DP}.register", EVENTS)
        box.set_type_state("CRYPTANIUM", "CORRUPTED")
        assert await silent(ws, 0.1)  # setting a state is silent; notify() is the explicit event
        await box.notify(404)
        assert await next_message(ws) == event(404)

    box.set_type_state("HARDWARE", ProvisionState.IN_PROGRESS)
    assert await call("http", box, f"{DP}.reprovision", {"provisionType": "HARDWARE"}) == error(12, "ERROR_INPROGRESS")
    assert box.provision_check() == [entry("HARDWARE", "IN_PROGRESS"), entry("CRYPTANIUM", "CORRUPTED")]


async def test_set_type_state_cancels_a_running_reprovision(start_fleet):
    fleet = await start_fleet(1, faults=Faults(provision_seconds=0.2))
    box = fleet.boxes[0]
    await call("http", box, f"{DP}.reprovision", {"provisionType": "HARDWARE"})

    box.set_type_state("HARDWARE", "NOT_PROVISIONED")
    await asyncio.sleep(0.4)  # not a bet: twice the run's 0.2 s pass, in which the cancelled run must not finish

    assert box.type_state("HARDWARE") is ProvisionState.NOT_PROVISIONED


# Faults --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_latency_is_added_before_every_answer(start_fleet, transport):
    fleet = await start_fleet(2)
    fleet.boxes[1].faults.latency = 0.4

    started = time.monotonic()
    await call(transport, fleet.boxes[0], f"{TH}.id")
    quick = time.monotonic() - started
    started = time.monotonic()
    slow_error = await call(transport, fleet.boxes[1], raw="{")
    slow = time.monotonic() - started

    assert slow >= 0.4 > quick
    assert slow_error == error(-32700, "Parse error", None)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("knob", "expected"),
    [
        pytest.param("busy_share", error(12, "ERROR_INPROGRESS"), id="busy"),
        pytest.param("unavailable_share", error(2, "ERROR_UNAVAILABLE"), id="unavailable"),
    ],
)
async def test_busy_and_unavailable_shares(start_fleet, transport, knob, expected):
    fleet = await start_fleet(2, faults=Faults(**{knob: 1.0}, provision_seconds=0))
    box = fleet.boxes[1]

    answers = [await call(transport, box, f"{DP}.reprovision", {"provisionType": "CRYPTANIUM"}) for _ in range(3)]

    assert answers == [expected] * 3
    assert box.provision_check()[1] == entry("CRYPTANIUM", "PROVISIONED")  # the call never ran
    assert box.calls == {"reprovision": 3}  # yet it reached the box


async def test_a_per_box_override_touches_only_that_box(start_fleet):
    fleet = await start_fleet(3)

    fleet.boxes[1].faults.unavailable_share = 1.0

    assert await call("http", fleet.boxes[1], f"{TH}.id") == error(2, "ERROR_UNAVAILABLE")
    assert await call("http", fleet.boxes[0], f"{TH}.id") == ok(fleet.boxes[0].provision_id)
    assert await call("http", fleet.boxes[2], f"{TH}.id") == ok(fleet.boxes[2].provision_id)


async def test_shares_with_a_seed_are_reproducible(start_fleet):
    faults = Faults(busy_share=0.5, seed=7)
    first, second = await start_fleet(1, faults=faults), await start_fleet(1, faults=faults)

    async def pattern(fleet: Fleet) -> list[bool]:
        return ["error" in await call("http", fleet.boxes[0], f"{TH}.id") for _ in range(16)]

    one, two = await pattern(first), await pattern(second)
    assert one == two
    assert 0 < sum(one) < 16


async def test_drop_closes_the_http_connection_without_an_answer(start_fleet):
    fleet = await start_fleet(1, faults=Faults(drop_share=1.0))

    with pytest.raises(httpx.RemoteProtocolError):
        await post(fleet.boxes[0], request(f"{TH}.id"))


async def test_drop_closes_the_websocket_without_an_answer(start_fleet):
    fleet = await start_fleet(1)
    box = fleet.boxes[0]

    async with connect(box.ws_url) as ws:
        assert await ws_call(ws, f"{TH}.id") == ok(box.provision_id)
        box.faults.drop_share = 1.0
        await ws.send(request(f"{TH}.id"))
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(ws.recv(), TIMEOUT)


async def test_a_dead_box_accepts_connections_but_never_answers(start_fleet):
    fleet = await start_fleet(2, faults=Faults(dead_share=1.0))
    box = fleet.boxes[0]

    with socket.create_connection((box.host, box.port), timeout=1):
        pass  # the TCP handshake succeeds
    with pytest.raises(httpx.ReadTimeout):
        await post(box, request(f"{TH}.id"), timeout=0.3)
    with pytest.raises(TimeoutError):
        async with connect(box.ws_url, open_timeout=0.3):
            pass
    started = time.monotonic()
    await fleet.stop()  # callers left hanging do not hold the shutdown up
    assert time.monotonic() - started < 1.5


async def test_a_box_that_dies_mid_session_ignores_frames(start_fleet):
    fleet = await start_fleet(1)
    box = fleet.boxes[0]

    async with connect(box.ws_url) as ws:
        box.dead = True
        await ws.send(request(f"{TH}.id"))
        assert await silent(ws, 0.3)
        box.dead = False
        assert await ws_call(ws, f"{TH}.id", request_id=2) == ok(box.provision_id, 2)


def test_dead_share_picks_a_stable_subset_of_boxes():
    boxes = Fleet(100, faults=Faults(dead_share=0.3, seed=1)).boxes

    dead = [box.index for box in boxes if box.dead]

    assert 15 < len(dead) < 45
    assert dead == [box.index for box in Fleet(100, faults=Faults(dead_share=0.3, seed=1)).boxes if box.dead]


@pytest.mark.parametrize(
    "faults",
    [{"busy_share": 1.5}, {"drop_share": -0.1}, {"latency": -1}, {"provision_seconds": -1}],
    ids=["busy>1", "drop<0", "latency<0", "seconds<0"],
)
def test_faults_refuse_impossible_values(faults):
    with pytest.raises(ValueError):
        Faults(**faults)


# Fleet, identities, scale ----------------------------------------------------------------------------------------


def test_identities_are_the_seed_for_box_0_and_distinct_for_others():
    boxes = Fleet(1000).boxes

    assert (boxes[0].provision_id, boxes[0].esn, boxes[0].soc_id) == (
        "WPE00000uCfrLF45",
        "CMCSTX100000000000000000000000000001000000",
        "001b08011000082a",
    )
    for attribute in ("provision_id", "esn", "soc_id", "serial_number"):
        assert len({getattr(box, attribute) for box in boxes}) == 1000
    assert all(re.fullmatch(r"WPE\d{5}[0-9A-Za-z]{8}", box.provision_id) for box in boxes)
    assert all(re.fullmatch(r"CMCSTX1\d{35}", box.esn) and re.fullmatch(r"[0-9a-f]{16}", box.soc_id) for box in boxes)
    both, hardware_only = ("HARDWARE", "CRYPTANIUM"), ("HARDWARE",)
    assert [tuple(box.provision_types) for box in boxes[:5]] == [hardware_only, both, both, both, hardware_only]


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports that are free right now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if all(port_free(base + offset) for offset in range(1, count)):
            return base
    raise AssertionError(f"no {count} consecutive free ports")


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def test_fixed_ports_are_contiguous_from_the_base_port(start_fleet):
    base = free_ports(3)
    fleet = await start_fleet(3, base_port=base)

    assert [box.address for box in fleet.boxes] == [f"127.0.0.1:{base + i}" for i in range(3)]
    assert [(await call("http", box, f"{TH}.id"))["result"] for box in fleet.boxes] == [
        box.provision_id for box in fleet.boxes
    ]


async def test_a_port_in_use_fails_the_start_and_frees_the_others():
    first = free_ports(2)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", first + 1))
        taken.listen()
        fleet = Fleet(2, base_port=first)  # box 1 wants the taken port

        with pytest.raises(OSError):
            await fleet.start()

    assert refused(fleet.boxes[0])


async def test_200_boxes_start_and_each_answers_for_itself(start_fleet):
    started = time.monotonic()
    fleet = await start_fleet(200)
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=0)

    async with httpx.AsyncClient(timeout=TIMEOUT, limits=limits) as client:
        answers = await asyncio.gather(
            *(client.post(box.url, content=request(f"{TH}.id", request_id=box.index)) for box in fleet.boxes)
        )

    assert [answer.json() for answer in answers] == [ok(box.provision_id, box.index) for box in fleet.boxes]
    assert len({box.port for box in fleet.boxes}) == 200
    assert time.monotonic() - started < 10


# The seeds' examples are replayed from the documents themselves: tests/acceptance/test_seed_000_*.py, _001_*.py.


# FleetThread, the management command, the portal link --------------------------------------------------------------


def test_fleet_thread_serves_synchronous_callers_and_stops_cleanly():
    threads_before = set(threading.enumerate())

    with FleetThread(3, faults=Faults(provision_seconds=0)) as running:
        box = running.boxes[2]
        answer = httpx.post(box.url, content=request(f"{TH}.id"), timeout=TIMEOUT).json()
        assert running.run(lambda: box.set_type_state("HARDWARE", "NOT_PROVISIONED")) is None
        assert running.run(lambda: asyncio.sleep(0, result="done")) == "done"
        state = httpx.post(box.url, content=request(f"{DP}.provisionCheck"), timeout=TIMEOUT).json()

    assert answer == ok(box.provision_id)
    assert state["result"]["provisionTypes"][0] == entry("HARDWARE", "NOT_PROVISIONED")
    assert set(threading.enumerate()) == threads_before
    assert refused(box)


def test_fleet_thread_can_be_stopped_twice_and_refuses_a_second_start():
    running = FleetThread(1).start()
    with pytest.raises(RuntimeError):
        running.start()
    running.stop()
    running.stop()
    with pytest.raises(RuntimeError):
        running.run(lambda: None)


def read_lines(stream, into: queue.Queue) -> threading.Thread:
    thread = threading.Thread(target=lambda: [into.put(line) for line in stream], daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_management_command_serves_until_sigint():
    command = [sys.executable, "manage.py", "simulate_devices", "--count", "3", "--port", "0", "--api-version", "3"]
    proc = subprocess.Popen(
        command, cwd=REPO, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: queue.Queue = queue.Queue()
    reader = read_lines(proc.stdout, lines)
    try:
        seen = [lines.get(timeout=60) for _ in range(4)]
        port = int(re.search(r"box  2  127\.0\.0\.1:(\d+)", seen[3]).group(1))
        answer = httpx.post(f"http://127.0.0.1:{port}/jsonrpc", content=request(f"{DP}.getSOCId"), timeout=TIMEOUT)

        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
        proc.stdout.close()
    rest = [lines.get_nowait() for _ in range(lines.qsize())]

    assert seen[0] == "Simulating 3 set-top box(es); Ctrl-C or SIGTERM stops them.\n"
    assert answer.json() == ok({"socid": soc_id_for(2), "success": True})
    assert (code, rest) == (0, ["Simulator stopped.\n"])


@pytest.fixture
async def fake_portal():
    """A stand-in for the portal's activation and device endpoints that records what the boxes send."""
    seen: list[tuple] = []

    async def activate(request: web.Request) -> web.Response:
        seen.append(("activate", dict(await request.post())))
        return web.Response(text="c" * 40, content_type="text/plain")

    async def device(request: web.Request) -> web.Response:
        seen.append(("event", request.headers.get("X-Exosite-CIK"), await request.text()))
        return web.json_response({"jsonrpc": "2.0", "id": None, "result": None})

    app = web.Application()
    app.router.add_post("/provision/activate", activate)
    app.router.add_post("/jsonrpc", device)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", seen
    await runner.cleanup()


async def test_boxes_activate_against_the_portal_and_push_their_events(start_fleet, fake_portal):
    url, seen = fake_portal
    fleet = await start_fleet(1, portal_url=url, faults=Faults(provision_seconds=0), vendor="acme", model="stb-4k")

    await await_for(lambda: fleet.boxes[0].cik is not None, timeout=TIMEOUT, interval=0.02)
    await call("http", fleet.boxes[0], f"{TH}.provision")
    await await_for(lambda: len(seen) == 2, timeout=TIMEOUT, interval=0.02)

    assert seen == [
        ("activate", {"vendor": "acme", "model": "stb-4k", "sn": "SIM000000"}),
        ("event", "c" * 40, '{"jsonrpc":"2.0","method":"client.events.1.provisioningchange","params":{"status":200}}'),
    ]


async def test_an_unreachable_portal_is_logged_and_never_breaks_the_box(start_fleet, caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    fleet = await start_fleet(1, portal_url=closed, faults=Faults(provision_seconds=0))

    assert await call("http", fleet.boxes[0], f"{TH}.provision") == ok(None)
    await await_for(lambda: "activation failed" in caplog.text, timeout=TIMEOUT, interval=0.02)
    assert fleet.boxes[0].cik is None
    assert await call("http", fleet.boxes[0], f"{TH}.state") == ok(fleet.boxes[0].platform_state())
