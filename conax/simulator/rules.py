"""The head-end's cards, boxes and pairings, and what each command type does to them (its parameters read and checked,
its refusals): the rules documented under "Commands and refusals" in ``conax/simulator/__init__.py``. Not locked:
``CasSimulator`` (``state.py``) is."""

from __future__ import annotations

import collections
import functools
import itertools
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from conax.cas_protocol import BAD_COMMAND, BARK_DEFAULT_SECONDS, BARK_MAX, MAIL_MAX

DEFAULT_PIN = "0000"
PIN = re.compile(r"[0-9]{4}")
MESSAGE_KINDS = ("mail", "bark", "repeating_bark", "fingerprint")
dump = functools.partial(json.dumps, separators=(",", ":"))


class Refusal(Exception):
    """Raised while a command is checked or carried out; becomes its REJECTED outcome."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(code)
        self.code, self.description = code, description


def _bad(description: str) -> Refusal:
    return Refusal(BAD_COMMAND, description)


# --- parameters ----------------------------------------------------------------------------------------------------


def _shape(params: dict, required: Iterable[str], optional: Iterable[str] = ()) -> None:
    required = tuple(required)
    missing = [name for name in required if name not in params]
    unknown = sorted(set(params) - set(required) - set(optional))
    if missing or unknown:
        raise _bad(f"missing parameters {missing}, unknown parameters {unknown}")


def _id(params: dict, name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"{name} must be a non-empty string")
    return value


def _ids(params: dict, name: str) -> list[str]:
    values = params.get(name)
    if not isinstance(values, list) or not values:
        raise _bad(f"{name} must be a non-empty list")
    return list(dict.fromkeys(_id({name: value}, name) for value in values))


def _int(params: dict, name: str, default: int | None, low: int, high: int) -> int | None:
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(f"{name} must be a whole number from {low} to {high}")
    return value


def _message(params: dict, limit: int) -> str:
    message = params.get("message")
    if not isinstance(message, str) or not message:
        raise _bad("message must be a non-empty string")
    if len(message) > limit:
        raise Refusal("MESSAGE_TOO_LONG", f"the message has {len(message)} characters; at most {limit} fit")
    return message


def _date_time(params: dict, name: str) -> None:
    value = params.get(name)
    if value is None:
        return
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise _bad(f"{name} must be an ISO 8601 date and time") from exc


# --- state ---------------------------------------------------------------------------------------------------------


@dataclass
class Smartcard:
    entitlements: set[str] = field(default_factory=set)
    pin: str = field(default=DEFAULT_PIN, repr=False)
    pairing: int | None = None
    messages: collections.Counter = field(default_factory=collections.Counter)


@dataclass
class SetTopBox:
    pairing: int | None = None


@dataclass
class Pairing:
    smartcards: set[str] = field(default_factory=set)
    stbs: set[str] = field(default_factory=set)


class Headend:
    """Cards, boxes and pairings, and what each command type does to them. Not locked: ``CasSimulator`` is."""

    def __init__(self, auto_register: bool) -> None:
        self.auto_register = auto_register
        self.cards: dict[str, Smartcard] = {}
        self.stbs: dict[str, SetTopBox] = {}
        self.pairings: dict[int, Pairing] = {}
        self._pairing_ids = itertools.count(1)

    def card(self, ca_id: str) -> Smartcard:
        if ca_id not in self.cards and not self.auto_register:
            raise Refusal("UNKNOWN_CARD", f"smartcard {ca_id} is not known")
        return self.cards.setdefault(ca_id, Smartcard())

    def stb(self, ca_id: str) -> SetTopBox:
        if ca_id not in self.stbs and not self.auto_register:
            raise Refusal("UNKNOWN_STB", f"set-top box {ca_id} is not known")
        return self.stbs.setdefault(ca_id, SetTopBox())

    def execute(self, command_type: str, params: Any) -> str | None:
        """The query's JSON answer, or None for an action; raises Refusal."""
        handler = _HANDLERS.get(command_type) if isinstance(command_type, str) else None
        if handler is None:
            raise _bad(f"unknown request type {str(command_type)[:64]!r}")
        if not isinstance(params, dict):
            raise _bad("params must be an object")
        return handler(self, params)

    # --- subscriptions

    def add_subscriptions(self, params: dict) -> None:
        _shape(params, ("smartcard_ca_id", "service_ca_id"))
        ca_id, service = _id(params, "smartcard_ca_id"), _id(params, "service_ca_id")
        self.card(ca_id).entitlements.add(service)

    def cancel_subscriptions(self, params: dict) -> None:
        _shape(params, ("smartcard_ca_id", "service_ca_id"))
        ca_id, service = _id(params, "smartcard_ca_id"), _id(params, "service_ca_id")
        card = self.card(ca_id)
        if service not in card.entitlements:
            raise Refusal("SERVICE_NOT_ACTIVE", f"service {service} is not active on smartcard {ca_id}")
        card.entitlements.discard(service)

    def get_active_subscriptions(self, params: dict) -> str:
        _shape(params, ("smartcard_ca_id",))
        return dump({"services": sorted(self.card(_id(params, "smartcard_ca_id")).entitlements)})

    # --- pairings

    def create_pairing(self, params: dict) -> None:
        _shape(params, ("smartcard_ca_ids", "stb_ca_ids"))
        cards, stbs = _ids(params, "smartcard_ca_ids"), _ids(params, "stb_ca_ids")
        items = [self.card(ca_id) for ca_id in cards] + [self.stb(ca_id) for ca_id in stbs]
        if len({item.pairing for item in items}) == 1 and items[0].pairing is not None:
            return  # every item is in one pairing already: re-pairing into it changes nothing
        self._check_free(cards, stbs, allowed=None)
        pairing_id = next(self._pairing_ids)
        self.pairings[pairing_id] = Pairing()
        self._join(pairing_id, cards, stbs)

    def add_to_existing_pairing(self, params: dict) -> None:
        given = [name for name in ("smartcard_ca_ids", "stb_ca_ids") if name in params]
        if len(given) != 1:
            raise _bad("exactly one of smartcard_ca_ids and stb_ca_ids must be given")
        _shape(params, ("existing_smartcard_ca_id", given[0]))
        existing, ca_ids = _id(params, "existing_smartcard_ca_id"), _ids(params, given[0])
        anchor = self.card(existing)
        cards, stbs = (ca_ids, []) if given[0] == "smartcard_ca_ids" else ([], ca_ids)
        for ca_id in cards:
            self.card(ca_id)
        for ca_id in stbs:
            self.stb(ca_id)
        if anchor.pairing is None:
            raise Refusal("NOT_PAIRED", f"smartcard {existing} is not in a pairing")
        self._check_free(cards, stbs, allowed=anchor.pairing)
        self._join(anchor.pairing, cards, stbs)

    def _check_free(self, cards: list[str], stbs: list[str], allowed: int | None) -> None:
        for ca_id in cards:
            if self.cards[ca_id].pairing not in (None, allowed):
                raise Refusal("CARD_ALREADY_PAIRED", f"smartcard {ca_id} is in another pairing")
        for ca_id in stbs:
            if self.stbs[ca_id].pairing not in (None, allowed):
                raise Refusal("STB_ALREADY_PAIRED", f"set-top box {ca_id} is in another pairing")

    def _join(self, pairing_id: int, cards: list[str], stbs: list[str]) -> None:
        pairing = self.pairings[pairing_id]
        for ca_id in cards:
            self.cards[ca_id].pairing = pairing_id
            pairing.smartcards.add(ca_id)
        for ca_id in stbs:
            self.stbs[ca_id].pairing = pairing_id
            pairing.stbs.add(ca_id)

    def pairing_json(self, pairing_id: int | None) -> dict[str, Any]:
        pairing = self.pairings.get(pairing_id) if pairing_id is not None else None
        if pairing is None:
            return {"paired": False, "stb_ca_ids": [], "smartcard_ca_ids": []}
        return {"paired": True, "stb_ca_ids": sorted(pairing.stbs), "smartcard_ca_ids": sorted(pairing.smartcards)}

    def get_pairing_status_for_card(self, params: dict) -> str:
        _shape(params, ("smartcard_ca_id",))
        return dump(self.pairing_json(self.card(_id(params, "smartcard_ca_id")).pairing))

    def get_pairing_status_for_pairing_module(self, params: dict) -> str:
        _shape(params, ("stb_ca_id",))
        return dump(self.pairing_json(self.stb(_id(params, "stb_ca_id")).pairing))

    # --- PINs, fingerprints and messages

    def update_ca_pin_to_default_value(self, params: dict) -> None:
        _shape(params, ("smartcard_ca_id",))
        self.card(_id(params, "smartcard_ca_id")).pin = DEFAULT_PIN

    def update_ca_pin_to_given_value(self, params: dict) -> None:
        _shape(params, ("smartcard_ca_id", "pin"))
        ca_id, pin = _id(params, "smartcard_ca_id"), params["pin"]
        if not isinstance(pin, str) or not PIN.fullmatch(pin):
            raise Refusal("INVALID_PIN", "the PIN must be exactly 4 digits")  # never repeat the value
        self.card(ca_id).pin = pin

    def display_fingerprint(self, params: dict) -> None:
        _shape(
            params,
            (),
            (
                "smartcard_ca_id",
                "display_date_time",
                "display_duration",
                "position_x",
                "position_y",
                "height",
                "fingerprint_slot",
            ),
        )
        _date_time(params, "display_date_time")
        for name in ("display_duration", "position_x", "position_y", "height"):
            _int(params, name, None, 0, 65535)
        if params.get("fingerprint_slot") is not None:
            _id(params, "fingerprint_slot")
        if params.get("smartcard_ca_id") is None:
            for card in self.cards.values():
                card.messages["fingerprint"] += 1
        else:
            self.card(_id(params, "smartcard_ca_id")).messages["fingerprint"] += 1

    def send_mail_message_to_client(self, params: dict) -> None:
        _shape(params, ("smartcard_ca_id", "message"))
        ca_id = _id(params, "smartcard_ca_id")
        _message(params, MAIL_MAX)
        self.card(ca_id).messages["mail"] += 1

    def send_bark_message_to_client(self, params: dict) -> None:
        _shape(params, ("smartcard_ca_id", "message"), ("duration",))
        ca_id = _id(params, "smartcard_ca_id")
        _message(params, BARK_MAX)
        _int(params, "duration", BARK_DEFAULT_SECONDS, 1, 255)
        self.card(ca_id).messages["bark"] += 1

    def send_repeating_bark_message_to_client(self, params: dict) -> None:
        _shape(params, ("smartcard_ca_id", "message", "interval"), ("repetitions",))
        ca_id = _id(params, "smartcard_ca_id")
        _message(params, BARK_MAX)
        interval = params["interval"]
        if isinstance(interval, bool) or not isinstance(interval, int):
            raise _bad("interval must be a whole number of seconds")
        if not 10 <= interval <= 2550 or interval % 10:
            raise Refusal("INVALID_INTERVAL", f"interval {interval} s is not 10 to 2550 s in steps of 10")
        _int(params, "repetitions", 1, 1, 255)
        self.card(ca_id).messages["repeating_bark"] += 1

    def card_json(self, ca_id: str) -> dict[str, Any] | None:
        card = self.cards.get(ca_id)
        if card is None:
            return None
        pairing = self.pairing_json(card.pairing)
        return {
            "smartcard_ca_id": ca_id,
            "entitlements": sorted(card.entitlements),
            "paired": pairing["paired"],
            "pairing": {key: pairing[key] for key in ("smartcard_ca_ids", "stb_ca_ids")} if pairing["paired"] else None,
            "pin_is_default": card.pin == DEFAULT_PIN,
            "messages": {kind: card.messages[kind] for kind in MESSAGE_KINDS},
        }


_HANDLERS: dict[str, Callable[[Headend, dict], str | None]] = {
    name.upper(): getattr(Headend, name)
    for name in (
        "add_subscriptions",
        "cancel_subscriptions",
        "get_active_subscriptions",
        "create_pairing",
        "add_to_existing_pairing",
        "get_pairing_status_for_card",
        "get_pairing_status_for_pairing_module",
        "display_fingerprint",
        "update_ca_pin_to_default_value",
        "update_ca_pin_to_given_value",
        "send_mail_message_to_client",
        "send_bark_message_to_client",
        "send_repeating_bark_message_to_client",
    )
}
REQUEST_TYPES = tuple(_HANDLERS)
