"""The CAS simulator is its own program: ``python -m conax.simulator`` serves without Django settings, importing it
(or the CAS protocol) loads no Django, and the gateway finds its in-process head-end through a setting, not an
import."""

from __future__ import annotations

import re

import httpx
import pytest
from django.utils.module_loading import import_string

from conax import cas_protocol, gateway
from conax.cas_protocol import CasCommand, Completed, Outcome, Rejected
from tests.standalone import frameworks_loaded_by, run_module, sigterm

TIMEOUT = 5.0
LISTENING = re.compile(r"CAS simulator listening on (http://127\.0\.0\.1:\d+); Ctrl-C or SIGTERM stops it\.\n")


@pytest.mark.slow
@pytest.mark.parametrize("module", ["conax.simulator", "conax.simulator.cli", "conax.cas_protocol"])
def test_importing_the_simulator_loads_no_django(module):
    assert frameworks_loaded_by(module) == (0, "")


@pytest.mark.slow
def test_python_m_serves_the_cas_protocol_over_a_real_socket_until_sigterm():
    proc = run_module("conax.simulator", "--port", "0", "--auto-register", "--seed", "1")
    body = {
        "idempotency_key": "C" * 32,
        "type": "SEND_MAIL_MESSAGE_TO_CLIENT",
        "params": {"smartcard_ca_id": "C1", "message": "m" * cas_protocol.MAIL_MAX},
    }
    try:
        url = LISTENING.fullmatch(proc.stdout.readline()).group(1)
        answer = httpx.post(f"{url}{cas_protocol.REQUESTS_PATH}", json=body, timeout=TIMEOUT)
    finally:
        code, rest, errors = sigterm(proc)

    outcome = cas_protocol.outcome_from_wire(answer.json(), "C" * 32)
    assert answer.status_code == 200 and isinstance(outcome, Completed)
    assert outcome.response == f"OK{outcome.reference_number}"
    assert (code, rest, errors) == (0, "CAS simulator stopped.\n", "")


@pytest.mark.slow
def test_python_m_refuses_what_cannot_work_with_one_line_and_code_1():
    proc = run_module("conax.simulator", "--port", "70000")
    out, err = proc.communicate(timeout=60)

    assert (proc.returncode, out) == (1, "")
    assert err == "python -m conax.simulator: error: --port must be between 0 and 65535\n"


class RecordingHeadend:
    """A stand-in head-end named by CAS_INPROCESS_BACKEND: what the gateway builds it with, what it is sent."""

    def __init__(self, *, auto_register: bool, latency_ms: float) -> None:
        self.auto_register, self.latency_ms = auto_register, latency_ms
        self.sent: list[CasCommand] = []

    def send(self, command: CasCommand) -> Outcome:
        self.sent.append(command)
        return Rejected("HEADEND_REFUSED", "recorded, not carried out")

    def lookup(self, idempotency_key: str) -> Outcome | None:
        return None


@pytest.fixture
def _fresh_gateway_cache():
    gateway.reset_gateway_cache()
    yield
    gateway.reset_gateway_cache()


@pytest.mark.usefixtures("_fresh_gateway_cache")
def test_the_inprocess_gateway_runs_the_backend_the_setting_names(settings):
    settings.CAS_GATEWAY_URL = "inprocess:"
    settings.CAS_INPROCESS_BACKEND = f"{__name__}.RecordingHeadend"
    settings.CAS_SIMULATOR_LATENCY_MS = 4.0
    command = CasCommand("D" * 32, "GET_ACTIVE_SUBSCRIPTIONS", {"smartcard_ca_id": "C1"})

    outcome = gateway.gateway_from_settings().send(command)

    headend = gateway.default_simulator()
    assert isinstance(headend, RecordingHeadend)
    assert (headend.auto_register, headend.latency_ms, headend.sent) == (True, 4.0, [command])
    assert outcome == Rejected("HEADEND_REFUSED", "recorded, not carried out")


def test_the_default_backend_is_the_simulator(settings):
    from conax.simulator import CasSimulator

    assert settings.CAS_INPROCESS_BACKEND == "conax.simulator.CasSimulator"
    assert import_string(settings.CAS_INPROCESS_BACKEND) is CasSimulator
