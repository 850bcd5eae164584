"""CAS simulator: a Conax-like head-end with its own state, for tests, the demo and the benchmark.

The portal reaches it only through ``conax/gateway.py``: in-process (``CasSimulator``, thread-safe, used by the
``inprocess:`` gateway inside a Celery worker, which finds it through the setting ``CAS_INPROCESS_BACKEND``) or over
HTTP (``CasServer`` on an asyncio loop, ``CasServerThread`` for synchronous code, ``python -m conax.simulator`` or
``manage.py simulate_cas`` from the command line). A real head-end adapter replaces it by implementing the HTTP
protocol below.

The package imports no Django: ``rules.py`` holds the cards, boxes, pairings and what each command does,
``state.py`` the simulator (idempotency, faults, counters), ``server.py`` the HTTP side, ``cli.py`` the command
line. What it shares with the gateway (the command, outcomes and their JSON, the message limits) is
``conax/cas_protocol.py``.

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
Each type's parameters are read by the ``Headend`` method of the same name (lower case); a missing, unknown or
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

from conax.simulator.rules import DEFAULT_PIN, MESSAGE_KINDS, REQUEST_TYPES, Pairing, Refusal, SetTopBox, Smartcard
from conax.simulator.server import CasServer, CasServerThread
from conax.simulator.state import CasSimulator, HeadendUnavailable, envelope_problem

__all__ = [
    "DEFAULT_PIN",
    "MESSAGE_KINDS",
    "REQUEST_TYPES",
    "CasServer",
    "CasServerThread",
    "CasSimulator",
    "HeadendUnavailable",
    "Pairing",
    "Refusal",
    "SetTopBox",
    "Smartcard",
    "envelope_problem",
]
