"""The CAS head-end protocol as the portal's gateway (``conax/gateway.py``) and the CAS simulator
(``conax/simulator``) both see it: the command, its outcomes, their JSON on the wire, the gateway's errors, and the
limits the head-end enforces (which the portal's services and its CRM.COM dialect check first). No Django here (the
simulator runs without it). The HTTP protocol itself is documented in ``conax/simulator/__init__.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

API_PREFIX = "/cas/v1"
REQUESTS_PATH = f"{API_PREFIX}/requests"
# An idempotency key: what the portal files a command under (its request id, 32 upper case hex digits).
KEY = re.compile(r"[A-Za-z0-9._:-]{1,128}")
KEY_RULE = "idempotency_key must be 1 to 128 characters of A-Z a-z 0-9 . _ : -"
BAD_COMMAND = "BAD_COMMAND"  # the code of a command the head-end cannot read (or a 400 from it)
UNKNOWN_KEY = "unknown key"  # the error text of a 404 lookup: the key was never filed
UNAVAILABLE = "unavailable"  # the error text of a 503
COMPLETED, REJECTED = "COMPLETED", "REJECTED"

# Message limits (characters) and the bark's default duration (seconds), as the head-end enforces them.
MAIL_MAX = 141
BARK_MAX = 129
BARK_DEFAULT_SECONDS = 20


@dataclass(frozen=True)
class CasCommand:
    """What the portal asks of the head-end; ``idempotency_key`` is the provisioning request's id."""

    idempotency_key: str
    type: str
    params: dict[str, Any] = field(default_factory=dict, repr=False)  # may hold a PIN


@dataclass(frozen=True)
class Completed:
    reference_number: str
    response: str


@dataclass(frozen=True)
class Rejected:
    code: str
    description: str


Outcome = Completed | Rejected


class GatewayError(Exception):
    """Base of the gateway's errors."""


class GatewayUnavailable(GatewayError):
    """No usable answer (refused or reset connection, timeout, 5xx, unreadable answer): worth trying again later."""


def outcome_to_wire(key: str, outcome: Outcome) -> dict[str, str]:
    if isinstance(outcome, Completed):
        return {
            "idempotency_key": key,
            "outcome": COMPLETED,
            "reference_number": outcome.reference_number,
            "response": outcome.response,
        }
    return {"idempotency_key": key, "outcome": REJECTED, "code": outcome.code, "description": outcome.description}


def outcome_from_wire(data: Any, key: str) -> Outcome | None:
    """An outcome from the protocol's JSON, or None when it is not one (or answers another key)."""
    if not isinstance(data, dict) or data.get("idempotency_key") != key:
        return None
    if data.get("outcome") == COMPLETED and _strings(data, "reference_number", "response"):
        return Completed(data["reference_number"], data["response"])
    if data.get("outcome") == REJECTED and _strings(data, "code", "description"):
        return Rejected(data["code"], data["description"])
    return None


def _strings(data: dict, *names: str) -> bool:
    return all(isinstance(data.get(name), str) for name in names)
