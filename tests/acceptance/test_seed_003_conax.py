"""Seed 003 (CRM.COM Conax web services), replayed: each example request as the document writes it (its token
aside), and each example response compared field by field. Ids, numbers, dates and the per-card sequence number
are checked for their shape; every other value must equal the document's.

The entities the examples name exist here under the examples' own ids, CA ids and serial numbers
(``tests.conax.support.world_load``), and the requests are made by a user named like the document's.
"""

from __future__ import annotations

import re

import pytest

from conax import gateway, pipeline
from conax.models import ProvisioningRequest
from tests.conax.support import Crm, world_load
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db
HEX32 = re.compile(r"[0-9A-F]{32}")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
USER = {"person_name": "Marios Lannister", "username": "MPAdministrator", "id": "1", "email": None}
UNIT = {"community_name": "Main Community", "group_name": "Main Group", "name": "Admin Unit",
        "id": "48305F8849E3C18B227C5BE3A27BA6DF", "description": "r1", "alternative_code": "MG"}  # fmt: skip
LOG = {"updated_date": "2014-09-24T15:43:56", "created_by_unit": UNIT, "created_date": "2014-09-24T15:43:56",
       "updated_by_unit": UNIT, "created_by_user": USER, "updated_by_user": USER}  # fmt: skip


def pending(type_: str, priority: str, scheduled: str | None, parameters: list[dict]) -> dict:
    """A creation example's data: every example answers a PENDING request with these same fields."""
    return {
        "scheduled_date": scheduled, "response": None, "error_code": None, "priority": priority,
        "error_description": None, "sequence_number": ANY_SEQUENCE, "process_id": None, "name": None,
        "parameters_set": parameters, "process_immediately": 0, "request": None, "log_information": LOG,
        "provider_error_code": None, "life_cycle_state": "PENDING", "provider_error_description": None,
        "type": type_, "id": "7630193CC386C7AF57B31EDAE931FD64", "process_name": None, "executed_date": None,
    }  # fmt: skip


def assert_like(answer, example, path="data") -> None:
    """Field by field: the example's keys all present (the answer may carry more), same values, except that ids,
    numbers, dates and sequence numbers are checked for their shape."""
    if not isinstance(example, dict):
        assert answer == example, f"{path}: {answer!r} != {example!r}"
        return
    assert isinstance(answer, dict), path
    for key, value in example.items():
        assert key in answer, f"{path}.{key} missing"
        got, where = answer[key], f"{path}.{key}"
        if key == "parameters_set":
            assert_parameters(got, value, where)
        elif key in SHAPED and value is not None and not path.endswith("_unit"):
            assert SHAPED[key](got, answer), f"{where}: {got!r}"
        else:
            assert_like(got, value, where)


SHAPED = {
    "id": lambda got, row: isinstance(got, str) and (got.isdigit() or bool(HEX32.fullmatch(got))),
    "number": lambda got, row: isinstance(got, str) and got.isdigit(),
    "created_date": lambda got, row: bool(DATE.fullmatch(got)),
    "updated_date": lambda got, row: bool(DATE.fullmatch(got)),
    "scheduled_date": lambda got, row: bool(DATE.fullmatch(got)),
    "executed_date": lambda got, row: bool(DATE.fullmatch(got)),
    "reference_number": lambda got, row: isinstance(got, str) and len(got) >= 8,
    "response": lambda got, row: got == "OK" + row["reference_number"],
    # The document shows null or a number; here every request of a smartcard gets its place in the card's order.
    "sequence_number": lambda got, row: got is None or isinstance(got, int),
}
ANY_SEQUENCE = "null or a number"


def assert_parameters(answer: list[dict], example: list[dict], path: str) -> None:
    """Each parameter is ``{name: value, "id": <hex>}``; the order is not part of the contract; distribution ids
    are CRM-internal references (here: the subscription's id)."""

    def named(entries):
        return sorted((k, "*" if "distribut" in k else v) for e in entries for k, v in e.items() if k != "id")

    assert named(answer) == named(example), path
    assert all(HEX32.fullmatch(entry["id"]) for entry in answer), path


@pytest.fixture
def world(db):
    StaffFactory(username="MPAdministrator", first_name="Marios", last_name="Lannister", email="")
    return world_load()


@pytest.fixture
def crm(client, world) -> Crm:
    return Crm.login(client, "MPAdministrator", unit="Admin Unit")


def ok(answer: dict) -> dict:
    assert answer["status"] == {"message": None, "description": None, "code": "OK"}, answer["status"]
    assert list(answer) == ["status", "data"]
    return answer["data"]


