"""CAS simulator: a Conax-like head-end with its own state, for tests, the demo and the benchmark.

The portal reaches it only through ``conax/gateway.py``: in-process (``CasSimulator``, thread-safe, used by the
``inprocess:`` gateway inside a Celery worker) or over HTTP (``CasServer`` on an asyncio loop, ``CasServerThread``
for synchronous code, ``manage.py simulate_cas`` from the command line). A real head-end adapter replaces it by
implementing the HTTP protocol below.

HTTP protocol, version 1 (bodies are compact JSON, ``Content-Type: application/json``)
-------------------------------------------------------------------------------------
- ``POST /cas/v1/requests`` with ``{"idempotency_key": str, "type": str, "params": {…}}`` (``params`` may be left
  out: ``{}``). The key is 1-128 characters of ``A-Z a-z 0-9 . _ : -`` (the portal sends its request id, 32 upper
  case hex digits). Answers:
  200 ``{"idempotency_key", "outcome": "COMPLETED", "reference_number", "response"}``;
  200 ``{"idempotency_key", "outcome": "REJECTED", "code", "description"}`` (a refusal: final);
  503 ``{"error": "unavailable"}`` (try again later; the command may have been carried out: ``GET`` it first);
  400 ``{"error": "…"}`` when the body is not that shape (not JSON, not an object, key or type missing or not a
  string, a key outside the pattern). A 400 is not stored; everything wrong *inside* ``params``, and an unknown
  ``type``, is a stored REJECTED ``BAD_COMMAND``.
- ``GET /cas/v1/requests/{key}`` → 200 with the stored outcome as above, 404 ``{"error": "unknown key"}``, or 503.
- Idempotency: the first final outcome of a key is kept; the same key sent again gets it back and changes nothing,
  whatever the command carries this time.
- ``reference_number`` is a uuid4 chosen here. ``response`` is ``"OK" + reference_number`` for actions and compact
  JSON for queries: GET_ACTIVE_SUBSCRIPTIONS ``{"services":[…sorted]}``; GET_PAIRING_STATUS_FOR_CARD and
  GET_PAIRING_STATUS_FOR_PAIRING_MODULE ``{"paired":bool,"stb_ca_ids":[…],"smartcard_ca_ids":[…]}`` (the members of
  the pairing, sorted; empty lists when unpaired).
- Admin (tests, demo, benchmark; not part of what a real head-end must offer): ``POST /admin/register``
  ``{"smartcard_ca_ids": […], "stb_ca_ids": […]}`` → ``{"smartcards": n, "stbs": n}`` (newly known);
  ``GET /admin/cards/{ca_id}`` → ``{"smartcard_ca_id", "entitlements", "paired", "pairing": {"smartcard_ca_ids",
  "stb_ca_ids"} | null, "pin_is_default", "messages": {"mail", "bark", "repeating_bark", "fingerprint"}}`` or 404
  (never the PIN); ``GET /admin/stats`` → ``{"sends", "duplicates", "lookups", "unavailable", "keys",
  "applied_more_than_once": [keys]}``; ``GET /admin/keys`` → ``{key: times executed}``; ``POST /admin/reset``
  forgets every card, box, pairing, outcome and counter (the faults stay).

Commands and refusals
---------------------
Each type's parameters are read by the ``_Headend`` method of the same name (lower case); a missing, unknown or
ill-typed parameter is ``BAD_COMMAND`` (null counts as absent for optional ones). Parameters are checked first
(``BAD_COMMAND``, ``INVALID_PIN``, ``MESSAGE_TOO_LONG``, ``INVALID_INTERVAL``), then the cards and boxes named
(``UNKNOWN_CARD``, ``UNKNOWN_STB``; with ``auto_register`` an unknown id is created factory-fresh: no entitlements,
PIN ``0000``, unpaired), then the state: ``SERVICE_NOT_ACTIVE`` (cancelling a service the card lacks; adding an
active one is accepted and changes nothing), ``CARD_ALREADY_PAIRED`` / ``STB_ALREADY_PAIRED`` (an item in another
pairing; CREATE_PAIRING of items that are all in one pairing already is accepted and changes nothing,
ADD_TO_EXISTING_PAIRING accepts items already in the target pairing), ``NOT_PAIRED`` (ADD_TO_EXISTING_PAIRING on a
card without a pairing). A refusal changes nothing (auto-registered ids stay known). DISPLAY_FINGERPRINT with
``smartcard_ca_id`` null is shown on every card.

Faults (shares in [0, 1]; ``seed`` makes the draws reproducible)
--------------------------------------------------------------
``latency_ms`` before every send and lookup (``time.sleep`` in-process, ``asyncio.sleep`` in the server);
``unavailable_share`` of sends and lookups answer "unavailable" before anything is looked at (nothing stored);
``lost_reply_share`` of executed sends store their outcome and then answer "unavailable", as if the reply had been
lost; ``refuse_share`` of new sends are REJECTED ``HEADEND_REFUSED`` (stored like any outcome, no effect).
In-process, "unavailable" is ``HeadendUnavailable``, a ``GatewayUnavailable``.

Counters: ``sends``, ``duplicates`` (a send answered from a stored outcome), ``lookups``, ``unavailable`` (fault
answers), ``applied`` (key → times the head-end executed it, refusals included; 1 by construction, which the
benchmark checks). PINs and parameters are never logged nor shown.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import itertools
import json
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from conax.gateway import CasCommand, Completed, GatewayUnavailable, Outcome, Rejected
from portal.lib.net import bound_socket

DEFAULT_PIN = "0000"
MAIL_MAX, BARK_MAX = 141, 129
BARK_DEFAULT_SECONDS = 20
KEY = re.compile(r"[A-Za-z0-9._:-]{1,128}")
PIN = re.compile(r"[0-9]{4}")
MESSAGE_KINDS = ("mail", "bark", "repeating_bark", "fingerprint")
UNAVAILABLE = {"error": "unavailable"}
JSON = "application/json"
_dump = functools.partial(json.dumps, separators=(",", ":"))


class HeadendUnavailable(GatewayUnavailable):
    """The in-process form of a 503: the gateway's own retryable error, so it passes through unchanged."""


