"""The simulator's multi-box mode: every box at its own loopback address, all on one port, told apart by the local
address of the connection; real sockets, no Django."""

from __future__ import annotations

import httpx
import pytest

from portal.lib.servekit import StartError
from provisioning.simulator import FleetThread, provision_id_for
from provisioning.simulator.cli import fleet_from_options

ID = {"jsonrpc": "2.0", "id": 1, "method": "Provisioning.1.id"}


def test_boxes_share_one_port_and_answer_as_themselves():
    with FleetThread(300, loopback="127.61.0.250") as fleet:
        first, last = fleet.boxes[0], fleet.boxes[-1]
        answers = {box.host: httpx.post(box.url, json=ID, timeout=5).json()["result"] for box in (first, last)}

    assert {box.port for box in fleet.boxes} == {first.port}
    assert (first.host, last.host) == ("127.61.0.250", "127.61.2.37")  # addresses run on across octets
    assert answers == {first.host: provision_id_for(0), last.host: provision_id_for(299)}
    assert (first.calls["id"], last.calls["id"], fleet.boxes[1].calls["id"]) == (1, 1, 0)


def test_an_address_that_is_no_box_is_not_answered():
    with FleetThread(2, loopback="127.62.0.1") as fleet:
        port = fleet.boxes[0].port
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(f"http://127.62.0.3:{port}/jsonrpc", json=ID, timeout=5)
        assert httpx.post(fleet.boxes[1].url, json=ID, timeout=5).status_code == 200


@pytest.mark.parametrize(
    "loopback", [pytest.param("10.0.0.1", id="not-loopback"), pytest.param("127.255.255.250", id="past-127/8")]
)
def test_a_fleet_that_does_not_fit_in_127_8_is_refused(loopback):
    options = {"fd": [], "port": 0, "count": 10, "host": "127.0.0.1", "latency": 0, "api_version": None}
    options |= {"busy_share": 0, "unavailable_share": 0, "drop_share": 0, "dead_share": 0, "corrupt_share": 0}
    options |= {"provision_seconds": 0, "seed": None, "portal_url": None, "loopback": loopback}
    with pytest.raises(StartError, match=r"do not fit in 127\.0\.0\.0/8"):
        fleet_from_options(options)
