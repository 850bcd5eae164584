"""The CAS gateway against the simulator over real sockets, in-process, and as the settings choose it."""

from __future__ import annotations

import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ImproperlyConfigured

from conax import gateway as gateway_module
from conax.gateway import (
    CasCommand,
    Completed,
    GatewayUnavailable,
    HttpGateway,
    InProcessGateway,
    Rejected,
    gateway_from_settings,
    reset_gateway_cache,
)
from conax.simulator import CasServerThread, CasSimulator
from tests.conftest import free_port
from tests.waiting import wait_for

TIMEOUT = 5.0


def new_key() -> str:
    return uuid.uuid4().hex.upper()


def add(key: str | None = None, card: str = "C1", service: str = "A") -> CasCommand:
    return CasCommand(key or new_key(), "ADD_SUBSCRIPTIONS", {"smartcard_ca_id": card, "service_ca_id": service})


@pytest.fixture(scope="module")
def server():
    with CasServerThread() as running:
        yield running


@pytest.fixture
def headend(server) -> CasSimulator:
    server.simulator.reset()
    server.simulator.register(smartcard_ca_ids=["C1"])
    yield server.simulator
    server.simulator.unavailable_share = server.simulator.lost_reply_share = 0.0
    server.simulator.latency_ms = 0


@pytest.fixture
def gateway(server, headend):
    client = HttpGateway(server.url, timeout=TIMEOUT)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _fresh_gateway_cache():
    reset_gateway_cache()
    yield
    reset_gateway_cache()


# --- HttpGateway ---------------------------------------------------------------------------------------------------


def test_http_completed(gateway, headend):
    outcome = gateway.send(add())

    assert outcome == Completed(outcome.reference_number, "OK" + outcome.reference_number)
    assert headend.card("C1")["entitlements"] == ["A"]


def test_http_query_answer_comes_back_as_text(gateway):
    gateway.send(add())

    outcome = gateway.send(CasCommand(new_key(), "GET_ACTIVE_SUBSCRIPTIONS", {"smartcard_ca_id": "C1"}))

    assert isinstance(outcome, Completed) and outcome.response == '{"services":["A"]}'


def test_http_rejected(gateway, headend):
    outcome = gateway.send(
        CasCommand(new_key(), "CANCEL_SUBSCRIPTIONS", {"smartcard_ca_id": "C1", "service_ca_id": "A"})
    )

    assert outcome == Rejected("SERVICE_NOT_ACTIVE", "service A is not active on smartcard C1")
    assert headend.card("C1")["entitlements"] == []


def test_http_400_is_a_bad_command(gateway, headend):
    outcome = gateway.send(add(key="not a key"))

    assert outcome == Rejected("BAD_COMMAND", "idempotency_key must be 1 to 128 characters of A-Z a-z 0-9 . _ : -")
    assert headend.stats()["keys"] == 0 and headend.card("C1")["entitlements"] == []


def test_http_503_is_unavailable(gateway, headend):
    headend.unavailable_share = 1.0

    with pytest.raises(GatewayUnavailable, match="HTTP 503"):
        gateway.send(add())
    with pytest.raises(GatewayUnavailable, match="HTTP 503"):
        gateway.lookup(new_key())
    assert headend.card("C1")["entitlements"] == []


def test_connection_refused_is_unavailable():
    closed = HttpGateway(f"http://127.0.0.1:{free_port()}", timeout=TIMEOUT)

    with pytest.raises(GatewayUnavailable, match=r"connection failed \(ConnectError\)"):
        closed.send(add())
    with pytest.raises(GatewayUnavailable, match="connection failed"):
        closed.lookup(new_key())
    closed.close()


def test_no_answer_in_time_is_unavailable_and_the_head_end_may_still_have_acted(server, headend):
    headend.latency_ms = 400
    impatient = HttpGateway(server.url, timeout=0.1)
    key = new_key()

    with pytest.raises(GatewayUnavailable, match=r"no answer within 0.1 s \(ReadTimeout\)"):
        impatient.send(add(key))
    impatient.close()

    headend.latency_ms = 0
    patient = HttpGateway(server.url, timeout=TIMEOUT)
    found = wait_for(lambda: patient.lookup(key), timeout=TIMEOUT, interval=0.02, message="the head-end never acted")
    patient.close()
    assert isinstance(found, Completed)  # the head-end went on after the caller gave up


def test_lookup_hit_and_miss(gateway):
    key = new_key()
    sent = gateway.send(add(key))

    assert gateway.lookup(key) == sent
    assert gateway.lookup(new_key()) is None


def test_a_lost_reply_is_found_by_lookup_and_not_applied_again(gateway, headend):
    headend.lost_reply_share = 1.0
    key = new_key()

    with pytest.raises(GatewayUnavailable):
        gateway.send(add(key))
    headend.lost_reply_share = 0.0
    found = gateway.lookup(key)

    assert isinstance(found, Completed)
    assert gateway.send(add(key)) == found
    assert headend.applied_counts() == {key: 1} and headend.card("C1")["entitlements"] == ["A"]


def test_base_url_with_a_trailing_slash(server, headend):
    client = HttpGateway(server.url + "/", timeout=TIMEOUT)

    assert isinstance(client.send(add()), Completed)
    client.close()


# --- answers only a broken or foreign head-end gives ---------------------------------------------------------------


