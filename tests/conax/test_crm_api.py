"""The CRM.COM dialect beyond the seed's examples: login and tokens, every method's parameter checks (each error
leaves nothing written), fields_set, pagination, the CA PIN, and the envelope on every answer."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from conax.crypto import pin_decrypt
from conax.models import ProvisioningRequest
from tests.conax.factories import ServiceFactory, SubscriptionFactory
from tests.conax.support import ADD, BASE, CARD, REQUESTS, SUB, Crm
from tests.factories import PASSWORD, CustomerFactory

pytestmark = pytest.mark.django_db


def status(answer: dict) -> str:
    assert set(answer) == {"status", "data"} and set(answer["status"]) == {"code", "message", "description"}
    return answer["status"]["code"]


def login(client, **body):
    return client.post(BASE + "authentication/token", json.dumps(body), content_type="application/json").json()


# --- login and tokens ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param(
            {"username": "staff", "password": "wrong-password-1", "organisation": "portal"},
            "INVALID_CREDENTIALS",
            id="wrong-password",
        ),
        pytest.param(
            {"username": "nobody", "password": PASSWORD, "organisation": "portal"},
            "INVALID_CREDENTIALS",
            id="no-such-user",
        ),
        pytest.param(
            {"username": "staff", "password": PASSWORD, "organisation": "other"},
            "INVALID_CREDENTIALS",
            id="wrong-organisation",
        ),
        pytest.param({"username": "staff", "password": PASSWORD}, "MISSING_PARAMETER", id="no-organisation"),
        pytest.param(
            {"username": "staff", "password": PASSWORD, "organisation": "portal", "x": 1},
            "UNKNOWN_PARAMETER",
            id="unknown",
        ),
        pytest.param(
            {"username": "staff", "password": PASSWORD, "organisation": "portal", "unit": "Nowhere"},
            "INVALID_PARAMETER",
            id="unknown-unit",
        ),
        pytest.param(
            {"username": "staff", "password": PASSWORD, "organisation": "portal", "unit": 5},
            "INVALID_PARAMETER",
            id="unit-not-a-string",
        ),
    ],
)
def test_login_failures(client, world, body, code):
    assert status(login(client, **body)) == code


def test_a_customer_may_not_use_the_crm_api(client, world):
    """With the right password, the same answer as a wrong one (no password oracle; test_crm_hardening)."""
    CustomerFactory(username="dora")

    assert status(login(client, username="dora", password=PASSWORD, organisation="portal")) == "INVALID_CREDENTIALS"


def test_login_by_unit_code_and_the_unit_is_recorded(client, world):
    crm = Crm.login(client, unit="MG")

    data = crm.post("add_subscriptions", ADD)["data"]

    assert data["log_information"]["created_by_unit"]["name"] == "Admin Unit"


def test_tokens_expire_after_two_hours(crm):
    with time_machine.travel(timezone.now() + timedelta(hours=2, minutes=1), tick=False):
        answer = crm.post("add_subscriptions", ADD)

    assert status(answer) == "INVALID_TOKEN"
    assert ProvisioningRequest.objects.count() == 0


def test_a_released_token_is_refused(client, crm):
    released = client.post(
        BASE + "authentication/token/release", json.dumps({"token": crm.token}), content_type="application/json"
    ).json()

    assert status(released) == "OK"
    assert status(crm.get("list", type="ADD_SUBSCRIPTIONS")) == "INVALID_TOKEN"
    again = client.post(
        BASE + "authentication/token/release", json.dumps({"token": crm.token}), content_type="application/json"
    ).json()
    assert status(again) == "INVALID_TOKEN"


@pytest.mark.parametrize("token", ["", "F" * 32, None, 12])
def test_bad_tokens(crm, token):
    body = {**ADD, "token": token} if token is not None else ADD

    assert status(crm.post("add_subscriptions", body, token=False)) == "INVALID_TOKEN"


def test_wrong_http_method_and_unknown_method(client, crm):
    wrong = client.get(REQUESTS + "add_subscriptions", {"token": crm.token})
    unknown = client.post(REQUESTS + "delete_everything", "{}", content_type="application/json")

    assert (wrong.status_code, status(wrong.json())) == (405, "METHOD_NOT_ALLOWED")
    assert (unknown.status_code, status(unknown.json())) == (404, "UNKNOWN_METHOD")


# --- creation: every error writes nothing --------------------------------------------------------------------------

ERRORS = [
    ("add_subscriptions", {**SUB, **CARD}, "MISSING_PARAMETER"),
    ("add_subscriptions", {**ADD, "colour": "red"}, "UNKNOWN_PARAMETER"),
    ("add_subscriptions", {**ADD, "service_identifier": {"code": "P1", "id": "X"}}, "INVALID_IDENTIFIER"),
    ("add_subscriptions", {**ADD, "service_identifier": {"name": "P1"}}, "INVALID_IDENTIFIER"),
    ("add_subscriptions", {**ADD, "service_identifier": "P1"}, "INVALID_IDENTIFIER"),
    ("add_subscriptions", {**ADD, "service_identifier": {"code": ""}}, "INVALID_IDENTIFIER"),
    ("add_subscriptions", {**ADD, "service_identifier": {"code": "NOPE"}}, "NOT_FOUND"),
    ("add_subscriptions", {**ADD, "priority": "URGENT"}, "INVALID_PARAMETER"),
    ("add_subscriptions", {**ADD, "start_date": "tomorrow"}, "INVALID_PARAMETER"),
    ("add_subscriptions", {**ADD, "process_immediately": "yes"}, "INVALID_PARAMETER"),
    ("add_subscriptions", {**ADD, "service_identifier": {"code": "OTHER"}}, "CONSTRAINT_VIOLATION"),
    ("cancel_subscriptions", {**SUB, "service_identifier": {"code": "P1"}}, "MISSING_PARAMETER"),
    ("create_pairing", {"smartcard_set": [{"smartcard_ca_id": "0000-0000-0008"}]}, "MISSING_PARAMETER"),
    ("create_pairing", {"smartcard_set": [], "stb_set": [{"stb_ca_id": "THMOD001-10002"}]}, "INVALID_PARAMETER"),
    (
        "create_pairing",
        {"smartcard_set": [{"smartcard_ca_id": "nope"}], "stb_set": [{"stb_ca_id": "THMOD001-10002"}]},
        "NOT_FOUND",
    ),
    (
        "create_pairing",
        {"smartcard_set": [{"ca_id": "0000-0000-0008"}], "stb_set": [{"stb_ca_id": "THMOD001-10002"}]},
        "INVALID_IDENTIFIER",
    ),
    (
        "create_pairing",
        {"smartcard_set": [{"smartcard_ca_id": "0000-0000-0008"}] * 2, "stb_set": [{"stb_ca_id": "THMOD001-10002"}]},
        "INVALID_PARAMETER",
    ),
    ("add_to_existing_pairing", {**CARD}, "SEMI_OPTIONAL_PARAMETERS"),
    (
        "add_to_existing_pairing",
        {**CARD, "stb_set": [{"stb_ca_id": "0000-0000-0007"}], "smartcard_set": [{"smartcard_ca_id": "sc20000010"}]},
        "SEMI_OPTIONAL_PARAMETERS",
    ),
    ("reset_pin_to_given_value", {**SUB, **CARD, "pin": "12a4"}, "INVALID_PARAMETER"),
    ("reset_pin_to_given_value", {**SUB, **CARD, "pin": "12345"}, "INVALID_PARAMETER"),
    ("reset_pin_to_given_value", {**SUB, **CARD, "pin": 1234}, "INVALID_PARAMETER"),
    ("reset_pin_to_given_value", {**SUB, **CARD}, "MISSING_PARAMETER"),
    ("reset_pin_to_default_value", {**SUB, **CARD, "start_date": "2026-01-01T00:00:00"}, "UNKNOWN_PARAMETER"),
    ("get_pairing_status_for_pairing_module", {"stb_identifier": {"serial_number": "none"}}, "NOT_FOUND"),
    ("send_mail_message_to_client", {**CARD, "message": "x" * 142}, "INVALID_PARAMETER"),
    ("send_mail_message_to_client", {**CARD, "message": ""}, "INVALID_PARAMETER"),
    ("send_bark_message_to_client", {**CARD, "message": "x" * 130}, "INVALID_PARAMETER"),
    ("send_bark_message_to_client", {**CARD, "message": "hi", "duration": 0}, "INVALID_PARAMETER"),
    ("send_repeating_bark_message_to_client", {**CARD, "message": "hi", "interval": 15}, "INVALID_PARAMETER"),
    ("send_repeating_bark_message_to_client", {**CARD, "message": "hi", "interval": 5}, "INVALID_PARAMETER"),
    ("send_repeating_bark_message_to_client", {**CARD, "message": "hi", "interval": 2560}, "INVALID_PARAMETER"),
    ("send_repeating_bark_message_to_client", {**CARD, "message": "hi"}, "MISSING_PARAMETER"),
    ("display_fingerprint", {"position_x": -1}, "INVALID_PARAMETER"),
    ("display_fingerprint", {"display_date_time": 12}, "INVALID_PARAMETER"),
]


@pytest.mark.parametrize(("method", "body", "code"), ERRORS, ids=[f"{m}-{c}-{n}" for n, (m, _, c) in enumerate(ERRORS)])
def test_creation_errors_write_nothing(crm, world, method, body, code):
    ServiceFactory(code="OTHER", service_ca_id="OTHER-CA")  # not in the subscription

    answer = crm.post(method, body)

    assert (status(answer), answer["data"]) == (code, None), answer["status"]
    assert answer["status"]["message"]
    assert ProvisioningRequest.objects.count() == 0


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"", b'"text"', b"[" * 50_000])
def test_a_body_that_is_not_a_json_object(crm, body):
    assert status(crm.post("add_subscriptions", body)) == "INVALID_REQUEST"


def test_a_card_of_another_subscription_is_refused(crm, world):
    other = SubscriptionFactory(number="S-OTHER")
    world.card.subscription = other
    world.card.save()

    answer = crm.post("add_subscriptions", {**ADD, "smartcard_identifier": {"id": world.card.pk}})

    assert status(answer) == "CONSTRAINT_VIOLATION"


# --- each type's request -------------------------------------------------------------------------------------------

CREATED = [
    (
        "cancel_subscriptions",
        ADD,
        "CANCEL_SUBSCRIPTIONS",
        {"service_ca_id": "P1test", "smartcard_ca_id": "0000-0000-0008"},
    ),
    ("get_active_subscriptions", CARD, "GET_ACTIVE_SUBSCRIPTIONS", {"smartcard_ca_id": "0000-0000-0008"}),
    ("get_pairing_status_for_card", CARD, "GET_PAIRING_STATUS_FOR_CARD", {"smartcard_ca_id": "0000-0000-0008"}),
    (
        "get_pairing_status_for_pairing_module",
        {"stb_identifier": {"serial_number": "BOX-7"}},
        "GET_PAIRING_STATUS_FOR_PAIRING_MODULE",
        {"stb_ca_id": "0000-0000-0007"},
    ),
    (
        "display_fingerprint",
        {**CARD, "height": 10, "fingerprint_slot": "A"},
        "DISPLAY_FINGERPRINT",
        {"smartcard_ca_id": "0000-0000-0008", "height": 10, "fingerprint_slot": "A", "position_x": None},
    ),
    ("display_fingerprint", {}, "DISPLAY_FINGERPRINT", {"smartcard_ca_id": None}),
    (
        "send_mail_message_to_client",
        {**CARD, "message": "m" * 141},
        "SEND_MAIL_MESSAGE_TO_CLIENT",
        {"message": "m" * 141},
    ),
    (
        "send_bark_message_to_client",
        {**CARD, "message": "b" * 129},
        "SEND_BARK_MESSAGE_TO_CLIENT",
        {"message": "b" * 129, "duration": 20},
    ),
    (
        "send_repeating_bark_message_to_client",
        {**CARD, "message": "r", "interval": 2550, "repetitions": 3},
        "SEND_REPEATING_BARK_MESSAGE_TO_CLIENT",
        {"interval": 2550, "repetitions": 3},
    ),
    (
        "add_to_existing_pairing",
        {**CARD, "smartcard_set": [{"serial_number": "sc20000010"}]},
        "ADD_TO_EXISTING_PAIRING",
        {"existing_smartcard_ca_id": "0000-0000-0008", "smartcard_ca_id": "sc20000010"},
    ),
]


@pytest.mark.parametrize(("method", "body", "type_", "params"), CREATED, ids=[c[0] for c in CREATED])
def test_each_method_creates_its_request_type(crm, method, body, type_, params):
    answer = crm.post(method, body)

    assert status(answer) == "OK", answer["status"]
    data = answer["data"]
    assert (data["type"], data["life_cycle_state"]) == (type_, "PENDING")
    given = {k: v for entry in data["parameters_set"] for k, v in entry.items() if k != "id"}
    assert {k: given.get(k) for k in params} == params
    assert ProvisioningRequest.objects.get().type == type_


def test_the_ca_pin_is_encrypted_and_never_logged_or_returned(crm, caplog):
    caplog.set_level(logging.DEBUG)

    answer = crm.post("reset_pin_to_given_value", {**SUB, **CARD, "pin": "8642"})

    stored = ProvisioningRequest.objects.get()
    assert pin_decrypt(stored.ca_pin_encrypted) == "8642"
    assert "8642" not in json.dumps(answer) and "8642" not in caplog.text
    assert {"ca_pin": None} in [{k: v for k, v in e.items() if k != "id"} for e in answer["data"]["parameters_set"]]


def test_process_immediately_and_start_date(crm):
    later = crm.post("add_subscriptions", {**ADD, "start_date": "2030-01-01T10:00:00", "process_immediately": 0})
    now = crm.post("add_subscriptions", {**ADD, "process_immediately": True, "priority": "EXPRESS"})

    assert later["data"]["scheduled_date"] == "2030-01-01T10:00:00" and later["data"]["process_immediately"] == 0
    assert (now["data"]["process_immediately"], now["data"]["priority"]) == (1, "EXPRESS")
    assert [r.sequence_number for r in ProvisioningRequest.objects.order_by("number")] == [1, 2]


# --- show and list -------------------------------------------------------------------------------------------------


def test_show_by_id_or_number_and_fields_set(crm):
    created = crm.post("add_subscriptions", ADD)["data"]

    by_id = crm.get("show", id=created["id"])
    by_number = crm.get("show", number=created["number"], fields_set="id,life_cycle_state,type")

    assert by_id["data"] == created
    assert by_number["data"] == {"id": created["id"], "life_cycle_state": "PENDING", "type": "ADD_SUBSCRIPTIONS"}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        pytest.param({}, "SEMI_OPTIONAL_PARAMETERS", id="neither"),
        pytest.param({"id": "<id>", "number": "<number>"}, "SEMI_OPTIONAL_PARAMETERS", id="both"),
        pytest.param({"number": "999999"}, "NOT_FOUND", id="unknown"),
        pytest.param({"number": "<number>", "fields_set": "id,colour"}, "INVALID_FIELDS_SET", id="unknown-field"),
        pytest.param({"number": "<number>", "fields_set": ","}, "INVALID_FIELDS_SET", id="empty-fields"),
        pytest.param({"number": "<number>", "extra": "1"}, "UNKNOWN_PARAMETER", id="unknown-parameter"),
    ],
)
def test_show_errors(crm, params, code):
    created = crm.post("add_subscriptions", ADD)["data"]
    params = {k: {"<id>": created["id"], "<number>": created["number"]}.get(v, v) for k, v in params.items()}

    assert status(crm.get("show", **params)) == code


def test_list_pages_and_filters(crm):
    numbers = [int(crm.post("add_subscriptions", ADD)["data"]["number"]) for _ in range(5)]
    crm.post("send_mail_message_to_client", {**CARD, "message": "hello"})

    first = crm.get("list", type="ADD_SUBSCRIPTIONS", number_of_results=2, fields_set="number")
    third = crm.get("list", type="ADD_SUBSCRIPTIONS", number_of_results=2, offset=4, fields_set="number")
    pending = crm.get("list", life_cycle_state="PENDING", fields_set="type")

    assert first["data"] == [{"number": str(numbers[0])}, {"number": str(numbers[1])}]
    assert third["data"] == [{"number": str(numbers[4])}]
    assert len(pending["data"]) == 6
    assert status(crm.get("list", reference_number="nothing")) == "OK"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        pytest.param({}, "SEMI_OPTIONAL_PARAMETERS", id="no-filter"),
        pytest.param(
            {"type": "ADD_SUBSCRIPTIONS", "life_cycle_state": "PENDING"}, "SEMI_OPTIONAL_PARAMETERS", id="two-filters"
        ),
        pytest.param({"type": "ADD"}, "INVALID_PARAMETER", id="bad-type"),
        pytest.param({"type": "ADD_SUBSCRIPTIONS", "number_of_results": "0"}, "INVALID_PARAMETER", id="zero-results"),
        pytest.param({"type": "ADD_SUBSCRIPTIONS", "number_of_results": "1001"}, "INVALID_PARAMETER", id="too-many"),
        pytest.param({"type": "ADD_SUBSCRIPTIONS", "offset": "-1"}, "INVALID_PARAMETER", id="negative-offset"),
    ],
)
def test_list_errors(crm, params, code):
    assert status(crm.get("list", **params)) == code


def test_list_query_count_does_not_grow_with_the_page(crm, django_assert_num_queries):
    for _ in range(6):
        crm.post("add_subscriptions", ADD)

    with django_assert_num_queries(3) as small:  # token (its user, support group), page, its users (no unit here)
        crm.get("list", type="ADD_SUBSCRIPTIONS", number_of_results=1)
    with django_assert_num_queries(len(small.captured_queries)):
        crm.get("list", type="ADD_SUBSCRIPTIONS", number_of_results=6)