class Refusal(Exception):
    """Raised while a command is checked or carried out; becomes its REJECTED outcome."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(code)
        self.code, self.description = code, description


def _bad(description: str) -> Refusal:
    return Refusal("BAD_COMMAND", description)


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


class _Headend:
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
        return _dump({"services": sorted(self.card(_id(params, "smartcard_ca_id")).entitlements)})

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
        return _dump(self.pairing_json(self.card(_id(params, "smartcard_ca_id")).pairing))

    def get_pairing_status_for_pairing_module(self, params: dict) -> str:
        _shape(params, ("stb_ca_id",))
        return _dump(self.pairing_json(self.stb(_id(params, "stb_ca_id")).pairing))

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
        _shape(params, (), ("smartcard_ca_id", "display_date_time", "display_duration", "position_x", "position_y",
                            "height", "fingerprint_slot"))  # fmt: skip
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


_HANDLERS: dict[str, Callable[[_Headend, dict], str | None]] = {
    name.upper(): getattr(_Headend, name)
    for name in (
        "add_subscriptions", "cancel_subscriptions", "get_active_subscriptions", "create_pairing",
        "add_to_existing_pairing", "get_pairing_status_for_card", "get_pairing_status_for_pairing_module",
        "display_fingerprint", "update_ca_pin_to_default_value", "update_ca_pin_to_given_value",
        "send_mail_message_to_client", "send_bark_message_to_client", "send_repeating_bark_message_to_client",
    )
}  # fmt: skip
REQUEST_TYPES = tuple(_HANDLERS)


# --- the simulator: idempotency, faults, counters ------------------------------------------------------------------


def envelope_problem(idempotency_key: Any, command_type: Any) -> str | None:
    """Why a command cannot even be filed under its key (the HTTP 400 cases), or None."""
    if not isinstance(idempotency_key, str) or not KEY.fullmatch(idempotency_key):
        return "idempotency_key must be 1 to 128 characters of A-Z a-z 0-9 . _ : -"
    if not isinstance(command_type, str):
        return "type must be a string"
    return None


def _share(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1")
    return value


class CasSimulator:
    """The head-end, thread-safe: one lock around its state, its counters and its random draws."""

    def __init__(
        self,
        *,
        auto_register: bool = False,
        latency_ms: float = 0.0,
        unavailable_share: float = 0.0,
        lost_reply_share: float = 0.0,
        refuse_share: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if latency_ms < 0:
            raise ValueError("latency_ms must not be negative")
        self.latency_ms = latency_ms
        self.unavailable_share = _share("unavailable_share", unavailable_share)
        self.lost_reply_share = _share("lost_reply_share", lost_reply_share)
        self.refuse_share = _share("refuse_share", refuse_share)
        self._auto_register = auto_register
        self._rng = random.Random(seed)  # noqa: S311 - fault draws, not secrets
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget every card, box, pairing, outcome and counter; the faults stay."""
        with self._lock:
            self.headend = _Headend(self._auto_register)
            self._outcomes: dict[str, Outcome] = {}
            self.applied: dict[str, int] = {}
            self.sends = self.duplicates = self.lookups = self.unavailable = 0

    def register(self, *, smartcard_ca_ids: Iterable[str] = (), stb_ca_ids: Iterable[str] = ()) -> dict[str, int]:
        """Make cards and boxes known (factory-fresh); known ones are left as they are. Returns how many are new."""
        with self._lock:
            cards, stbs = self.headend.cards, self.headend.stbs
            new_cards = [ca_id for ca_id in dict.fromkeys(smartcard_ca_ids) if ca_id not in cards]
            new_stbs = [ca_id for ca_id in dict.fromkeys(stb_ca_ids) if ca_id not in stbs]
            cards.update((ca_id, Smartcard()) for ca_id in new_cards)
            stbs.update((ca_id, SetTopBox()) for ca_id in new_stbs)
        return {"smartcards": len(new_cards), "stbs": len(new_stbs)}

    def send(self, command: CasCommand, *, delay: bool = True) -> Outcome:
        """Carry out a command once per key; raises HeadendUnavailable for the faults. The HTTP server waits its
        latency on the event loop and passes ``delay=False``."""
        if delay:
            self._wait()
        key = command.idempotency_key
        problem = envelope_problem(key, command.type)
        with self._lock:
            self.sends += 1
            if problem:
                return Rejected("BAD_COMMAND", problem)  # nothing to file it under: not stored
            self._fault(self.unavailable_share, "unavailable")
            if key in self._outcomes:
                self.duplicates += 1
                return self._outcomes[key]
            outcome = self._execute(command)
            self._outcomes[key] = outcome
            self.applied[key] = self.applied.get(key, 0) + 1
            self._fault(self.lost_reply_share, "the reply was lost")
            return outcome

    def lookup(self, idempotency_key: str, *, delay: bool = True) -> Outcome | None:
        """The stored outcome of a key, or None; never carries anything out."""
        if delay:
            self._wait()
        with self._lock:
            self.lookups += 1
            self._fault(self.unavailable_share, "unavailable")
            return self._outcomes.get(idempotency_key)

    def card(self, ca_id: str) -> dict[str, Any] | None:
        """What the admin view shows of a card (never its PIN), or None when it is not known."""
        with self._lock:
            return self.headend.card_json(ca_id)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "sends": self.sends,
                "duplicates": self.duplicates,
                "lookups": self.lookups,
                "unavailable": self.unavailable,
                "keys": len(self._outcomes),
                "applied_more_than_once": sorted(key for key, count in self.applied.items() if count > 1),
            }

    def applied_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.applied)

    def _wait(self) -> None:
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)

    def _fault(self, share: float, reason: str) -> None:
        """Called with the lock held, so that a seed gives the same draws in the same order."""
        if share and self._rng.random() < share:
            self.unavailable += 1
            raise HeadendUnavailable(f"CAS simulator: {reason}")

    def _execute(self, command: CasCommand) -> Outcome:
        if self.refuse_share and self._rng.random() < self.refuse_share:
            return Rejected("HEADEND_REFUSED", "the head-end refused the request")
        try:
            response = self.headend.execute(command.type, command.params)
        except Refusal as refusal:
            return Rejected(refusal.code, refusal.description)
        reference = str(uuid.uuid4())
        return Completed(reference, f"OK{reference}" if response is None else response)


