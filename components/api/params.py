"""Parsing and validation of /v1/DeviceProvisioningComponents/ request bodies, with the seed's error codes.

Pure functions (no database), used by ``components.api.v1`` and ``components.api.login``; ``v1_error`` is the
dialect's one mapping of domain errors to its codes. The order of checks
follows the seed: the body and ``action`` first (``INVALID_REQUEST_PRAM``, ``INVALID_ACTION_PRAM``), then unknown
keys (``INVALID_INPUT_PRAM`` with ``error_detail`` ``INVALID_PRAM_<name>``, the first in body order), then each
parameter's type and range, then the action's required and incompatible parameters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from components.api.sanitise import check_json
from components.choices import ActiveStatus, ComponentType
from components.exceptions import ComponentError, UnknownCatalogEntry, UnknownComponent
from portal.kernel.exceptions import TokenError

MAX_ID = 2**31 - 1
MAX_IDS = 10_000
MAX_TYPE_NAME = 15
DEFAULT_LIMIT = 1000
DETAIL_IDS = 100  # an error_detail names at most this many ids
# Not secrets: the codes a refused token answers (a logout's is the original's answer for a token it does not know).
TOKEN_REFUSED = "INVALID_TOKEN"  # noqa: S105
LOGOUT_TOKEN_REFUSED = "INVALID_TOKEN1"  # noqa: S105

ALLOWED = {
    "select": (
        "provisioning_component_id",
        "provisioning_id",
        "component_type",
        "component_id",
        "active_status",
        "limit",
    ),
    "insert": ("provisioning_id", "component_type", "component_id", "active_status"),
    "update": ("provisioning_component_id", "provisioning_id", "component_type", "component_id", "active_status"),
}
INVALID = {
    "provisioning_component_id": "INVALID_PROVISIONING_COMPONENT_ID_PRAM",
    "provisioning_id": "INVALID_PROVISIONING_ID_PRAM",
    "component_type": "INVALID_COMPONENT_TYPE_PRAM",
    "component_id": "INVALID_COMPONENT_ID_PRAM",
    "active_status": "INVALID_ACTIVE_STATUS_PRAM",
    "limit": "INVALID_LIMIT_PRAM",
}
# The seed's update table names this code without the INVALID_/_PRAM frame; existing clients compare codes, so the
# update action answers it as written there.
UPDATE_INVALID = {**INVALID, "provisioning_component_id": "PROVISIONING_COMPONENT_ID"}
TRIPLE = ("provisioning_id", "component_type", "component_id")


class V1Error(Exception):
    """The dialect's wire error: ``{"error": CODE}``, plus ``error_detail`` where the seed gives one."""

    def __init__(self, code: str, detail: str | None = None) -> None:
        super().__init__(code)
        self.code, self.detail = code, detail

    def body(self) -> dict:
        return {"error": self.code, **({"error_detail": self.detail} if self.detail else {})}


@dataclass
class V1Request:
    action: str
    params: dict[str, Any] = field(default_factory=dict)
    # component_id / provisioning_component_id as given: a single int or a list (answers echo the same shape)
    given_as_list: dict[str, bool] = field(default_factory=dict)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID


def _ids(name: str, value: Any, codes: dict[str, str]) -> list[int]:
    values = value if isinstance(value, list) else [value]
    if not values or len(values) > MAX_IDS or not all(_is_int(v) for v in values):
        raise V1Error(codes[name])
    return list(dict.fromkeys(values))


def component_type(value: Any) -> ComponentType:
    if _is_int(value) and value in ComponentType.values:
        return ComponentType(value)
    if isinstance(value, str) and len(value) <= MAX_TYPE_NAME:
        for choice in ComponentType:
            if choice.label.lower() == value.strip().lower():
                return choice
    raise V1Error("INVALID_COMPONENT_TYPE_PRAM")


