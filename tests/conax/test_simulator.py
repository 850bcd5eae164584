"""The CAS simulator: every command's effect and refusal, idempotency, faults, and its HTTP protocol over a socket."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from conax.gateway import CasCommand, Completed, GatewayUnavailable, Rejected
from conax.simulator import REQUEST_TYPES, CasServerThread, CasSimulator, HeadendUnavailable

CARDS, STBS = ["C1", "C2", "C3"], ["S1", "S2"]
TIMEOUT = 5.0


def new_key() -> str:
    return uuid.uuid4().hex.upper()


def command(type_: str, key: str | None = None, **params) -> CasCommand:
    return CasCommand(idempotency_key=key or new_key(), type=type_, params=params)


def is_ok(outcome, response: str | None = None) -> bool:
    """Completed, with a uuid4 reference and the given response (default: "OK" + reference)."""
    assert isinstance(outcome, Completed), outcome
    assert uuid.UUID(outcome.reference_number).version == 4
    return outcome.response == (response if response is not None else "OK" + outcome.reference_number)


@pytest.fixture
def sim() -> CasSimulator:
    simulator = CasSimulator()
    simulator.register(smartcard_ca_ids=CARDS, stb_ca_ids=STBS)
    return simulator


def send(sim: CasSimulator, type_: str, **params):
    return sim.send(command(type_, **params))


def pair(sim: CasSimulator, cards: list[str], stbs: list[str]):
    return send(sim, "CREATE_PAIRING", smartcard_ca_ids=cards, stb_ca_ids=stbs)


def card_state(sim: CasSimulator, ca_id: str) -> dict:
    return sim.card(ca_id)


# --- subscriptions -------------------------------------------------------------------------------------------------


def test_add_subscription_entitles_the_card(sim):
    outcome = send(sim, "ADD_SUBSCRIPTIONS", smartcard_ca_id="C1", service_ca_id="P1test")

    assert is_ok(outcome)
    assert card_state(sim, "C1")["entitlements"] == ["P1test"]
    assert card_state(sim, "C2")["entitlements"] == []


def test_adding_an_active_service_is_accepted_and_changes_nothing(sim):
    send(sim, "ADD_SUBSCRIPTIONS", smartcard_ca_id="C1", service_ca_id="P1test")

    assert is_ok(send(sim, "ADD_SUBSCRIPTIONS", smartcard_ca_id="C1", service_ca_id="P1test"))
    assert card_state(sim, "C1")["entitlements"] == ["P1test"]


def test_cancel_removes_the_entitlement(sim):
    send(sim, "ADD_SUBSCRIPTIONS", smartcard_ca_id="C1", service_ca_id="A")
    send(sim, "ADD_SUBSCRIPTIONS", smartcard_ca_id="C1", service_ca_id="B")

    assert is_ok(send(sim, "CANCEL_SUBSCRIPTIONS", smartcard_ca_id="C1", service_ca_id="A"))
    assert card_state(sim, "C1")["entitlements"] == ["B"]


def test_cancel_of_a_service_the_card_lacks_is_refused(sim):
    send(sim, "ADD_SUBSCRIPTIONS", smartcard_ca_id="C1", service_ca_id="B")

    outcome = send(sim, "CANCEL_SUBSCRIPTIONS", smartcard_ca_id="C1", service_ca_id="A")

    assert outcome == Rejected("SERVICE_NOT_ACTIVE", "service A is not active on smartcard C1")
    assert card_state(sim, "C1")["entitlements"] == ["B"]


def test_active_subscriptions_come_back_sorted_as_compact_json(sim):
    for service in ("zeta", "alpha", "mid"):
        send(sim, "ADD_SUBSCRIPTIONS", smartcard_ca_id="C1", service_ca_id=service)

    outcome = send(sim, "GET_ACTIVE_SUBSCRIPTIONS", smartcard_ca_id="C1")

    assert is_ok(outcome, '{"services":["alpha","mid","zeta"]}')
    assert is_ok(send(sim, "GET_ACTIVE_SUBSCRIPTIONS", smartcard_ca_id="C2"), '{"services":[]}')


# --- pairings ------------------------------------------------------------------------------------------------------

UNPAIRED = '{"paired":false,"stb_ca_ids":[],"smartcard_ca_ids":[]}'


def test_create_pairing_pairs_cards_and_boxes(sim):
    assert is_ok(pair(sim, ["C2", "C1"], ["S1"]))

    expected = '{"paired":true,"stb_ca_ids":["S1"],"smartcard_ca_ids":["C1","C2"]}'
    assert is_ok(send(sim, "GET_PAIRING_STATUS_FOR_CARD", smartcard_ca_id="C1"), expected)
    assert is_ok(send(sim, "GET_PAIRING_STATUS_FOR_PAIRING_MODULE", stb_ca_id="S1"), expected)
    assert is_ok(send(sim, "GET_PAIRING_STATUS_FOR_CARD", smartcard_ca_id="C3"), UNPAIRED)
    assert is_ok(send(sim, "GET_PAIRING_STATUS_FOR_PAIRING_MODULE", stb_ca_id="S2"), UNPAIRED)


def test_pairing_the_same_items_again_changes_nothing(sim):
    pair(sim, ["C1"], ["S1"])

    assert is_ok(pair(sim, ["C1"], ["S1"]))
    assert card_state(sim, "C1")["pairing"] == {"smartcard_ca_ids": ["C1"], "stb_ca_ids": ["S1"]}
    assert len(sim.headend.pairings) == 1


@pytest.mark.parametrize(
    ("cards", "stbs", "code", "description"),
    [
        (["C3", "C1"], ["S2"], "CARD_ALREADY_PAIRED", "smartcard C1 is in another pairing"),
        (["C3"], ["S2", "S1"], "STB_ALREADY_PAIRED", "set-top box S1 is in another pairing"),
    ],
    ids=["card", "stb"],
)
def test_create_pairing_refuses_items_of_another_pairing(sim, cards, stbs, code, description):
    pair(sim, ["C1"], ["S1"])

    assert pair(sim, cards, stbs) == Rejected(code, description)
    assert [card_state(sim, ca_id)["paired"] for ca_id in CARDS] == [True, False, False]
    assert sim.headend.stbs["S2"].pairing is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"stb_ca_ids": ["S2"]}, {"smartcard_ca_ids": ["C1"], "stb_ca_ids": ["S1", "S2"]}),
        ({"smartcard_ca_ids": ["C2", "C1"]}, {"smartcard_ca_ids": ["C1", "C2"], "stb_ca_ids": ["S1"]}),
    ],
    ids=["stbs", "cards-including-one-already-there"],
)
def test_add_to_existing_pairing_extends_it(sim, given, expected):
    pair(sim, ["C1"], ["S1"])

    assert is_ok(send(sim, "ADD_TO_EXISTING_PAIRING", existing_smartcard_ca_id="C1", **given))
    assert card_state(sim, "C1")["pairing"] == expected


def test_add_to_existing_pairing_of_an_unpaired_card_is_refused(sim):
    outcome = send(sim, "ADD_TO_EXISTING_PAIRING", existing_smartcard_ca_id="C1", stb_ca_ids=["S1"])

    assert outcome == Rejected("NOT_PAIRED", "smartcard C1 is not in a pairing")
    assert sim.headend.pairings == {} and sim.headend.stbs["S1"].pairing is None


def test_add_to_existing_pairing_refuses_a_box_of_another_pairing(sim):
    pair(sim, ["C1"], ["S1"])
    pair(sim, ["C2"], ["S2"])

    outcome = send(sim, "ADD_TO_EXISTING_PAIRING", existing_smartcard_ca_id="C1", stb_ca_ids=["S2"])

    assert outcome == Rejected("STB_ALREADY_PAIRED", "set-top box S2 is in another pairing")
    assert card_state(sim, "C1")["pairing"] == {"smartcard_ca_ids": ["C1"], "stb_ca_ids": ["S1"]}


# --- PINs, fingerprints, messages ----------------------------------------------------------------------------------


def test_pin_change_and_reset_to_default(sim):
    assert is_ok(send(sim, "UPDATE_CA_PIN_TO_GIVEN_VALUE", smartcard_ca_id="C1", pin="4821"))
    assert sim.headend.cards["C1"].pin == "4821"
    assert card_state(sim, "C1")["pin_is_default"] is False

    assert is_ok(send(sim, "UPDATE_CA_PIN_TO_DEFAULT_VALUE", smartcard_ca_id="C1"))
    assert sim.headend.cards["C1"].pin == "0000"
    assert card_state(sim, "C1")["pin_is_default"] is True


@pytest.mark.parametrize("pin", ["123", "12345", "12a4", "١٢٣٤", 1234, None], ids=repr)
def test_a_pin_that_is_not_four_digits_is_refused_without_repeating_it(sim, pin):
    outcome = send(sim, "UPDATE_CA_PIN_TO_GIVEN_VALUE", smartcard_ca_id="C1", pin=pin)

    assert outcome == Rejected("INVALID_PIN", "the PIN must be exactly 4 digits")
    assert sim.headend.cards["C1"].pin == "0000"


def test_fingerprint_on_one_card_and_on_every_card(sim):
    seed_params = {
        "display_date_time": "2014-09-23T08:23:09",
        "position_y": None,
        "position_x": None,
        "height": None,
        "display_duration": None,
        "fingerprint_slot": "A",
    }

    assert is_ok(send(sim, "DISPLAY_FINGERPRINT", smartcard_ca_id=None, **seed_params))
    assert is_ok(send(sim, "DISPLAY_FINGERPRINT", smartcard_ca_id="C2", display_duration=10, position_x=5))

    assert [card_state(sim, ca_id)["messages"]["fingerprint"] for ca_id in CARDS] == [1, 2, 1]


def test_messages_are_counted_per_card_and_kind(sim):
    assert is_ok(send(sim, "SEND_MAIL_MESSAGE_TO_CLIENT", smartcard_ca_id="C1", message="m" * 141))
    assert is_ok(send(sim, "SEND_BARK_MESSAGE_TO_CLIENT", smartcard_ca_id="C1", message="b" * 129))
    assert is_ok(send(sim, "SEND_BARK_MESSAGE_TO_CLIENT", smartcard_ca_id="C1", message="b", duration=5))
    for interval in (10, 2550):
        outcome = send(
            sim,
            "SEND_REPEATING_BARK_MESSAGE_TO_CLIENT",
            smartcard_ca_id="C1",
            message="r",
            interval=interval,
            repetitions=255,
        )
        assert is_ok(outcome)

    assert card_state(sim, "C1")["messages"] == {"mail": 1, "bark": 2, "repeating_bark": 2, "fingerprint": 0}
    assert card_state(sim, "C2")["messages"] == {"mail": 0, "bark": 0, "repeating_bark": 0, "fingerprint": 0}


@pytest.mark.parametrize(
    ("type_", "params", "expected"),
    [
        (
            "SEND_MAIL_MESSAGE_TO_CLIENT",
            {"message": "m" * 142},
            Rejected("MESSAGE_TOO_LONG", "the message has 142 characters; at most 141 fit"),
        ),
        (
            "SEND_BARK_MESSAGE_TO_CLIENT",
            {"message": "b" * 130},
            Rejected("MESSAGE_TOO_LONG", "the message has 130 characters; at most 129 fit"),
        ),
        (
            "SEND_REPEATING_BARK_MESSAGE_TO_CLIENT",
            {"message": "r" * 130, "interval": 10},
            Rejected("MESSAGE_TOO_LONG", "the message has 130 characters; at most 129 fit"),
        ),
        (
            "SEND_REPEATING_BARK_MESSAGE_TO_CLIENT",
            {"message": "r", "interval": 15},
            Rejected("INVALID_INTERVAL", "interval 15 s is not 10 to 2550 s in steps of 10"),
        ),
        (
            "SEND_REPEATING_BARK_MESSAGE_TO_CLIENT",
            {"message": "r", "interval": 0},
            Rejected("INVALID_INTERVAL", "interval 0 s is not 10 to 2550 s in steps of 10"),
        ),
        (
            "SEND_REPEATING_BARK_MESSAGE_TO_CLIENT",
            {"message": "r", "interval": 2560},
            Rejected("INVALID_INTERVAL", "interval 2560 s is not 10 to 2550 s in steps of 10"),
        ),
    ],
    ids=["mail-142", "bark-130", "repeating-bark-130", "interval-15", "interval-0", "interval-2560"],
)
def test_message_limits(sim, type_, params, expected):
    assert send(sim, type_, smartcard_ca_id="C1", **params) == expected
    assert card_state(sim, "C1")["messages"] == {"mail": 0, "bark": 0, "repeating_bark": 0, "fingerprint": 0}


# --- unknown items, auto-registration, malformed commands ----------------------------------------------------------

UNKNOWN_CARD = Rejected("UNKNOWN_CARD", "smartcard NOPE is not known")
UNKNOWN_STB = Rejected("UNKNOWN_STB", "set-top box NOPE is not known")
EVERY_TYPE_ON_AN_UNKNOWN_ITEM = [
    ("ADD_SUBSCRIPTIONS", {"smartcard_ca_id": "NOPE", "service_ca_id": "P"}, UNKNOWN_CARD),
    ("CANCEL_SUBSCRIPTIONS", {"smartcard_ca_id": "NOPE", "service_ca_id": "P"}, UNKNOWN_CARD),
    ("GET_ACTIVE_SUBSCRIPTIONS", {"smartcard_ca_id": "NOPE"}, UNKNOWN_CARD),
    ("CREATE_PAIRING", {"smartcard_ca_ids": ["C1"], "stb_ca_ids": ["NOPE"]}, UNKNOWN_STB),
    ("ADD_TO_EXISTING_PAIRING", {"existing_smartcard_ca_id": "NOPE", "stb_ca_ids": ["S1"]}, UNKNOWN_CARD),
    ("GET_PAIRING_STATUS_FOR_CARD", {"smartcard_ca_id": "NOPE"}, UNKNOWN_CARD),
    ("GET_PAIRING_STATUS_FOR_PAIRING_MODULE", {"stb_ca_id": "NOPE"}, UNKNOWN_STB),
    ("DISPLAY_FINGERPRINT", {"smartcard_ca_id": "NOPE"}, UNKNOWN_CARD),
    ("UPDATE_CA_PIN_TO_DEFAULT_VALUE", {"smartcard_ca_id": "NOPE"}, UNKNOWN_CARD),
    ("UPDATE_CA_PIN_TO_GIVEN_VALUE", {"smartcard_ca_id": "NOPE", "pin": "1234"}, UNKNOWN_CARD),
    ("SEND_MAIL_MESSAGE_TO_CLIENT", {"smartcard_ca_id": "NOPE", "message": "hi"}, UNKNOWN_CARD),
    ("SEND_BARK_MESSAGE_TO_CLIENT", {"smartcard_ca_id": "NOPE", "message": "hi"}, UNKNOWN_CARD),
    (
        "SEND_REPEATING_BARK_MESSAGE_TO_CLIENT",
        {"smartcard_ca_id": "NOPE", "message": "hi", "interval": 10},
        UNKNOWN_CARD,
    ),
]


def test_the_table_covers_every_request_type():
    assert sorted(type_ for type_, _, _ in EVERY_TYPE_ON_AN_UNKNOWN_ITEM) == sorted(REQUEST_TYPES)
    assert len(REQUEST_TYPES) == 13


@pytest.mark.parametrize(("type_", "params", "expected"), EVERY_TYPE_ON_AN_UNKNOWN_ITEM, ids=lambda v: str(v)[:40])
def test_unknown_items_are_refused(sim, type_, params, expected):
    assert sim.send(command(type_, **params)) == expected
    assert sorted(sim.headend.cards) == CARDS and sorted(sim.headend.stbs) == STBS
    assert sim.headend.pairings == {}


@pytest.mark.parametrize(("type_", "params", "refused"), EVERY_TYPE_ON_AN_UNKNOWN_ITEM, ids=lambda v: str(v)[:40])
def test_auto_register_creates_unknown_items_factory_fresh(type_, params, refused):
    sim = CasSimulator(auto_register=True)

    outcome = sim.send(command(type_, **params))

    # Only the service that is not active and the pairing of a fresh card may still be refused.
    assert isinstance(outcome, Completed) or outcome.code in ("SERVICE_NOT_ACTIVE", "NOT_PAIRED")
    assert "NOPE" in sim.headend.cards or "NOPE" in sim.headend.stbs


@pytest.mark.parametrize(
    ("type_", "params"),
    [
        ("NO_SUCH_TYPE", {"smartcard_ca_id": "C1"}),
        ("add_subscriptions", {"smartcard_ca_id": "C1", "service_ca_id": "P"}),
        ("ADD_SUBSCRIPTIONS", {"smartcard_ca_id": "C1"}),
        ("ADD_SUBSCRIPTIONS", {"smartcard_ca_id": "C1", "service_ca_id": "P", "extra": 1}),
        ("ADD_SUBSCRIPTIONS", {"smartcard_ca_id": 7, "service_ca_id": "P"}),
        ("ADD_SUBSCRIPTIONS", {"smartcard_ca_id": " ", "service_ca_id": "P"}),
        ("ADD_SUBSCRIPTIONS", ["C1", "P"]),
        ("CREATE_PAIRING", {"smartcard_ca_ids": [], "stb_ca_ids": ["S1"]}),
        ("CREATE_PAIRING", {"smartcard_ca_ids": "C1", "stb_ca_ids": ["S1"]}),
        ("CREATE_PAIRING", {"smartcard_ca_ids": ["C1", None], "stb_ca_ids": ["S1"]}),
        (
            "ADD_TO_EXISTING_PAIRING",
            {"existing_smartcard_ca_id": "C1", "smartcard_ca_ids": ["C2"], "stb_ca_ids": ["S1"]},
        ),
        ("ADD_TO_EXISTING_PAIRING", {"existing_smartcard_ca_id": "C1"}),
        ("DISPLAY_FINGERPRINT", {"smartcard_ca_id": "C1", "display_date_time": "yesterday"}),
        ("DISPLAY_FINGERPRINT", {"smartcard_ca_id": "C1", "height": "tall"}),
        ("DISPLAY_FINGERPRINT", {"smartcard_ca_id": "C1", "position_x": True}),
        ("UPDATE_CA_PIN_TO_GIVEN_VALUE", {"smartcard_ca_id": "C1"}),
        ("SEND_MAIL_MESSAGE_TO_CLIENT", {"smartcard_ca_id": "C1", "message": ""}),
        ("SEND_MAIL_MESSAGE_TO_CLIENT", {"smartcard_ca_id": "C1", "message": 5}),
        ("SEND_BARK_MESSAGE_TO_CLIENT", {"smartcard_ca_id": "C1", "message": "b", "duration": 0}),
        ("SEND_REPEATING_BARK_MESSAGE_TO_CLIENT", {"smartcard_ca_id": "C1", "message": "r", "interval": "10"}),
        (
            "SEND_REPEATING_BARK_MESSAGE_TO_CLIENT",
            {"smartcard_ca_id": "C1", "message": "r", "interval": 10, "repetitions": 256},
        ),
    ],
    ids=[
        "unknown-type",
        "lower-case-type",
        "missing",
        "extra",
        "ill-typed-id",
        "blank-id",
        "params-not-object",
        "empty-list",
        "list-not-list",
        "list-of-null",
        "both-lists",
        "no-list",
        "bad-date",
        "bad-height",
        "bool-position",
        "no-pin",
        "empty-message",
        "message-not-text",
        "zero-duration",
        "interval-text",
        "repetitions-256",
    ],
)
def test_malformed_commands_are_rejected_as_bad_command_and_change_nothing(sim, type_, params):
    before = [sim.card(ca_id) for ca_id in CARDS]

    outcome = sim.send(CasCommand(new_key(), type_, params))

    assert isinstance(outcome, Rejected) and outcome.code == "BAD_COMMAND"
    assert [sim.card(ca_id) for ca_id in CARDS] == before and sim.headend.pairings == {}


def test_a_command_without_a_usable_key_is_rejected_and_not_stored(sim):
    outcome = sim.send(CasCommand("bad/key", "GET_ACTIVE_SUBSCRIPTIONS", {"smartcard_ca_id": "C1"}))

    assert outcome == Rejected("BAD_COMMAND", "idempotency_key must be 1 to 128 characters of A-Z a-z 0-9 . _ : -")
    assert sim.stats()["keys"] == 0 and sim.applied_counts() == {}


# --- idempotency and lookup ----------------------------------------------------------------------------------------


def test_the_same_key_is_carried_out_once_and_answered_with_its_first_outcome(sim):
    first = sim.send(command("ADD_SUBSCRIPTIONS", "K1", smartcard_ca_id="C1", service_ca_id="A"))
    sim.send(command("CANCEL_SUBSCRIPTIONS", "K2", smartcard_ca_id="C1", service_ca_id="A"))

    again = sim.send(command("ADD_SUBSCRIPTIONS", "K1", smartcard_ca_id="C1", service_ca_id="A"))
    other = sim.send(command("ADD_SUBSCRIPTIONS", "K1", smartcard_ca_id="C2", service_ca_id="B"))

    assert again == first and other == first
    assert card_state(sim, "C1")["entitlements"] == [] and card_state(sim, "C2")["entitlements"] == []
    assert sim.applied_counts() == {"K1": 1, "K2": 1}
    assert sim.stats() == {
        "sends": 4,
        "duplicates": 2,
        "lookups": 0,
        "unavailable": 0,
        "keys": 2,
        "applied_more_than_once": [],
    }


def test_a_refusal_is_final_too(sim):
    refused = sim.send(command("CANCEL_SUBSCRIPTIONS", "K1", smartcard_ca_id="C1", service_ca_id="A"))
    sim.send(command("ADD_SUBSCRIPTIONS", "K2", smartcard_ca_id="C1", service_ca_id="A"))

    assert sim.send(command("CANCEL_SUBSCRIPTIONS", "K1", smartcard_ca_id="C1", service_ca_id="A")) == refused
    assert card_state(sim, "C1")["entitlements"] == ["A"]


def test_lookup_returns_the_stored_outcome_and_never_carries_anything_out(sim):
    stored = sim.send(command("ADD_SUBSCRIPTIONS", "K1", smartcard_ca_id="C1", service_ca_id="A"))

    assert sim.lookup("K1") == stored
    assert sim.lookup("K2") is None
    assert sim.applied_counts() == {"K1": 1}
    assert sim.stats() == {
        "sends": 1,
        "duplicates": 0,
        "lookups": 2,
        "unavailable": 0,
        "keys": 1,
        "applied_more_than_once": [],
    }


def test_concurrent_senders_of_the_same_keys_apply_each_once():
    sim = CasSimulator(auto_register=True)
    keys = [new_key() for _ in range(200)]
    offsets = range(0, 200, 25)

    def send_all(offset: int) -> dict:
        rotated = keys[offset:] + keys[:offset]  # each thread starts elsewhere, so that they collide
        return {
            key: sim.send(command("SEND_MAIL_MESSAGE_TO_CLIENT", key, smartcard_ca_id="C1", message="hi"))
            for key in rotated
        }

    with ThreadPoolExecutor(8) as pool:
        seen = list(pool.map(send_all, offsets))

    assert sim.applied_counts() == dict.fromkeys(keys, 1)
    assert sim.stats()["duplicates"] == 7 * 200 and sim.card("C1")["messages"]["mail"] == 200
    assert all(answers == {key: sim.lookup(key) for key in keys} for answers in seen)


# --- faults --------------------------------------------------------------------------------------------------------


def test_unavailable_answers_before_doing_anything(sim):
    sim.unavailable_share = 1.0

    with pytest.raises(HeadendUnavailable) as raised:
        sim.send(command("ADD_SUBSCRIPTIONS", "K1", smartcard_ca_id="C1", service_ca_id="A"))
    with pytest.raises(HeadendUnavailable):
        sim.lookup("K1")

    assert isinstance(raised.value, GatewayUnavailable)
    assert card_state(sim, "C1")["entitlements"] == [] and sim.applied_counts() == {}
    assert sim.stats() == {
        "sends": 1,
        "duplicates": 0,
        "lookups": 1,
        "unavailable": 2,
        "keys": 0,
        "applied_more_than_once": [],
    }


def test_a_lost_reply_is_carried_out_and_stored_for_lookup(sim):
    sim.lost_reply_share = 1.0

    with pytest.raises(HeadendUnavailable):
        sim.send(command("ADD_SUBSCRIPTIONS", "K1", smartcard_ca_id="C1", service_ca_id="A"))

    stored = sim.lookup("K1")
    assert is_ok(stored)
    assert card_state(sim, "C1")["entitlements"] == ["A"]
    assert sim.send(command("ADD_SUBSCRIPTIONS", "K1", smartcard_ca_id="C1", service_ca_id="A")) == stored
    assert sim.applied_counts() == {"K1": 1} and sim.stats()["duplicates"] == 1


def test_a_refusal_fault_is_stored_as_the_final_outcome(sim):
    sim.refuse_share = 1.0

    refused = sim.send(command("ADD_SUBSCRIPTIONS", "K1", smartcard_ca_id="C1", service_ca_id="A"))
    sim.refuse_share = 0.0

    assert refused == Rejected("HEADEND_REFUSED", "the head-end refused the request")
    assert sim.send(command("ADD_SUBSCRIPTIONS", "K1", smartcard_ca_id="C1", service_ca_id="A")) == refused
    assert sim.lookup("K1") == refused
    assert card_state(sim, "C1")["entitlements"] == []


def run_faulty(seed: int) -> tuple[list[str], dict]:
    sim = CasSimulator(auto_register=True, unavailable_share=0.3, lost_reply_share=0.2, refuse_share=0.1, seed=seed)
    seen = []
    for i in range(300):
        try:
            outcome = sim.send(command("ADD_SUBSCRIPTIONS", f"K{i % 200}", smartcard_ca_id="C1", service_ca_id=f"{i}"))
            seen.append(type(outcome).__name__ + getattr(outcome, "code", ""))
        except HeadendUnavailable as exc:
            seen.append(str(exc))
    return seen, sim.stats()


def test_seeded_partial_faults_are_reproducible_and_near_their_shares():
    first, stats = run_faulty(seed=7)
    second, _ = run_faulty(seed=7)
    other, _ = run_faulty(seed=8)

    assert first == second and first != other
    up_front = first.count("CAS simulator: unavailable")
    lost = first.count("CAS simulator: the reply was lost")
    assert 60 <= up_front <= 120 and 20 <= lost <= 70 and 5 <= first.count("RejectedHEADEND_REFUSED") <= 40
    assert stats["unavailable"] == up_front + lost and stats["applied_more_than_once"] == []


def test_latency_delays_each_call_in_process(sim):
    sim.latency_ms = 60

    started = time.monotonic()
    sim.send(command("GET_ACTIVE_SUBSCRIPTIONS", smartcard_ca_id="C1"))
    sim.lookup("K1")

    assert time.monotonic() - started >= 0.12


@pytest.mark.parametrize("name", ["unavailable_share", "lost_reply_share", "refuse_share"])
def test_shares_outside_zero_to_one_are_refused(name):
    with pytest.raises(ValueError, match=name):
        CasSimulator(**{name: 1.5})


# --- secrets and admin state ---------------------------------------------------------------------------------------


def test_the_pin_appears_nowhere_outside_the_card(sim, caplog):
    caplog.set_level(logging.DEBUG)
    pin_command = command("UPDATE_CA_PIN_TO_GIVEN_VALUE", "K1", smartcard_ca_id="C1", pin="4821")
    with CasServerThread(sim) as server, httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        client.post(
            "/cas/v1/requests",
            json={
                "idempotency_key": "K2",
                "type": pin_command.type,
                "params": {"smartcard_ca_id": "C2", "pin": "4821"},
            },
        )
        outputs = [client.get(path).text for path in ("/admin/cards/C2", "/admin/stats", "/admin/keys")]
    outcome = sim.send(pin_command)

    shown = [
        repr(pin_command),
        str(outcome),
        json.dumps(sim.card("C1")),
        json.dumps(sim.stats()),
        *outputs,
        caplog.text,
        repr(sim.headend.cards["C1"]),
    ]
    assert sim.headend.cards["C1"].pin == sim.headend.cards["C2"].pin == "4821"
    # As a value, not inside a longer run of digits (a port such as 34821 in httpcore's debug log is not the PIN).
    assert [text for text in shown if re.search(r"(?<![0-9])4821(?![0-9])", text)] == []


def test_reset_forgets_everything_but_the_faults(sim):
    sim.refuse_share = 0.5
    send(sim, "ADD_SUBSCRIPTIONS", smartcard_ca_id="C1", service_ca_id="A")

    sim.reset()

    assert sim.card("C1") is None and sim.applied_counts() == {}
    assert sim.stats() == {
        "sends": 0,
        "duplicates": 0,
        "lookups": 0,
        "unavailable": 0,
        "keys": 0,
        "applied_more_than_once": [],
    }
    assert sim.refuse_share == 0.5


# --- the HTTP protocol ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    with CasServerThread() as running:
        yield running


@pytest.fixture
def http(server):
    server.simulator.reset()
    server.simulator.register(smartcard_ca_ids=CARDS, stb_ca_ids=STBS)
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        yield client
    server.simulator.unavailable_share = server.simulator.lost_reply_share = 0.0


def post(http, key: str, type_: str, **params) -> httpx.Response:
    return http.post("/cas/v1/requests", json={"idempotency_key": key, "type": type_, "params": params})


def test_http_send_completed_and_lookup(http):
    answer = post(http, "K1", "ADD_SUBSCRIPTIONS", smartcard_ca_id="C1", service_ca_id="A")
    body = answer.json()

    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/json")
    assert body == {
        "idempotency_key": "K1",
        "outcome": "COMPLETED",
        "reference_number": body["reference_number"],
        "response": "OK" + body["reference_number"],
    }
    assert answer.text == json.dumps(body, separators=(",", ":"))
    assert http.get("/cas/v1/requests/K1").json() == body
    assert post(http, "K1", "ADD_SUBSCRIPTIONS", smartcard_ca_id="C1", service_ca_id="A").json() == body


def test_http_send_rejected_and_unknown_lookup(http):
    answer = post(http, "K1", "CANCEL_SUBSCRIPTIONS", smartcard_ca_id="C1", service_ca_id="A")
    missing = http.get("/cas/v1/requests/K9")

    assert (answer.status_code, answer.json()) == (
        200,
        {
            "idempotency_key": "K1",
            "outcome": "REJECTED",
            "code": "SERVICE_NOT_ACTIVE",
            "description": "service A is not active on smartcard C1",
        },
    )
    assert (missing.status_code, missing.json()) == (404, {"error": "unknown key"})


def test_http_params_may_be_left_out(http):
    answer = http.post("/cas/v1/requests", json={"idempotency_key": "K1", "type": "GET_ACTIVE_SUBSCRIPTIONS"})

    assert answer.json()["outcome"] == "REJECTED" and answer.json()["code"] == "BAD_COMMAND"
    assert http.get("/admin/stats").json()["keys"] == 1


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"{not json", "the body is not JSON"),
        (b"\xff\xfe\x00", "the body is not JSON"),
        (b'["K1", "ADD_SUBSCRIPTIONS"]', "the body must be a JSON object"),
        (
            b'{"type": "ADD_SUBSCRIPTIONS", "params": {}}',
            "idempotency_key must be 1 to 128 characters of A-Z a-z 0-9 . _ : -",
        ),
        (
            b'{"idempotency_key": 7, "type": "ADD_SUBSCRIPTIONS"}',
            "idempotency_key must be 1 to 128 characters of A-Z a-z 0-9 . _ : -",
        ),
        (
            b'{"idempotency_key": "a b", "type": "ADD_SUBSCRIPTIONS"}',
            "idempotency_key must be 1 to 128 characters of A-Z a-z 0-9 . _ : -",
        ),
        (b'{"idempotency_key": "K1", "params": {}}', "type must be a string"),
        (b'{"idempotency_key": "K1", "type": ["ADD_SUBSCRIPTIONS"]}', "type must be a string"),
    ],
    ids=["not-json", "not-utf8", "array", "no-key", "key-not-text", "key-with-space", "no-type", "type-not-text"],
)
def test_http_400_for_a_body_that_is_not_a_command(http, content, error):
    answer = http.post("/cas/v1/requests", content=content, headers={"Content-Type": "application/json"})

    assert (answer.status_code, answer.json()) == (400, {"error": error})
    assert http.get("/admin/stats").json()["keys"] == 0


def test_http_503_for_unavailable_and_lost_replies(http, server):
    server.simulator.unavailable_share = 1.0
    refused = post(http, "K1", "ADD_SUBSCRIPTIONS", smartcard_ca_id="C1", service_ca_id="A")
    refused_lookup = http.get("/cas/v1/requests/K1")
    server.simulator.unavailable_share, server.simulator.lost_reply_share = 0.0, 1.0
    lost = post(http, "K1", "ADD_SUBSCRIPTIONS", smartcard_ca_id="C1", service_ca_id="A")

    assert [(r.status_code, r.json()) for r in (refused, refused_lookup, lost)] == [(503, {"error": "unavailable"})] * 3
    assert http.get("/cas/v1/requests/K1").json()["outcome"] == "COMPLETED"
    assert http.get("/admin/cards/C1").json()["entitlements"] == ["A"]


def test_http_admin_endpoints(http):
    registered = http.post("/admin/register", json={"smartcard_ca_ids": ["C1", "N1"], "stb_ca_ids": ["N2"]})
    post(http, "K1", "CREATE_PAIRING", smartcard_ca_ids=["N1"], stb_ca_ids=["N2"])
    post(http, "K1", "CREATE_PAIRING", smartcard_ca_ids=["N1"], stb_ca_ids=["N2"])
    http.get("/cas/v1/requests/K1")

    assert registered.json() == {"smartcards": 1, "stbs": 1}
    assert http.get("/admin/cards/N1").json() == {
        "smartcard_ca_id": "N1",
        "entitlements": [],
        "paired": True,
        "pairing": {"smartcard_ca_ids": ["N1"], "stb_ca_ids": ["N2"]},
        "pin_is_default": True,
        "messages": {"mail": 0, "bark": 0, "repeating_bark": 0, "fingerprint": 0},
    }
    assert http.get("/admin/cards/C1").json()["pairing"] is None
    assert (http.get("/admin/cards/NOPE").status_code, http.get("/admin/cards/NOPE").json()) == (
        404,
        {"error": "unknown card"},
    )
    assert http.get("/admin/stats").json() == {
        "sends": 2,
        "duplicates": 1,
        "lookups": 1,
        "unavailable": 0,
        "keys": 1,
        "applied_more_than_once": [],
    }
    assert http.get("/admin/keys").json() == {"K1": 1}
    assert http.post("/admin/reset").json() == {"reset": True}
    assert http.get("/admin/keys").json() == {} and http.get("/admin/cards/C1").status_code == 404


@pytest.mark.parametrize(
    "body", [b"nope", b'{"smartcard_ca_ids": "C1"}', b'{"stb_ca_ids": [1]}', b"[]"], ids=["text", "str", "int", "list"]
)
def test_http_register_refuses_what_is_not_lists_of_ids(http, body):
    answer = http.post("/admin/register", content=body)

    assert answer.status_code == 400 and "error" in answer.json()
    assert http.get("/admin/cards/C1").status_code == 200 and http.get("/admin/cards/1").status_code == 404


def test_http_latency_does_not_hold_up_other_calls():
    with (
        CasServerThread(auto_register=True, latency_ms=200) as server,
        httpx.Client(base_url=server.url, timeout=TIMEOUT, limits=httpx.Limits(max_connections=50)) as client,
    ):
        started = time.monotonic()
        with ThreadPoolExecutor(50) as pool:
            answers = list(
                pool.map(
                    lambda i: post(client, f"K{i}", "GET_ACTIVE_SUBSCRIPTIONS", smartcard_ca_id=f"C{i}"), range(50)
                )
            )
        elapsed = time.monotonic() - started

    assert [a.json()["outcome"] for a in answers] == ["COMPLETED"] * 50
    assert 0.2 <= elapsed < 2.0


def test_http_serves_thousands_of_requests_quickly():
    with (
        CasServerThread(auto_register=True, latency_ms=5) as server,
        httpx.Client(base_url=server.url, timeout=TIMEOUT, limits=httpx.Limits(max_connections=20)) as client,
    ):
        keys = [new_key() for _ in range(2000)]
        started = time.monotonic()
        with ThreadPoolExecutor(20) as pool:
            codes = list(
                pool.map(
                    lambda key: (
                        post(client, key, "SEND_MAIL_MESSAGE_TO_CLIENT", smartcard_ca_id="C1", message="hi").status_code
                    ),
                    keys,
                )
            )
        elapsed = time.monotonic() - started
        stats = client.get("/admin/stats").json()

    assert codes == [200] * 2000 and stats["keys"] == 2000 and stats["applied_more_than_once"] == []
    assert server.simulator.card("C1")["messages"]["mail"] == 2000
    assert elapsed < 10, elapsed


def test_server_thread_starts_once_and_stops_idempotently():
    running = CasServerThread()
    running.start()
    try:
        with pytest.raises(RuntimeError):
            running.start()
        assert httpx.get(running.url + "/admin/stats", timeout=TIMEOUT).status_code == 200
    finally:
        running.stop()
    running.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(running.url + "/admin/stats", timeout=TIMEOUT)