# --- HTTP ----------------------------------------------------------------------------------------------------------


def outcome_to_wire(key: str, outcome: Outcome) -> dict[str, str]:
    if isinstance(outcome, Completed):
        return {"idempotency_key": key, "outcome": "COMPLETED", "reference_number": outcome.reference_number,
                "response": outcome.response}  # fmt: skip
    return {"idempotency_key": key, "outcome": "REJECTED", "code": outcome.code, "description": outcome.description}


def _answer(body: Any, status: int = 200) -> web.Response:
    return web.Response(text=_dump(body), status=status, content_type=JSON)


async def _json_body(request: web.Request) -> Any:
    """The body as JSON, or a 400 answer raised."""
    try:
        return json.loads(await request.read())
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, absurd nesting
        raise web.HTTPBadRequest(text=_dump({"error": "the body is not JSON"}), content_type=JSON) from exc


class CasServer:
    """The simulator behind the HTTP protocol, on the running asyncio loop."""

    def __init__(
        self, simulator: CasSimulator | None = None, *, host: str = "127.0.0.1", port: int = 0,
        sock: socket.socket | None = None,
    ) -> None:  # fmt: skip
        """``sock``: a socket already bound and listening (inherited from a parent that keeps the port); otherwise
        the server binds ``host:port`` itself."""
        self.simulator = simulator or CasSimulator()
        self.host, self.port = host, port
        self._sock = sock
        if sock is not None:
            self.host, self.port = sock.getsockname()[:2]
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Returns once the port accepts connections (port 0: ``self.port`` is then the one the OS chose)."""
        app = web.Application()
        app.router.add_post("/cas/v1/requests", self._send)
        app.router.add_get("/cas/v1/requests/{key}", self._lookup)
        app.router.add_post("/admin/register", self._register)
        app.router.add_get("/admin/cards/{ca_id}", self._card)
        app.router.add_get("/admin/stats", self._stats)
        app.router.add_get("/admin/keys", self._keys)
        app.router.add_post("/admin/reset", self._reset)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        sock = self._sock or bound_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        try:
            await web.SockSite(self._runner, sock).start()
        except BaseException:
            sock.close()
            await self.stop()
            raise

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> CasServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _delay(self) -> None:
        if self.simulator.latency_ms:
            await asyncio.sleep(self.simulator.latency_ms / 1000)

    async def _send(self, request: web.Request) -> web.Response:
        body = await _json_body(request)  # read first: a head-end that has the command acts on it, caller or not
        await self._delay()
        if not isinstance(body, dict):
            return _answer({"error": "the body must be a JSON object"}, 400)
        problem = envelope_problem(body.get("idempotency_key"), body.get("type"))
        if problem:
            return _answer({"error": problem}, 400)
        command = CasCommand(body["idempotency_key"], body["type"], body.get("params", {}))
        try:
            outcome = self.simulator.send(command, delay=False)
        except HeadendUnavailable:
            return _answer(UNAVAILABLE, 503)
        return _answer(outcome_to_wire(command.idempotency_key, outcome))

    async def _lookup(self, request: web.Request) -> web.Response:
        await self._delay()
        key = request.match_info["key"]
        try:
            outcome = self.simulator.lookup(key, delay=False)
        except HeadendUnavailable:
            return _answer(UNAVAILABLE, 503)
        return _answer(outcome_to_wire(key, outcome)) if outcome else _answer({"error": "unknown key"}, 404)

    async def _register(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        lists = [body.get(name, []) if isinstance(body, dict) else None for name in ("smartcard_ca_ids", "stb_ca_ids")]
        if not all(isinstance(ids, list) and all(isinstance(i, str) and i for i in ids) for ids in lists):
            return _answer({"error": "smartcard_ca_ids and stb_ca_ids must be lists of strings"}, 400)
        return _answer(self.simulator.register(smartcard_ca_ids=lists[0], stb_ca_ids=lists[1]))

    async def _card(self, request: web.Request) -> web.Response:
        card = self.simulator.card(request.match_info["ca_id"])
        return _answer(card) if card is not None else _answer({"error": "unknown card"}, 404)

    async def _stats(self, request: web.Request) -> web.Response:
        return _answer(self.simulator.stats())

    async def _keys(self, request: web.Request) -> web.Response:
        return _answer(self.simulator.applied_counts())

    async def _reset(self, request: web.Request) -> web.Response:
        self.simulator.reset()
        return _answer({"reset": True})


class CasServerThread:
    """A ``CasServer`` on its own event loop in a background thread, for synchronous code and tests."""

    def __init__(
        self, simulator: CasSimulator | None = None, *, host: str = "127.0.0.1", port: int = 0,
        start_timeout: float = 10.0, **simulator_kwargs: Any,
    ) -> None:  # fmt: skip
        if simulator is not None and simulator_kwargs:
            raise TypeError("pass either a simulator or its keyword arguments")
        self.server = CasServer(simulator or CasSimulator(**simulator_kwargs), host=host, port=port)
        self.start_timeout = start_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def simulator(self) -> CasSimulator:
        return self.server.simulator

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> CasServerThread:
        """Returns once the server listens."""
        if self._thread is not None:
            raise RuntimeError("the CAS simulator is already running")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="cas-simulator", daemon=True)
        self._thread.start()
        try:
            self._run(self.server.start())
        except BaseException:
            self._halt()
            raise
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        try:
            self._run(self.server.stop())
        finally:
            self._halt()

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(self.start_timeout)

    def _halt(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        self._loop, self._thread = None, None

    def __enter__(self) -> CasServerThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