def _value(name: str, value: Any, codes: dict[str, str]) -> Any:
    if name in ("component_id", "provisioning_component_id"):
        return _ids(name, value, codes)
    if name == "component_type":
        return component_type(value)
    if name == "active_status":
        if _is_int(value) and value in ActiveStatus.values:
            return ActiveStatus(value)
        raise V1Error(INVALID[name])
    if not _is_int(value):  # provisioning_id, limit
        raise V1Error(INVALID[name])
    return value


def parse(body: bytes | dict) -> V1Request:
    """A body (raw JSON bytes, or the query for GET) → a validated request, or V1Error."""
    try:
        data = json.loads(body) if isinstance(body, bytes | str) else body
        check_json(data)  # NUL and lone surrogates: "incorrect JSON format" for this API (components.api.sanitise)
    except (ValueError, RecursionError) as exc:  # Unstorable is a ValueError
        raise V1Error("INVALID_REQUEST_PRAM") from exc
    if not isinstance(data, dict) or "action" not in data:
        raise V1Error("INVALID_REQUEST_PRAM")
    action = data["action"]
    if not isinstance(action, str) or action not in ALLOWED:
        raise V1Error("INVALID_ACTION_PRAM")
    for name in data:
        if name != "action" and name not in ALLOWED[action]:
            raise V1Error("INVALID_INPUT_PRAM", f"INVALID_PRAM_{name}")
    request = V1Request(action=action)
    codes = UPDATE_INVALID if action == "update" else INVALID
    for name in ALLOWED[action]:
        if name in data:
            request.params[name] = _value(name, data[name], codes)
            request.given_as_list[name] = isinstance(data[name], list)
    return _complete(request)


def _complete(request: V1Request) -> V1Request:
    params = request.params
    if request.action == "select":
        params.setdefault("limit", DEFAULT_LIMIT)
    elif request.action == "insert":
        for name in TRIPLE:
            if name not in params:
                raise V1Error(f"MISSING_{name.upper()}_PRAM")
        params.setdefault("active_status", ActiveStatus.ACTIVE)
    else:
        _check_update(params)
    return request


def _check_update(params: dict) -> None:
    if not params:
        raise V1Error("NO_UPDATED_PRAMS")
    by_id = "provisioning_component_id" in params
    by_triple = [name for name in TRIPLE if name in params]
    if by_id and by_triple:
        raise V1Error("INVALID_INCOMPATABLE_IDENTIFICATION_PARAMS_PRAM")
    if not by_id and len(by_triple) < len(TRIPLE):
        missing = next(name for name in TRIPLE if name not in params)
        raise V1Error(INVALID[missing])
    if "active_status" not in params:
        raise V1Error("MISSING_ACTIVE_STATUS_PRAM")


# --- domain errors on the wire -------------------------------------------------------------------------------------


def _detail(ids: list[int]) -> str | None:
    if not ids:
        return None
    shown = ",".join(str(pk) for pk in ids[:DETAIL_IDS])
    return f"INVALID_IDS_{shown}" + (f",+{len(ids) - DETAIL_IDS}_MORE" if len(ids) > DETAIL_IDS else "")


def v1_error(exc: ComponentError | TokenError, request: V1Request | None = None, *, logout: bool = False) -> V1Error:
    """The one mapping of domain errors to /v1/ codes. Components' errors (the login's included) answer their own
    code, the seed's; a token the store refuses answers INVALID_TOKEN (INVALID_TOKEN1 on a logout, as the original
    does). Offending ids go into error_detail only when the client sent them as an array."""
    if isinstance(exc, TokenError):
        return V1Error(LOGOUT_TOKEN_REFUSED if logout else TOKEN_REFUSED)
    if request is not None and isinstance(exc, UnknownCatalogEntry | UnknownComponent):
        given = "provisioning_component_id" if "provisioning_component_id" in request.params else "component_id"
        return V1Error(exc.code, _detail(exc.ids) if request.given_as_list.get(given) else None)
    return V1Error(exc.code)
