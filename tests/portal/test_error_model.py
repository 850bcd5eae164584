"""The one error model (issue 13): every app's domain errors share ``DomainError``'s constructor, a class-level code
and a category; each dialect maps them in one place (staff REST by category, CRM.COM and /v1/ by code)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from django.contrib.auth.models import Group

import components.exceptions
import conax.exceptions
import devices.exceptions
import portal.kernel.exceptions
import provisioning.auth
import provisioning.exceptions
from components.api.params import V1Request, v1_error
from conax.api.crmparams import crm_error
from portal.kernel.api.errors import rest_exception_handler
from portal.kernel.errors import Category, DomainError
from tests.components.support import V1, catalog_load, component
from tests.conax.factories import ServiceFactory
from tests.conax.support import ADD, BASE, CARD, SUB, Crm, world_load
from tests.factories import PASSWORD, DeviceFactory

MODULES = (
    devices.exceptions,
    provisioning.exceptions,
    provisioning.auth,
    components.exceptions,
    conax.exceptions,
    portal.kernel.exceptions,
)


def _all_errors() -> list[type[DomainError]]:
    found, pending = [], list(DomainError.__subclasses__())
    while pending:
        kind = pending.pop()
        found.append(kind)
        pending.extend(kind.__subclasses__())
    return sorted({k for k in found if k.__module__.startswith(tuple(m.__name__ for m in MODULES))}, key=str)


ERRORS = _all_errors()


def app_of(kind: type[DomainError]) -> str:
    return kind.__module__.split(".")[0]  # portal.kernel.exceptions → portal


def test_every_app_module_contributes_its_errors():
    assert {app_of(kind) for kind in ERRORS} == {"devices", "provisioning", "components", "conax", "portal"}
    assert len(ERRORS) >= 30


@pytest.mark.parametrize("kind", ERRORS, ids=lambda kind: kind.__qualname__)
def test_each_error_has_its_own_class_level_code_and_a_category(kind):
    assert isinstance(kind.__dict__.get("code"), str)  # set on the class itself, not inherited
    assert kind.code != DomainError.code
    assert isinstance(kind.category, Category)


@pytest.mark.parametrize("app", sorted({app_of(kind) for kind in ERRORS}))
def test_codes_are_unique_within_an_app(app):
    codes = Counter(kind.code for kind in ERRORS if app_of(kind) == app)
    assert [code for code, count in codes.items() if count > 1] == []


@pytest.mark.parametrize("kind", ERRORS, ids=lambda kind: kind.__qualname__)
def test_each_error_has_the_one_constructor(kind):
    assert kind.__init__ is DomainError.__init__
    given, bare = kind("what went wrong", ids=[3], description="more"), kind()
    assert (given.message, str(given), given.details, given.code) == (
        "what went wrong",
        "what went wrong",
        {"ids": [3], "description": "more"},
        kind.code,
    )
    assert (bare.message, bare.details) == (kind.code, {})


# --- staff REST: by category ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "status"),
    [
        (Category.NOT_FOUND, 404),
        (Category.CONFLICT, 409),
        (Category.INVALID, 400),
        (Category.DENIED, 403),
        (Category.UNAVAILABLE, 503),
    ],
    ids=str,
)
def test_the_rest_handler_answers_each_category_its_status(category, status):
    kind = type("Probe", (DomainError,), {"code": "PROBE", "category": category})
    response = rest_exception_handler(kind("it failed"), {})
    assert (response.status_code, response.data) == (status, {"code": "PROBE", "detail": "it failed"})


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (devices.exceptions.IllegalTransition, 409),
        (devices.exceptions.DeviceExists, 409),
        (provisioning.exceptions.NoSetTopBox, 404),
        (components.exceptions.UnknownProvisioning, 404),
        (devices.exceptions.InvalidImport, 400),
        (devices.exceptions.InvalidOwner, 400),
        (provisioning.exceptions.InvalidCommand, 400),
        (components.exceptions.UnknownSensor, 400),
        (components.exceptions.UnknownComponent, 400),
    ],
    ids=lambda value: getattr(value, "__qualname__", str(value)),
)
def test_the_rest_handler_keeps_each_apps_status(kind, status):
    assert rest_exception_handler(kind("no"), {}).status_code == status


def test_the_rest_detail_names_the_offending_ids():
    response = rest_exception_handler(components.exceptions.UnknownParameter(ids=[7, 9]), {})
    assert response.data == {
        "code": "INVALID_COMPONENT_PARAMETER_ID_PRAM",
        "detail": "INVALID_COMPONENT_PARAMETER_ID_PRAM: 7, 9",
    }


# --- CRM.COM: by code ----------------------------------------------------------------------------------------------

CONAX_ERRORS = [kind for kind in ERRORS if issubclass(kind, conax.exceptions.ConaxError)]
TOKEN_ERRORS = [kind for kind in ERRORS if issubclass(kind, portal.kernel.exceptions.TokenError)]


@pytest.mark.parametrize("kind", CONAX_ERRORS, ids=lambda kind: kind.__qualname__)
def test_crm_answers_a_conax_error_by_its_own_code(kind):
    error = crm_error(kind("the message", description="the description"))
    assert (error.code, error.message, error.description) == (kind.code, "the message", "the description")


@pytest.mark.parametrize("kind", TOKEN_ERRORS, ids=lambda kind: kind.__qualname__)
def test_crm_answers_every_refused_token_alike(kind):
    error = crm_error(kind())
    assert (error.code, error.message, error.description) == (
        "INVALID_TOKEN",
        "the token is missing, expired or released",
        None,
    )


def _status(answer: dict) -> tuple:
    return answer["status"]["code"], answer["status"]["message"], answer["status"]["description"]


@pytest.fixture
def crm(client, staff_user) -> Crm:
    world_load()
    return Crm.login(client)


@pytest.mark.parametrize(
    ("method", "body", "status"),
    [
        pytest.param(
            "add_subscriptions",
            {**ADD, "subscription_identifier": {"number": "NOPE"}},
            ("NOT_FOUND", "subscription not found", "no subscription with number 'NOPE'"),
            id="not-found",
        ),
        pytest.param(
            "reset_pin_to_given_value",
            {**SUB, **CARD, "pin": "12a4"},
            ("INVALID_PARAMETER", "pin must be 4 digits", None),
            id="invalid-parameter",
        ),
    ],
)
def test_crm_envelope_of_domain_errors_over_http(crm, method, body, status):
    answer = crm.post(method, body)
    assert (_status(answer), answer["data"]) == (status, None)


def test_crm_envelope_of_a_rule_violation_over_http(crm):
    ServiceFactory(code="OUTSIDE")
    answer = crm.post("add_subscriptions", {**ADD, "service_identifier": {"code": "OUTSIDE"}})
    assert _status(answer) == (
        "CONSTRAINT_VIOLATION",
        "service does not belong to the subscription",
        "service OUTSIDE is not in subscription S60058",
    )


def test_crm_envelope_of_a_refused_login_and_token_over_http(client, crm, staff_user):
    login = {"username": "staff", "password": "wrong-9", "organisation": "portal"}
    refused = client.post(BASE + "authentication/token", json.dumps(login), content_type="application/json")
    assert _status(refused.json()) == ("INVALID_CREDENTIALS", "wrong username, password or organisation", None)
    assert _status(crm.post("add_subscriptions", {**ADD, "token": "f" * 64}, token=False)) == (
        "INVALID_TOKEN",
        "the token is missing, expired or released",
        None,
    )
    staff_user.groups.remove(Group.objects.get(name="support"))
    assert _status(crm.post("add_subscriptions", ADD)) == ("ACCESS_DENIED", "this user may not use the CRM API", None)


# --- /v1/: by code -------------------------------------------------------------------------------------------------

COMPONENT_ERRORS = [kind for kind in ERRORS if issubclass(kind, components.exceptions.ComponentError)]


@pytest.mark.parametrize("kind", COMPONENT_ERRORS, ids=lambda kind: kind.__qualname__)
def test_v1_answers_a_component_error_by_its_own_code(kind):
    assert v1_error(kind(ids=[4]), V1Request("update", {"component_id": [4]}, {"component_id": False})).body() == {
        "error": kind.code
    }


@pytest.mark.parametrize(("logout", "code"), [(False, "INVALID_TOKEN"), (True, "INVALID_TOKEN1")])
@pytest.mark.parametrize("kind", TOKEN_ERRORS, ids=lambda kind: kind.__qualname__)
def test_v1_answers_a_refused_token_by_the_endpoint(kind, logout, code):
    assert v1_error(kind(), logout=logout).body() == {"error": code}


@pytest.fixture
def v1(client, staff_user) -> V1:
    catalog_load()
    return V1.for_user(client, staff_user)


@pytest.mark.parametrize(
    ("component_type", "code"),
    [
        (0, "INVALID_COMPONENT_SENSOR_ID_PRAM"),
        (1, "INVALID_COMPONENT_PARAMETER_ID_PRAM"),
        (2, "INVALID_COMPONENT_GROUP_PARAMETER_ID_PRAM"),
    ],
    ids=["sensor", "parameter", "group"],
)
def test_v1_answers_each_catalog_type_its_seed_code_over_http(v1, component_type, code):
    device = DeviceFactory()
    body = {
        "action": "insert",
        "provisioning_id": device.pk,
        "component_type": component_type,
        "component_id": [1, 900, 901],
    }
    assert v1(body) == {"error": code, "error_detail": "INVALID_IDS_900,901"}


def test_v1_answers_unknown_records_components_and_tokens_over_http(v1):
    device = DeviceFactory()
    component(device, 0, 1)
    insert = {"action": "insert", "provisioning_id": 999_999, "component_type": 0, "component_id": 1}
    assert v1(insert) == {"error": "INVALID_PROVISIONING_ID_PRAM"}
    update = {
        "action": "update",
        "provisioning_id": device.pk,
        "component_type": 0,
        "component_id": [1, 5],
        "active_status": 1,
    }
    assert v1(update) == {"error": "INVALID_COMPONENT_ID_PRAM", "error_detail": "INVALID_IDS_5"}
    assert v1.post({"action": "select"}, token="f" * 64).json() == {"error": "INVALID_TOKEN"}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("username=staff&password=wrong-9", "ACCOUNT_PASSWORD_INCORRECT"),
        (f"username=nobody&password={PASSWORD}", "ACCOUNT_DOES_NOT_EXIST"),
    ],
    ids=["wrong-password", "no-account"],
)
def test_v1_login_answers_its_refusals_by_code_over_http(client, staff_user, body, error):
    answer = client.post("/v1/Login/", body, content_type="application/x-www-form-urlencoded").json()
    assert (answer["status"], answer["error"], answer["token"]) == ("FAILURE", error, "ERROR")


def test_v1_logout_answers_a_refused_token_its_own_code_over_http(client, db):
    answer = client.post("/v1/Login/", "token=" + "f" * 64, content_type="application/x-www-form-urlencoded")
    assert answer.json() == {"error": "INVALID_TOKEN1"}
