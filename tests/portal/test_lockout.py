"""Login lock-outs on every login of the portal: the per-(username, address) limit, the per-username limit across
addresses, and a success clearing its own address's failures (staff API, CRM.COM, /v1/, /login/, /admin/login/)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from portal.kernel.models import ApiToken
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
WRONG = "wrong-password-1"


@dataclass(frozen=True)
class Dialect:
    """One login: how to send it and how its answer reads (``ok``, ``refused`` or ``locked``)."""

    send: Callable[[Client, str, str, str], object]
    verdict: Callable[[object], str]


def _json(client, url, body, ip):
    return client.post(url, json.dumps(body), content_type="application/json", REMOTE_ADDR=ip)


def _staff_api(client, username, password, ip):
    return _json(client, "/api/v1/auth/token/", {"username": username, "password": password}, ip)


def _crm(client, username, password, ip):
    body = {"username": username, "password": password, "organisation": "portal"}
    return _json(client, "/crmapi/rest/v2/authentication/token", body, ip)


def _v1(client, username, password, ip):
    return client.post("/v1/Login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def _form(url):
    def send(client, username, password, ip):
        return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=ip)

    return send


def _by_status(ok: int, refused: int):
    return lambda r: {ok: "ok", refused: "refused", 429: "locked"}.get(r.status_code, f"status {r.status_code}")


def _crm_verdict(response) -> str:
    code = response.json()["status"]["code"]
    return {"OK": "ok", "INVALID_CREDENTIALS": "refused", "ACCOUNT_LOCKED": "locked"}.get(code, code)


def _v1_verdict(response) -> str:
    body = response.json()
    if body.get("status") == "SUCCESS":
        return "ok"
    return {"ACCOUNT_PASSWORD_INCORRECT": "refused", "ACCOUNT_LOCKED": "locked"}.get(body["error"], body["error"])


DIALECTS = [
    pytest.param(Dialect(_staff_api, _by_status(201, 400)), id="staff-api"),
    pytest.param(Dialect(_crm, _crm_verdict), id="crm"),
    pytest.param(Dialect(_v1, _v1_verdict), id="v1"),
    pytest.param(Dialect(_form("/login/"), _by_status(302, 200)), id="login-page"),
    pytest.param(Dialect(_form("/admin/login/"), _by_status(302, 200)), id="admin-login"),
]


def attempts(dialect: Dialect, password: str, ips: list[str], username: str = "staff") -> list[str]:
    # A fresh client per attempt: a session from an earlier success must not stand in for a login.
    return [dialect.verdict(dialect.send(Client(), username, password, ip)) for ip in ips]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_success_clears_its_addresses_failures(staff_user, settings, dialect):
    almost = ["10.0.0.1"] * (settings.AXES_FAILURE_LIMIT - 1)
    assert attempts(dialect, WRONG, almost) == ["refused"] * len(almost)
    assert attempts(dialect, PASSWORD, ["10.0.0.1"]) == ["ok"]

    again = attempts(dialect, WRONG, almost)

    assert again == ["refused"] * len(almost)
    assert attempts(dialect, PASSWORD, ["10.0.0.1"]) == ["ok"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_one_address_is_locked_out_at_the_per_address_limit(staff_user, settings, dialect):
    limit = settings.AXES_FAILURE_LIMIT

    verdicts = attempts(dialect, WRONG, ["10.0.0.1"] * limit)

    assert verdicts == ["refused"] * (limit - 1) + ["locked"]
    assert attempts(dialect, PASSWORD, ["10.0.0.1"]) == ["locked"]
    assert attempts(dialect, PASSWORD, ["10.0.0.2"]) == ["ok"]  # another address is not this pair


@pytest.mark.parametrize("dialect", DIALECTS)
def test_guesses_spread_over_addresses_lock_the_username_out_for_everyone(staff_user, settings, dialect):
    settings.AXES_USERNAME_FAILURE_LIMIT = 9
    spread = [f"10.0.1.{n % 3}" for n in range(8)]  # 3 addresses, each under the per-address limit of 5

    assert attempts(dialect, WRONG, spread) == ["refused"] * 8
    assert attempts(dialect, WRONG, ["10.0.1.7"]) == ["locked"]  # the 9th, from yet another address

    assert attempts(dialect, PASSWORD, ["192.168.5.5"]) == ["locked"]
    if dialect.send in (_staff_api, _crm, _v1):
        assert ApiToken.objects.count() == 0


def test_the_username_limit_is_per_username(staff_user, settings):
    settings.AXES_USERNAME_FAILURE_LIMIT = 6
    dialect = Dialect(_staff_api, _by_status(201, 400))
    assert attempts(dialect, WRONG, [f"10.0.2.{n}" for n in range(6)]) == ["refused"] * 5 + ["locked"]

    other = attempts(dialect, WRONG, ["10.0.2.0"], username="somebody-else")

    assert other == ["refused"]


def test_the_username_limit_is_higher_than_the_per_address_one_by_default(staff_user, settings):
    dialect = Dialect(_staff_api, _by_status(201, 400))
    per_address = settings.AXES_FAILURE_LIMIT - 1
    addresses = settings.AXES_USERNAME_FAILURE_LIMIT // per_address

    verdicts = attempts(dialect, WRONG, [f"10.0.3.{n}" for n in range(addresses) for _ in range(per_address)])

    assert settings.AXES_USERNAME_FAILURE_LIMIT > settings.AXES_FAILURE_LIMIT
    assert set(verdicts) == {"refused"}
    assert attempts(dialect, PASSWORD, ["10.0.3.200"]) == ["ok"]


def test_the_username_lock_ends_with_the_cool_off(staff_user, settings):
    settings.AXES_USERNAME_FAILURE_LIMIT = 6
    dialect = Dialect(_staff_api, _by_status(201, 400))
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        attempts(dialect, WRONG, [f"10.0.4.{n}" for n in range(6)])
        assert attempts(dialect, PASSWORD, ["10.0.4.99"]) == ["locked"]

        clock.shift(settings.AXES_COOLOFF_TIME + timedelta(seconds=1))

        assert attempts(dialect, PASSWORD, ["10.0.4.99"]) == ["ok"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_username_limit_can_be_turned_off(staff_user, settings, dialect):
    settings.AXES_USERNAME_FAILURE_LIMIT = 0

    assert set(attempts(dialect, WRONG, [f"10.0.5.{n}" for n in range(12)])) == {"refused"}
    assert attempts(dialect, PASSWORD, ["10.0.5.99"]) == ["ok"]