def test_add_subscriptions_example(crm):
    data = ok(crm.post("add_subscriptions", {
        "token": crm.token,
        "subscription_identifier": {"id": "98D375E905CD31F4CC780342525B2078"},
        "smartcard_identifier": {"id": "ABE63350738749C47F404687DA5E5A47"},
        "service_identifier": {"id": "5C2DCFDD743632AC57AE8147B6EE665E"},
        "start_date": "2014-11-30T09:00:00",
        "priority": "EXPRESS",
    }))  # fmt: skip

    example = pending("ADD_SUBSCRIPTIONS", "EXPRESS", "2014-11-30T09:00:00", [
        {"sub_provisioning_distribution_id": "23423", "id": "C85CCA904FE8BF99C4B37FE710700869"},
        {"service_ca_id": "P1test", "id": "3F8DDA2C4608FF21843CFEB3FDDBA2B4"},
        {"smartcard_ca_id": "stb01-3020-0005", "id": "5FB6A0207DE74919C0A7C2F3737305AC"},
    ])  # fmt: skip
    assert_like(data, example)
    assert data["scheduled_date"] == "2014-11-30T09:00:00"


def test_cancel_subscriptions_example(crm):
    data = ok(crm.post("cancel_subscriptions", {
        "token": crm.token,
        "subscription_identifier": {"id": "98D375E905CD31F4CC780342525B2078"},
        "service_identifier": {"id": "5C2DCFDD743632AC57AE8147B6EE665E"},
        "smartcard_identifier": {"id": "ABE63350738749C47F404687DA5E5A47"},
        "start_date": "2014-09-30T09:00:00",
        "priority": "EXPRESS",
    }))  # fmt: skip

    assert_like(data, pending("CANCEL_SUBSCRIPTIONS", "EXPRESS", "2014-09-30T09:00:00", [
        {"service_ca_id": "P1test", "id": "CA1473D15538AAAE7AA6F35234384857"},
        {"smartcard_ca_id": "stb01-3020-0005", "id": "E438C50CD0CC089E15C37DE0D0B0202F"},
        {"sub_provisioning_distribution_id": "23423", "id": "A9A324EDDD60DEDE7425C5BFEF96910A"},
    ]))  # fmt: skip


def test_create_pairing_example(crm):
    data = ok(crm.post("create_pairing", {
        "token": crm.token,
        "subscription_identifier": {"id": "98D375E905CD31F4CC780342525B2078"},
        "smartcard_set": [{"smartcard_ca_id": "stb01-3020-0005"}],
        "stb_set": [{"stb_ca_id": "THMOD001-10002"}],
    }))  # fmt: skip

    assert_like(data, pending("CREATE_PAIRING", "REGULAR", "2014-10-30T09:00:00", [
        {"id": "0E00CF63793A21302ED21E7CB5D0E826", "stb_ca_id": "THMOD001-10002"},
        {"smartcard_ca_id": "stb01-3020-0005", "id": "8B8BAB8CD7E651E4CF42FCF0518850B8"},
        {"stb_sub_provisioning_distributor_id": "DC8C40B2BD4CACB6D1339C12E9DD7F9A",
         "id": "907416B03803425E9DB34516AF0658AE"},
        {"smartcard_sub_provisioning_distribution_id": "D38DDF91D9005B116F9B02DBB4EA258A",
         "id": "C32239BD7B893C669BA2C5930B151A33"},
    ]))  # fmt: skip


def test_add_to_existing_pairing_example(crm):
    data = ok(crm.post("add_to_existing_pairing", {
        "token": crm.token,
        "smartcard_identifier": {"serial_number": "S60058"},
        "stb_set": [{"stb_ca_id": "0000-0000-0007"}],
    }))  # fmt: skip

    example = pending("ADD_TO_EXISTING_PAIRING", "REGULAR", "2014-10-15T13:53:12", [
        {"existing_smartcard_ca_id": "0000-0000-0008", "id": "8F36244F78FDCF90A96B2F2504132495"},
        {"id": "6ED43647157F14D218F81C9B9A61033B", "stb_ca_id": "0000-0000-0007"},
    ])  # fmt: skip
    example["process_name"] = None  # the document shows "MANUAL": a request made in its UI; over the API: null
    assert_like(data, example)


def test_reset_pin_to_default_value_example(crm):
    data = ok(crm.post("reset_pin_to_default_value", {
        "token": crm.token,
        "subscription_identifier": {"number": "S60058"},
        "smartcard_identifier": {"serial_number": "S60058"},
    }))  # fmt: skip

    assert_like(data, pending("UPDATE_CA_PIN_TO_DEFAULT_VALUE", "REGULAR", "2014-10-29T09:00:00", [
        {"smartcard_sub_provisioning_distribution_id": "AD4377F035250EB92E8DBF5A97B5AF8B",
         "id": "A8FA413E992B42FB5C2FE6D609085B9F"},
        {"smartcard_ca_id": "0000-0000-0008", "id": "CB0FE4C65B882941BDCE39F591E9F57D"},
    ]))  # fmt: skip


