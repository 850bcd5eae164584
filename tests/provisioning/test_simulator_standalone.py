"""The device simulator is its own program: ``python -m provisioning.simulator`` serves without Django settings, and
importing the package (or the Thunder wire protocol) loads no Django at all."""

from __future__ import annotations

import httpx
import pytest

from provisioning import choices, simulator, thunder, thunder_protocol
from tests.standalone import frameworks_loaded_by, run_module, sigterm

TIMEOUT = 5.0
SOC_ID_CALL = '{"jsonrpc":"2.0","id":7,"method":"com.comcast.DeviceProvisioning.3.getSOCId"}'


@pytest.mark.slow
@pytest.mark.parametrize(
    "module", ["provisioning.simulator", "provisioning.simulator.cli", "provisioning.thunder_protocol"]
)
def test_importing_the_simulator_loads_no_django(module):
    assert frameworks_loaded_by(module) == (0, "")


@pytest.mark.slow
def test_python_m_serves_json_rpc_over_a_real_socket_until_sigterm():
    proc = run_module("provisioning.simulator", "--count", "3", "--port", "0", "--api-version", "3", "--seed", "1")
    try:
        announced = [proc.stdout.readline() for _ in range(4)]
        address = announced[3].split()[2]
        answer = httpx.post(f"http://{address}/jsonrpc", content=SOC_ID_CALL, timeout=TIMEOUT)
    finally:
        code, rest, errors = sigterm(proc)

    assert announced[0] == "Simulating 3 set-top box(es); Ctrl-C or SIGTERM stops them.\n"
    assert announced[3].startswith("box  2  127.0.0.1:") and " api=3 " in announced[3]
    expected = '{"jsonrpc":"2.0","id":7,"result":{"socid":"SOC","success":true}}'.replace(
        "SOC", simulator.soc_id_for(2)
    )
    assert (answer.status_code, answer.text) == (200, expected)
    assert (code, rest, errors) == (0, "Simulator stopped.\n", "")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("--fd", "1000"), "--fd 1000: not an open socket", id="closed-fd"),
        pytest.param(("--count", "0", "--port", "0"), "--count must be at least 1", id="count"),
        pytest.param(("--port", "65535", "--count", "2"), "the port range passes 65535", id="range"),
    ],
)
def test_python_m_refuses_what_cannot_work_with_one_line_and_code_1(args, message):
    proc = run_module("provisioning.simulator", *args)
    out, err = proc.communicate(timeout=60)

    assert (proc.returncode, out) == (1, "")
    assert err.startswith(f"python -m provisioning.simulator: error: {message}")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_provision_states_have_one_home():
    """The client and the simulator use the protocol's enum itself; the stored choices carry the same values."""
    assert thunder.ProvisionState is simulator.ProvisionState is thunder_protocol.ProvisionState
    assert [(c.name, c.value) for c in choices.ProvisionState] == [
        (s.name, s.value) for s in thunder_protocol.ProvisionState
    ]
