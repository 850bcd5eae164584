"""Seed 003 (CRM.COM Conax web services), replayed from the document itself (``tests/acceptance/seeds/003_*``): each
example request as the document writes it (its token aside), and each answer compared with the example response key
by key, in order, every extra or missing key named. Ids, numbers, dates and the per-card sequence number are checked
for their shape; every other value must equal the document's, and where it does not the difference is listed.

The entities the examples name exist here under the examples' own ids, CA ids and serial numbers
(``tests.conax.support.world_load``), and the requests are made by a user named like the document's.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conax import gateway, pipeline
from conax.models import ProvisioningRequest
from tests.acceptance.seeds import SEEDS, crm_examples, differences
from tests.conax.factories import SmartcardFactory
from tests.conax.support import Crm, world_load
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db
HEX32 = re.compile(r"[0-9A-F]{32}")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
CREATIONS = [
    "add_subscriptions",
    "cancel_subscriptions",
    "create_pairing",
    "add_to_existing_pairing",
    "reset_pin_to_default_value",
    "reset_pin_to_given_value",
]


def _date(got, example) -> bool:
    return got is None if example is None else bool(isinstance(got, str) and DATE.fullmatch(got))


# What necessarily differs from the document (ids, numbers, the dates of now), checked for its shape; every other
# value must equal the document's. Unit ids are the document's own (``world_load``), so they are not here.
SHAPES = {
    r"\.data\.id": lambda got, example: isinstance(got, str) and bool(HEX32.fullmatch(got)),
    r"\.data\.number": lambda got, example: isinstance(got, str) and got.isdigit(),
    r"\.data\.parameters_set\.id": lambda got, example: isinstance(got, str) and bool(HEX32.fullmatch(got)),
    # distribution ids are CRM-internal references (here: the subscription's id)
    r"\.data\.parameters_set\..*distribut.*": lambda got, example: isinstance(got, str) and bool(got),
    r"\.data\.log_information\.\w+_user\.id": lambda got, example: isinstance(got, str) and got.isdigit(),
    r"\.data\.(log_information\.)?\w+_date": _date,
    r"\.data\.reference_number": lambda got, example: isinstance(got, str) and len(got) >= 8,
    r"\.data\.response": lambda got, example: got is None if example is None else str(got).startswith("OK"),
    # The document shows null or a number; here every request of a smartcard gets its place in the card's order.
    r"\.data\.sequence_number": lambda got, example: got is None or isinstance(got, int),
}

# Where the document's example disagrees with what the portal answers, exactly; each is a finding, not a tolerance.
# Every creation answer carries the request's number and reference number (null until the head-end answers), as
# the document's show and list examples do; its creation examples leave both keys out.
CREATED = [".data: extra 'number'", ".data: extra 'reference_number'"]
# A parameter is answered {name: …, "id": …} on both databases (read back from PostgreSQL's jsonb too); the document
# writes the name first, except for set-top box CA ids, which it writes id first.
STB_ORDER = "keys in the order ['stb_ca_id', 'id'], the example has ['id', 'stb_ca_id']"


KNOWN = {
    "create_pairing": [*CREATED, f".data.parameters_set[2]: {STB_ORDER}"],
    "add_to_existing_pairing": [
        *CREATED,
        f".data.parameters_set[1]: {STB_ORDER}",
        ".data.process_name: None, the example has 'MANUAL'",  # made in CRM.COM's own UI; over the API: no process
    ],
    # The document's request names card S60058, whose CA id its add_to_existing_pairing example gives as
    # 0000-0000-0008; this example's answer names another card's CA id.
    "reset_pin_to_default_value": [
        *CREATED,
        ".data.parameters_set[0].smartcard_ca_id: '0000-0000-0008', the example has 'sc20000010'",
    ],
}


def example(method: str) -> tuple[dict | None, dict]:
    return crm_examples()[method]


def by_name(parameters: list[dict]) -> list[dict]:
    """The parameters in the order of their names: the order is not part of the contract."""
    return sorted(parameters, key=lambda entry: sorted(k for k in entry if k != "id"))


def seed_differences(answer: dict, expected: dict, shapes: dict | None = None) -> list[str]:
    answer, expected = dict(answer), dict(expected)
    for body in (answer, expected):
        if isinstance(body.get("data"), dict) and "parameters_set" in body["data"]:
            body["data"] = {**body["data"], "parameters_set": by_name(body["data"]["parameters_set"])}
    return differences(answer, expected, SHAPES if shapes is None else shapes)


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


def test_every_method_of_the_document_has_its_example():
    assert list(crm_examples()) == ["show", "list", *CREATIONS]


@pytest.mark.parametrize("method", CREATIONS)
def test_creation_example(crm, method):
    request, response = example(method)
    shapes = dict(SHAPES)
    if "start_date" not in request:  # scheduled now, not at the document's date
        shapes[r"\.data\.scheduled_date"] = _date

    answer = crm.post(method, {**request, "token": crm.token})

    ok(answer)
    assert seed_differences(answer, response, shapes) == KNOWN.get(method, CREATED)
    if "start_date" in request:
        assert answer["data"]["scheduled_date"] == request["start_date"]


def test_reset_pin_to_given_value_example_never_returns_the_pin(crm):
    request, _ = example("reset_pin_to_given_value")

    answer = crm.post("reset_pin_to_given_value", {**request, "token": crm.token})

    ok(answer)
    stored = ProvisioningRequest.objects.get()
    assert request["pin"] == "1234"
    assert "1234" not in str(answer) and "1234" not in str(stored.parameters_set)
    assert stored.ca_pin_encrypted and "1234" not in stored.ca_pin_encrypted


def test_show_example_of_a_completed_pin_reset(crm, world, settings):
    _, response = example("show")
    card = response["data"]["request"]  # the card the document's request was for
    SmartcardFactory(serial_number=card, ca_id=card, subscription=world.subscription)
    pipeline_gateway(settings)
    number = ok(
        crm.post(
            "reset_pin_to_default_value",
            {
                "subscription_identifier": {"number": "S60058"},
                "smartcard_identifier": {"serial_number": card},
                "process_immediately": 1,
            },
        )
    )["number"]
    assert pipeline.request_process(number=int(number)) == "COMPLETED"

    answer = crm.get("show", number=number)

    data = ok(answer)
    assert seed_differences(answer, response) == [
        # The document's creation examples carry the provider error keys; its show example leaves them out.
        ".data: extra 'provider_error_code'",
        ".data: extra 'provider_error_description'",
        # The document's show example was made by another user and unit record, and by a utility process:
        ".data.log_information.created_by_unit: extra 'community_name'",
        ".data.log_information.created_by_unit.group_name: 'Main Group', the example has None",
        ".data.log_information.updated_by_unit: extra 'community_name'",
        ".data.log_information.updated_by_unit.group_name: 'Main Group', the example has None",
        ".data.log_information.created_by_user.person_name: 'Marios Lannister', the example has 'MPAdministrator'",
        ".data.log_information.updated_by_user.person_name: 'Marios Lannister', the example has 'MPAdministrator'",
        ".data.process_name: None, the example has 'RESET_PIN_UTILITY'",
    ]
    assert data["response"] == "OK" + data["reference_number"]


def test_list_example_pending_add_subscriptions(crm):
    _, response = example("list")
    for _ in range(2):
        ok(
            crm.post(
                "add_subscriptions",
                {
                    "subscription_identifier": {"id": "98D375E905CD31F4CC780342525B2078"},
                    "smartcard_identifier": {"id": "ABE63350738749C47F404687DA5E5A47"},
                    "service_identifier": {"id": "5C2DCFDD743632AC57AE8147B6EE665E"},
                },
            )
        )
    ok(
        crm.post(
            "send_mail_message_to_client", {"smartcard_identifier": {"serial_number": "S60058"}, "message": "hello"}
        )
    )

    data = ok(crm.get("list", type="ADD_SUBSCRIPTIONS"))

    assert [row["type"] for row in data] == ["ADD_SUBSCRIPTIONS", "ADD_SUBSCRIPTIONS"]
    seed_row = response["data"][0]  # the document's ADD_SUBSCRIPTIONS row, of other cards and services
    assert seed_row["type"] == "ADD_SUBSCRIPTIONS"
    seed_row = {**seed_row, "parameters_set": by_name(seed_row["parameters_set"])}
    for row in data:
        assert differences({**row, "parameters_set": by_name(row["parameters_set"])}, seed_row, values=False) == [
            # the document's list rows leave out the number, the reference number and the units its other
            # examples show
            ": extra 'number'",
            ": extra 'reference_number'",
            ".log_information: extra 'created_by_unit'",
            ".log_information: extra 'updated_by_unit'",
        ]
        # (the document lists the card before the service; the order is not part of the contract: see by_name)
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


def test_seeds_are_verbatim():
    """The copies equal the shared originals, when this checkout sits beside them (not in a clean CI clone)."""
    originals = Path("/work/shared/seeds")
    if not originals.is_dir():
        pytest.skip("the shared seed folder is not on this machine")
    copies = sorted(p.name for p in SEEDS.glob("*.txt"))
    assert copies == sorted(p.name for p in originals.glob("*.txt"))
    assert all((SEEDS / name).read_bytes() == (originals / name).read_bytes() for name in copies)
