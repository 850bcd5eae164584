"""Seed 000 (RDK's ``com.comcast.DeviceProvisioning`` Thunder plugin), replayed from the document itself
(``tests/acceptance/seeds/000_*``) on the device simulator over real sockets: each example request sent exactly as
the document prints it (its pretty-printed text, id 42), over Thunder's HTTP interface and as a WebSocket text
frame, and each answer compared with the example response key by key, in order, every missing or extra key named.

Box 0 of a fleet carries the seed's identities (ESN, SOC id, HARDWARE ``RT.2`` PROVISIONED), so every value is
deterministic and must equal the document's; ``provision_seconds`` is 0 so that ``reprovision`` answers with the
finished run, as the example does. Each example runs on a box of every API version that has its method (the
document's ``(Version N)`` notes) and is refused by the boxes below that version.
"""

from __future__ import annotations

import json

import pytest

from provisioning.simulator import Faults, FleetThread
from provisioning.thunder_protocol import API_VERSIONS, METHOD_SINCE
from tests.acceptance.seeds import (
    compact,
    differences,
    one_of,
    thunder_examples,
    thunder_frames,
    thunder_post,
    thunder_sections,
    thunder_since,
)

METHODS = list(thunder_sections("000"))
TRANSPORTS = ["http", "ws"]
# Where the document's example disagrees with the simulator's answer, exactly; each is a finding, not a tolerance.
KNOWN = {
    # The example's result carries "error": "..." beside "success": true, while the result table says "error" is
    # optional and only there when success is false; the simulator leaves it out of a success.
    "getNetflixESN": [".result: missing 'error'"],
}


def example(method: str) -> tuple[str, str]:
    blocks = thunder_examples("000", method)
    assert list(blocks) == ["Request", "Response"]
    return blocks["Request"], blocks["Response"]


def expected_differences(method: str, api_version: int) -> list[str]:
    found = list(KNOWN.get(method, []))
    if method == "getApiVersionNumber" and api_version != 1:  # the document's example box is of version 1
        found.append(f".result.version: '{api_version}', the example has '1'")
    return found


def replay(box, raw: str, transport: str) -> bytes:
    """The answer's exact bytes; over HTTP, a result comes back with status 200 and an error with 202."""
    if transport == "ws":
        (frame,) = thunder_frames(box.ws_url, raw)
        return frame
    response = thunder_post(box.url, raw)
    assert response.headers["content-type"] == "application/json"
    assert response.status_code == (202 if "error" in response.json() else 200)
    return response.content


@pytest.fixture(scope="module")
def boxes():
    """Box 0 of one fleet per API version, each run finishing inside its call."""
    fleets = [FleetThread(1, api_version=v, faults=Faults(provision_seconds=0)).start() for v in API_VERSIONS]
    yield {version: fleet.boxes[0] for version, fleet in zip(API_VERSIONS, fleets, strict=True)}
    for fleet in fleets:
        fleet.stop()


def test_the_document_has_the_methods_and_versions_the_simulator_serves():
    assert {method: thunder_since("000", method) for method in METHODS} == METHOD_SINCE


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("method", "api_version"),
    [(m, v) for m in METHODS for v in API_VERSIONS if v >= thunder_since("000", m)],
    ids=lambda value: f"v{value}" if isinstance(value, int) else value,
)
def test_example_replayed(boxes, method, api_version, transport):
    seed_request, seed_response = example(method)

    raw = replay(boxes[api_version], seed_request, transport)

    found = differences(json.loads(raw), json.loads(seed_response))
    assert found == expected_differences(method, api_version)
    if not found:
        assert raw == compact(seed_response)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("method", "api_version"),
    [(m, v) for m in METHODS for v in API_VERSIONS if v < thunder_since("000", m)],
    ids=lambda value: f"v{value}" if isinstance(value, int) else value,
)
def test_example_of_a_later_version_is_an_unknown_method_on_an_earlier_box(boxes, method, api_version, transport):
    seed_request, _ = example(method)

    raw = replay(boxes[api_version], seed_request, transport)

    assert json.loads(raw) == {"jsonrpc": "2.0", "id": 42, "error": {"code": -32601, "message": "Unknown method."}}


@pytest.mark.parametrize("method", ["provisionCheck", "reprovision"])
def test_every_provision_type_of_a_two_type_box_is_shaped_like_the_example_with_the_documented_values(method):
    """Box 1 supports both documented types; each item has the example item's keys in its order and the values the
    result table allows."""
    seed_request, seed_response = example(method)
    (seed_item,) = json.loads(seed_response)["result"]["provisionTypes"]
    with FleetThread(2, api_version=1, faults=Faults(provision_seconds=0)) as fleet:
        answer = json.loads(replay(fleet.boxes[1], seed_request, "http"))

    items = answer["result"]["provisionTypes"]
    assert [differences(item, seed_item, values=False) for item in items] == [[], []]
    field = "result.provisionTypes[#].{}"
    assert [item["provisionType"] for item in items] == one_of("000", method, field.format("provisionType"))
    assert {item["state"] for item in items} <= set(one_of("000", method, field.format("state")))
    assert answer["result"]["success"] is True


def test_reprovision_of_a_type_the_document_lists_but_the_box_lacks_fails_in_the_result(boxes):
    """Box 0 supports HARDWARE only; CRYPTANIUM, the document's other type, fails with success false and the
    optional error string of the result table (the document gives no example of a failure)."""
    seed_request, _ = example("reprovision")
    other = next(t for t in one_of("000", "reprovision", "params.provisionType") if t != "HARDWARE")
    raw_request = seed_request.replace('"HARDWARE"', json.dumps(other))

    answer = json.loads(replay(boxes[1], raw_request, "http"))

    assert list(answer) == ["jsonrpc", "id", "result"]
    assert list(answer["result"]) == ["success", "error"]
    assert answer["result"]["success"] is False and answer["result"]["error"]


def test_no_method_documents_an_event_but_a_reprovision_notifies_a_subscriber(boxes):
    """Every method of the document says "No Events." and the plugin documents none to register for; the simulator
    accepts ``register`` for ``provisioningchange`` on this callsign too, and a reprovision run notifies it, in
    seed 001's notification shape. Pinned: a difference between this document and the simulator."""
    assert all("### Events \n\n No Events." in text for text in thunder_sections("000").values())
    seed_request, seed_response = example("reprovision")
    register = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 41,
            "method": "com.comcast.DeviceProvisioning.register",
            "params": {"event": "provisioningchange", "id": "client.events.1"},
        }
    )

    registered, *frames = thunder_frames(boxes[1].ws_url, register, seed_request, then=1)

    assert json.loads(registered) == {"jsonrpc": "2.0", "id": 41, "result": 0}
    # the run ends inside the call, so its notification may come before the call's answer
    (answer,) = [frame for frame in frames if b'"id"' in frame]
    (notification,) = [frame for frame in frames if b'"id"' not in frame]
    assert answer == compact(seed_response)
    assert json.loads(notification) == {
        "jsonrpc": "2.0",
        "method": "client.events.1.provisioningchange",
        "params": {"status": 200},
    }