def test_reset_pin_to_given_value_example_never_returns_the_pin(crm):
    answer = crm.post("reset_pin_to_given_value", {
        "token": crm.token,
        "subscription_identifier": {"number": "S60058"},
        "pin": "1234",
        "smartcard_identifier": {"serial_number": "sc20000010"},
    })  # fmt: skip

    assert_like(ok(answer), pending("UPDATE_CA_PIN_TO_GIVEN_VALUE", "REGULAR", "2014-10-07T18:24:41", [
        {"smartcard_sub_provisioning_distribution_id": "AD4377F035250EB92E8DBF5A97B5AF8B",
         "id": "997AB8F568D6FA91171E8DB39C1EAFC1"},
        {"smartcard_ca_id": "sc20000010", "id": "D6D2AE333162FC568D724DAB6DB30F14"},
        {"ca_pin": None, "id": "610A89DC991ED28575C173518AB0796F"},
    ]))  # fmt: skip
    stored = ProvisioningRequest.objects.get()
    assert "1234" not in str(answer) and "1234" not in str(stored.parameters_set)
    assert stored.ca_pin_encrypted and "1234" not in stored.ca_pin_encrypted


def test_show_example_of_a_completed_pin_reset(crm, world, settings):
    pipeline_gateway(settings)
    number = ok(crm.post("reset_pin_to_default_value", {
        "subscription_identifier": {"number": "S60058"}, "smartcard_identifier": {"serial_number": "sc20000010"},
        "process_immediately": 1}))["number"]  # fmt: skip
    assert pipeline.request_process(number=int(number)) == "COMPLETED"

    data = ok(crm.get("show", number=number))

    assert_like(data, {
        "scheduled_date": "2014-11-28T15:05:20", "response": "OK38a4254b-6663-4cb5-9764-e2a292264515",
        "error_code": None, "priority": "REGULAR", "error_description": None, "sequence_number": ANY_SEQUENCE,
        "number": "4049", "process_id": None, "name": None,
        "parameters_set": [
            {"smartcard_sub_provisioning_distribution_id": "D62E3D20B3BA1302FE1161F3BF594825",
             "id": "5CE67A0C53D1A3DDA8DA4409FB6C1158"},
            {"smartcard_ca_id": "sc20000010", "id": "765FE22363D4DEA69320D4927551527E"},
        ],
        "process_immediately": 1, "request": "sc20000010", "log_information": LOG, "life_cycle_state": "COMPLETED",
        "type": "UPDATE_CA_PIN_TO_DEFAULT_VALUE", "id": "FA2BA704F393A8BE1A6CF108A4C8B214",
        "reference_number": "38a4254b-6663-4cb5-9764-e2a292264515", "executed_date": "2014-11-28T15:05:26",
    })  # fmt: skip
    assert data["process_id"] is None or isinstance(data["process_id"], str)


def test_list_example_pending_add_subscriptions(crm):
    for _ in range(2):
        ok(crm.post("add_subscriptions", {
            "subscription_identifier": {"id": "98D375E905CD31F4CC780342525B2078"},
            "smartcard_identifier": {"id": "ABE63350738749C47F404687DA5E5A47"},
            "service_identifier": {"id": "5C2DCFDD743632AC57AE8147B6EE665E"}}))  # fmt: skip
    ok(crm.post("send_mail_message_to_client", {"smartcard_identifier": {"serial_number": "S60058"},
                                                "message": "hello"}))  # fmt: skip

    data = ok(crm.get("list", type="ADD_SUBSCRIPTIONS"))

    assert [row["type"] for row in data] == ["ADD_SUBSCRIPTIONS", "ADD_SUBSCRIPTIONS"]
    example = {**pending("ADD_SUBSCRIPTIONS", "REGULAR", "2014-03-04T10:32:45", [
        {"sub_provisioning_distribution_id": "0FBD747C2FCD1D64D9DE7610C0124E0E", "id": "3"},
        {"smartcard_ca_id": "2222", "id": "2"}, {"service_ca_id": "1111", "id": "1"},
    ])}  # fmt: skip
    for row in data:
        assert {k: v for k, v in row.items() if k not in example} == {"number": row["number"],
                                                                      "reference_number": None}  # fmt: skip
        assert [sorted(e) for e in row["parameters_set"]] == [
            ["id", "sub_provisioning_distribution_id"],
            ["id", "service_ca_id"],
            ["id", "smartcard_ca_id"],
        ]
    assert [row["sequence_number"] for row in data] == [1, 2]


def pipeline_gateway(settings) -> None:
    """The in-process simulator as head-end, fresh for the test."""
    settings.CAS_GATEWAY_URL = "inprocess:"
    gateway.reset_gateway_cache()
