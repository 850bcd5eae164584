"""No log line holds a secret: every dialect's request, with the database failing at each of its first queries, while
every logger writes at DEBUG (SQL included) through the handler the settings configure.

The secrets: passwords (right and wrong) of every login, the tokens of the three token dialects, a device's CIK,
a CA PIN, the session key; and any token or CIK handed out during the run.
"""

from __future__ import annotations

import io
import json
import logging
import re
from dataclasses import dataclass, field
from urllib.parse import quote_plus

import pytest
from django.db import OperationalError, connection
from django.test import Client

from conax.api.crmparams import METHODS
from devices import services as device_services
from portal.kernel import services
from portal.kernel.choices import TokenPurpose
from portal.kernel.logging import SecretFilter
from tests.conax.support import ADD, CARD, REQUESTS, SUB, world_load
from tests.factories import PASSWORD, DeviceFactory, DeviceModelFactory, StaffFactory

pytestmark = pytest.mark.django_db
WRONG = "Wr0ng pässword&token=x"
PIN = "4821"
FAILURES = 8  # the database fails at query 1, 2, …, FAILURES of the request (then once not at all)
HEX_SECRET = re.compile(r"(?i)(?<![0-9a-f])(?:[0-9a-f]{64}|[0-9a-f]{40})(?![0-9a-f])")


@dataclass
class World:
    staff: str
    crm: str
    v1: str
    cik: str
    secrets: set[str] = field(default_factory=set)


@pytest.fixture
def world(db) -> World:
    staff = StaffFactory(username="staff")
    world_load()
    tokens = {purpose: services.token_issue(user=staff, purpose=purpose).raw for purpose in TokenPurpose}
    model = DeviceModelFactory(vendor__name="acme", name="stb-4k")
    for serial in ("SN-LOG-1", "SN-LOG-2"):
        device_services.device_enable(device=DeviceFactory(model=model, serial_number=serial))
    cik = device_services.device_activate(
        vendor="acme", model="stb-4k", serial="SN-LOG-1", remote_addr="10.0.0.9", user_agent="test"
    )
    world = World(tokens[TokenPurpose.STAFF_API], tokens[TokenPurpose.CRM], tokens[TokenPurpose.COMPONENTS], cik)
    world.secrets |= {PASSWORD, WRONG, PIN, cik, *tokens.values()}
    return world


@pytest.fixture
def all_log_output():
    """Everything the configured handler writes, with every logger at DEBUG and SQL logged."""
    [handler] = [h for h in logging.root.handlers if any(isinstance(f, SecretFilter) for f in h.filters)]
    buffer = io.StringIO()
    old_stream, old_level = handler.setStream(buffer), handler.level
    loggers = [logging.root, *(lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger))]
    saved = [(lg, lg.level, lg.disabled) for lg in loggers]
    handler.setLevel(logging.DEBUG)
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        lg.disabled = False
    connection.force_debug_cursor = True
    yield buffer
    connection.force_debug_cursor = False
    handler.setStream(old_stream)
    handler.setLevel(old_level)
    for lg, level, disabled in saved:
        lg.setLevel(level)
        lg.disabled = disabled


class FailAt:
    """The database connection drops at the request's ``k``-th query."""

    def __init__(self, k: int) -> None:
        self.k, self.n = k, 0

    def __call__(self, execute, sql, params, many, context):
        self.n += 1
        if self.n == self.k:
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)


def _json(client, path, body, **headers):
    return client.generic("POST", path, json.dumps(body), content_type="application/json", **headers)


def _crm_pin(client, w):
    assert "reset_pin_to_given_value" in METHODS
    body = {"token": w.crm, **SUB, **CARD, "pin": PIN}
    return _json(client, REQUESTS + "reset_pin_to_given_value", body)