class _Canned(BaseHTTPRequestHandler):
    """Answers every request with the server's canned status and body."""

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, body = self.server.canned
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def canned():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def completed_for(key: str) -> bytes:
    return b'{"idempotency_key":"%s","outcome":"COMPLETED","reference_number":"r","response":"OKr"}' % key.encode()


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b"<html>not json</html>"),
        (200, b'{"idempotency_key":"OTHER","outcome":"COMPLETED","reference_number":"r","response":"OKr"}'),
        (200, b'{"idempotency_key":"K1","outcome":"PENDING"}'),
        (200, b'{"idempotency_key":"K1","outcome":"REJECTED","code":7,"description":"x"}'),
        (500, b'{"error":"boom"}'),
        (502, b"bad gateway"),
        (404, b"<html>no such page</html>"),
        (301, b""),
    ],
    ids=["not-json", "another-key", "unknown-outcome", "code-not-text", "500", "502", "foreign-404", "redirect"],
)
def test_unreadable_or_unexpected_answers_are_unavailable(canned, status, body):
    canned.canned = (status, body)
    client = HttpGateway(f"http://127.0.0.1:{canned.server_address[1]}", timeout=TIMEOUT)

    with pytest.raises(GatewayUnavailable):
        client.send(add("K1"))
    with pytest.raises(GatewayUnavailable):
        client.lookup("K1")
    client.close()


def test_a_well_formed_answer_from_another_server_is_read(canned):
    canned.canned = (200, completed_for("K1"))
    client = HttpGateway(f"http://127.0.0.1:{canned.server_address[1]}", timeout=TIMEOUT)

    assert client.send(add("K1")) == Completed("r", "OKr")
    client.close()


# --- InProcessGateway ----------------------------------------------------------------------------------------------


def test_in_process_gateway_sends_and_looks_up():
    simulator = CasSimulator(auto_register=True)
    gateway = InProcessGateway(simulator)
    key = new_key()

    sent = gateway.send(add(key))

    assert isinstance(sent, Completed) and gateway.lookup(key) == sent and gateway.lookup(new_key()) is None
    assert simulator.card("C1")["entitlements"] == ["A"]


def test_in_process_faults_are_gateway_unavailable():
    gateway = InProcessGateway(CasSimulator(auto_register=True, lost_reply_share=1.0))
    key = new_key()

    with pytest.raises(GatewayUnavailable, match="the reply was lost"):
        gateway.send(add(key))
    assert isinstance(gateway.lookup(key), Completed)


# --- gateway_from_settings -----------------------------------------------------------------------------------------


def test_inprocess_setting_gives_the_process_simulator(settings):
    settings.CAS_GATEWAY_URL = "inprocess:"
    settings.CAS_SIMULATOR_LATENCY_MS = 3.0

    gateway = gateway_from_settings()

    assert isinstance(gateway, InProcessGateway) and gateway_from_settings() is gateway
    assert gateway.simulator is gateway_module.default_simulator()
    assert gateway.simulator.latency_ms == 3.0
    assert isinstance(gateway.send(add(card="never-registered")), Completed)  # auto_register


def test_http_setting_gives_an_http_gateway_with_the_timeout(settings, server, headend):
    settings.CAS_GATEWAY_URL = server.url
    settings.CAS_TIMEOUT = 2.5

    gateway = gateway_from_settings()

    assert isinstance(gateway, HttpGateway) and gateway_from_settings() is gateway
    assert (gateway.base_url, gateway.timeout) == (server.url, 2.5)
    assert isinstance(gateway.send(add()), Completed)


@pytest.mark.parametrize(
    "url", ["", "inprocess", "ftp://cas.example", "http://", "https:///path", "redis://127.0.0.1:6379/0"]
)
def test_other_settings_are_improperly_configured(settings, url):
    settings.CAS_GATEWAY_URL = url

    with pytest.raises(ImproperlyConfigured, match="CAS_GATEWAY_URL"):
        gateway_from_settings()


def test_a_timeout_that_is_not_positive_is_improperly_configured(settings):
    settings.CAS_GATEWAY_URL, settings.CAS_TIMEOUT = "http://127.0.0.1:1", 0

    with pytest.raises(ImproperlyConfigured, match="CAS_TIMEOUT"):
        gateway_from_settings()


def test_reset_gives_a_new_gateway_and_a_fresh_simulator(settings):
    settings.CAS_GATEWAY_URL = "inprocess:"
    first = gateway_from_settings()
    first.send(add())

    reset_gateway_cache()
    second = gateway_from_settings()

    assert second is not first and second.simulator is not first.simulator
    assert second.simulator.card("C1") is None


def test_changed_settings_give_a_new_gateway(settings, server):
    settings.CAS_GATEWAY_URL = "inprocess:"
    in_process = gateway_from_settings()

    settings.CAS_GATEWAY_URL = server.url

    assert isinstance(gateway_from_settings(), HttpGateway) and not isinstance(in_process, HttpGateway)


def test_commands_never_show_their_parameters():
    command = CasCommand("K1", "UPDATE_CA_PIN_TO_GIVEN_VALUE", {"smartcard_ca_id": "C1", "pin": "4821"})

    assert repr(command) == "CasCommand(idempotency_key='K1', type='UPDATE_CA_PIN_TO_GIVEN_VALUE')"
