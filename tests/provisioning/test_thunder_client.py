"""The Thunder client against the device simulator over real sockets: every method, both transports, each error."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from provisioning import thunder
from provisioning.simulator import Faults, FleetThread

TRANSPORTS = ["http", "ws"]


@pytest.fixture(scope="module")
def fleet():
    with FleetThread(4, api_version=None, faults=Faults(provision_seconds=0.3)) as running:
        yield running


def box_with_version(fleet, version: int):
    return next(box for box in fleet.boxes if box.api_version == version)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_read_method_of_a_version_3_box(fleet, transport):
    box = box_with_version(fleet, 3)
    with thunder.ThunderClient(box.address, transport=transport, timeout=3) as client:
        assert client.api_version() == 3
        statuses = client.provision_check()
        assert [(s.provision_type.value, s.kind, s.state.value, s.reason) for s in statuses] == [
            (item["provisionType"], item["provisionKind"], item["state"], item["reason"])
            for item in box.provision_check()
        ]
        assert client.soc_id() == box.soc_id
        assert isinstance(client.netflix_esn(), str)
        assert client.provision_id() == box.provision_id
        state = client.state()
        assert state.provision_id == box.provision_id and isinstance(state.status, int)


def test_box_0_answers_with_the_seed_values(fleet):
    with thunder.ThunderClient(fleet.boxes[0].address, timeout=3) as client:
        assert client.provision_id() == "WPE00000uCfrLF45"
        assert client.state() == thunder.PlatformState("WPE00000uCfrLF45", 200, ("netflix, playready",))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_methods_a_box_lacks_are_never_called(fleet, transport):
    box = box_with_version(fleet, 1)
    with thunder.ThunderClient(box.address, transport=transport, timeout=3) as client:
        with pytest.raises(thunder.Unsupported):
            client.netflix_esn()
        with pytest.raises(thunder.Unsupported):
            client.soc_id()
        # The box itself would have said -32601: the client asked only for its version.
        with pytest.raises(thunder.Failed) as direct:
            client.call(f"{thunder.DEVICE_PROVISIONING}.getSOCId")
        assert direct.value.code == thunder.METHOD_NOT_FOUND
        assert direct.value.retry == thunder.Retry.NEVER


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reprovision_then_busy_while_in_progress(transport):
    with (
        FleetThread(1, api_version=2, faults=Faults(provision_seconds=5)) as own,
        thunder.ThunderClient(own.boxes[0].address, transport=transport, timeout=3) as client,
    ):
        statuses = client.reprovision(thunder.ProvisionType.HARDWARE)
        hardware = next(s for s in statuses if s.provision_type == thunder.ProvisionType.HARDWARE)
        assert hardware.state == thunder.ProvisionState.IN_PROGRESS
        with pytest.raises(thunder.InProgress) as busy:
            client.reprovision(thunder.ProvisionType.HARDWARE)
        assert (busy.value.code, busy.value.retry) == (12, thunder.Retry.LATER)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_provision_and_index(transport):
    with (
        FleetThread(1, api_version=3, faults=Faults(provision_seconds=5)) as own,
        thunder.ThunderClient(own.boxes[0].address, transport=transport, timeout=3) as client,
    ):
        client.set_index("cobalt", 0)
        client.provision()
        with pytest.raises(thunder.InProgress):
            client.provision()
        with pytest.raises(thunder.Failed):
            client.set_index("cobalt", -1)


@pytest.mark.parametrize(
    ("faults", "error", "retry"),
    [
        pytest.param(Faults(unavailable_share=1.0), thunder.Unavailable, thunder.Retry.BACKOFF, id="error-2"),
        pytest.param(Faults(busy_share=1.0), thunder.InProgress, thunder.Retry.LATER, id="error-12"),
        pytest.param(Faults(drop_share=1.0), thunder.Unavailable, thunder.Retry.BACKOFF, id="dropped"),
        pytest.param(Faults(dead_share=1.0), thunder.Unavailable, thunder.Retry.BACKOFF, id="never-answers"),
    ],
)
def test_fault_classes(faults, error, retry):
    with (
        FleetThread(1, api_version=3, faults=faults) as fleet,
        thunder.ThunderClient(fleet.boxes[0].address, timeout=0.5) as client,
        pytest.raises(error) as info,
    ):
        client.provision_check()
    assert info.value.retry == retry


def test_connection_refused_is_unavailable():
    with FleetThread(1) as fleet:
        address = fleet.boxes[0].address
    with pytest.raises(thunder.Unavailable), thunder.ThunderClient(address, timeout=0.5) as client:
        client.api_version()


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        pytest.param(
            {"jsonrpc": "2.0", "id": 1, "result": {"success": False, "error": "no such type"}},
            thunder.Failed,
            id="success-false",
        ),
        pytest.param(
            {"jsonrpc": "2.0", "id": 1, "result": {"provisionTypes": "x", "success": True}},
            thunder.BadShape,
            id="types-not-list",
        ),
        pytest.param(
            {"jsonrpc": "2.0", "id": 1, "result": {"provisionTypes": [{"provisionType": "HARDWARE"}], "success": True}},
            thunder.BadShape,
            id="type-missing-fields",
        ),
        pytest.param(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "result": {
                    "provisionTypes": [
                        {"provisionType": "X", "provisionKind": "k", "state": "PROVISIONED", "reason": "r"}
                    ],
                    "success": True,
                },
            },
            thunder.BadShape,
            id="unknown-type",
        ),
        pytest.param(
            {"jsonrpc": "2.0", "id": 1, "result": {"provisionTypes": [], "success": 1}},
            thunder.BadShape,
            id="success-not-bool",
        ),
        pytest.param({"jsonrpc": "2.0", "id": 2, "result": None}, thunder.BadShape, id="wrong-id"),
        pytest.param({"jsonrpc": "1.0", "id": 1, "result": None}, thunder.BadShape, id="not-2.0"),
        pytest.param({"jsonrpc": "2.0", "id": 1}, thunder.BadShape, id="no-result"),
        pytest.param(
            {"jsonrpc": "2.0", "id": 1, "error": {"code": 30, "message": "ERROR_BAD_REQUEST"}},
            thunder.Failed,
            id="other-code",
        ),
        pytest.param([1, 2], thunder.BadShape, id="array"),
        pytest.param(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "result": {
                    "success": True,
                    "provisionTypes": [
                        {
                            "provisionType": "HARDWARE",
                            "provisionKind": "RT.2",
                            "state": "PROVISIONED",
                            "reason": "r" * 300,
                        }
                    ],
                },
            },
            thunder.BadShape,
            id="reason-too-long",
        ),
    ],
)
def test_unexpected_answers_are_typed_failures(answer, error):
    # The simulator answers correctly, so a small real HTTP server plays a box that answers wrongly.
    class Box(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Box)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with (
            thunder.ThunderClient(f"127.0.0.1:{server.server_port}", timeout=2) as client,
            pytest.raises(error) as info,
        ):
            client.provision_check()
    finally:
        server.shutdown()
        server.server_close()
    assert info.value.retry == thunder.Retry.NEVER


# Versioned designators (THUNDER_VERSIONED_DESIGNATORS) ----------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_versioned_client_names_the_version_that_introduced_each_method(transport):
    with FleetThread(1, api_version=3, faults=Faults(provision_seconds=0)) as own:
        box = own.boxes[0]
        sent: list[str] = []
        real_call = box.call

        async def recording_call(method, params, channel=None):  # a spy: the box still answers for itself
            sent.append(method)
            return await real_call(method, params, channel)

        box.call = recording_call
        with thunder.ThunderClient(box.address, transport=transport, timeout=3, versioned=True) as client:
            assert client.api_version() == 3
            assert client.soc_id() == box.soc_id
            assert client.netflix_esn() == box.esn
            assert next(s.state for s in client.reprovision(thunder.ProvisionType.HARDWARE)) == "PROVISIONED"
            client.provision_check()
            client.provision()

    dp = thunder.DEVICE_PROVISIONING
    assert sent == [
        f"{dp}.1.getApiVersionNumber",
        f"{dp}.3.getSOCId",
        f"{dp}.2.getNetflixESN",
        f"{dp}.1.reprovision",
        f"{dp}.1.provisionCheck",
        "Provisioning.1.provision",
    ]


def test_a_versioned_client_still_never_calls_what_the_box_lacks():
    with (
        FleetThread(1, api_version=2) as own,
        thunder.ThunderClient(own.boxes[0].address, timeout=3, versioned=True) as client,
    ):
        with pytest.raises(thunder.Unsupported):
            client.soc_id()
        assert own.boxes[0].calls["getSOCId"] == 0
        # Asked directly, the box refuses the version it does not have, as Thunder does.
        with pytest.raises(thunder.Failed) as refused:
            client.call(f"{thunder.DEVICE_PROVISIONING}.3.getSOCId")
    assert (refused.value.code, refused.value.retry) == (-32602, thunder.Retry.NEVER)


@pytest.mark.parametrize("value", [True, False])
def test_the_setting_chooses_the_default(settings, fleet, value):
    settings.THUNDER_VERSIONED_DESIGNATORS = value

    with thunder.ThunderClient(fleet.boxes[0].address, timeout=3) as client:
        assert client.versioned is value
        assert client.api_version() == fleet.boxes[0].api_version


def test_without_the_setting_designators_carry_no_version(settings, fleet):
    del settings.THUNDER_VERSIONED_DESIGNATORS

    with thunder.ThunderClient(fleet.boxes[0].address, timeout=3) as client:
        assert client.versioned is False