REQUESTS_BY_DIALECT = {
    "activation": lambda c, w: c.post(
        "/provision/activate", "vendor=acme&model=stb-4k&sn=SN-LOG-2", content_type="application/x-www-form-urlencoded"
    ),
    "jsonrpc-cik": lambda c, w: _json(
        c,
        "/jsonrpc",
        {"jsonrpc": "2.0", "method": "client.events.1.provisioningchange", "params": {"status": 200}},
        HTTP_X_EXOSITE_CIK=w.cik,
    ),
    "v1-token-header": lambda c, w: _json(
        c, "/v1/DeviceProvisioningComponents/", {"action": "select"}, HTTP_TOKEN=w.v1
    ),
    "crm-get": lambda c, w: c.get(REQUESTS + "list", {"token": w.crm, "type": "ADD_SUBSCRIPTIONS"}),
    "crm-post": lambda c, w: _json(c, REQUESTS + "add_subscriptions", {"token": w.crm, **ADD}),
    "crm-ca-pin": _crm_pin,
    "staff-api": lambda c, w: c.get("/api/v1/devices/", HTTP_AUTHORIZATION=f"Token {w.staff}"),
    "staff-api-login": lambda c, w: _json(c, "/api/v1/auth/token/", {"username": "staff", "password": PASSWORD}),
    "staff-api-login-wrong": lambda c, w: _json(c, "/api/v1/auth/token/", {"username": "staff", "password": WRONG}),
    "crm-login": lambda c, w: _json(
        c, "/crmapi/rest/v2/authentication/token", {"username": "staff", "password": PASSWORD, "organisation": "portal"}
    ),
    "v1-login": lambda c, w: c.post("/v1/Login/", {"username": "staff", "password": PASSWORD}),
    "login-page": lambda c, w: c.post("/login/", {"username": "staff", "password": PASSWORD}),
    "login-page-wrong": lambda c, w: c.post("/login/", {"username": "staff", "password": WRONG}),
    "admin-login": lambda c, w: c.post("/admin/login/", {"username": "staff", "password": PASSWORD}),
}


def handed_out(response) -> set[str]:
    """Tokens, CIKs and session keys a response handed out: secrets of the lines logged after it."""
    found = {morsel.value for morsel in response.cookies.values() if morsel.value}
    body = response.content.decode("utf-8", "replace")
    found |= set(HEX_SECRET.findall(body))
    return found


@pytest.mark.parametrize("dialect", list(REQUESTS_BY_DIALECT))
def test_no_secret_reaches_the_log_when_the_database_fails_mid_request(world, all_log_output, dialect):
    send = REQUESTS_BY_DIALECT[dialect]
    statuses = []
    for k in [*range(1, FAILURES + 1), 0]:
        client = Client(raise_request_exception=False)
        with connection.execute_wrapper(FailAt(k)):
            response = send(client, world)
        statuses.append(response.status_code)
        world.secrets |= handed_out(response)

    output = all_log_output.getvalue()
    assert "logger=django.request" in output, statuses  # errors were forced and logged, with their request
    assert "logger=django.db.backends" in output  # SQL was logged too
    leaked = sorted(s for s in world.secrets if len(s) >= 4 and (appears(s, output) or appears(quote_plus(s), output)))
    assert leaked == []
    assert HEX_SECRET.findall(output) == []


def appears(secret: str, output: str) -> bool:
    """``secret`` in the log, as a value: a 4-digit CA PIN inside a longer run of digits (the microseconds of a
    timestamp, a port) is not that PIN."""
    if not secret.isdigit():
        return secret in output
    return re.search(rf"(?<!\d){re.escape(secret)}(?!\d)", output) is not None


def test_the_request_of_a_500_is_logged_without_its_query_string(world, all_log_output):
    client = Client(raise_request_exception=False)

    with connection.execute_wrapper(FailAt(1)):
        response = client.get(REQUESTS + "show", {"token": world.crm, "number": "1"})

    output = all_log_output.getvalue()
    assert response.status_code >= 500
    assert f"<Request GET {REQUESTS}show>" in output
    assert world.crm not in output


def test_secrets_outside_any_request_are_masked_by_name_and_shape(all_log_output):
    log = logging.getLogger("portal.test")

    log.warning("retrying with password=%s and ca_pin: %s", "s3cr3t-Passphrase", "7777")
    log.error("card %s", "ab" * 20, extra={"detail": {"token": "zz-top-secret"}})
    try:
        raise ValueError("bad token=uvwxyz-123 in call")
    except ValueError:
        log.exception("failed")

    output = all_log_output.getvalue()
    for secret in ("s3cr3t-Passphrase", "7777", "ab" * 20, "zz-top-secret", "uvwxyz-123"):
        assert secret not in output
    assert output.count("********") >= 5


def test_a_record_that_cannot_be_checked_is_withheld_not_raised(all_log_output):
    class Unprintable:
        def __str__(self):
            raise RuntimeError("no")

    logging.getLogger("portal.test").error("value %s", "x", extra={"thing": Unprintable()})

    assert "(log line withheld" in all_log_output.getvalue()
