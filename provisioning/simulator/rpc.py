"""The JSON-RPC envelope as a Thunder box reads and answers it: parsing a request, the error answers, and which
callsign and method a designator names (``callsign[.N].method``)."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from provisioning import thunder_protocol as wire
from provisioning.thunder_protocol import CALLSIGNS, DEVICE_PROVISIONING, PLUGIN_VERSION

dump = functools.partial(json.dumps, separators=(",", ":"))
# A version is the ASCII digits between the callsign and the method (Thunder's Message::Version); leading zeros
# count for nothing ("01" is 1).
_VERSION = re.compile(r"0*(?P<number>[0-9]{0,3})|[0-9]+")

# (code, message) of each error answer the simulator gives.
PARSE_ERROR = (wire.PARSE_ERROR, "Parse error")
INVALID_REQUEST = (wire.INVALID_REQUEST, "Invalid Request")
UNKNOWN_METHOD = (wire.METHOD_NOT_FOUND, "Unknown method.")
# Thunder R2: a version no handler of the plugin supports → ERROR_INVALID_SIGNATURE (-32602) with this text.
VERSION_UNSUPPORTED = (wire.INVALID_PARAMS, "Requested version is not supported.")
INVALID_PARAMS = (wire.INVALID_PARAMS, "Invalid params")
ERROR_UNAVAILABLE = (wire.ERROR_UNAVAILABLE, "ERROR_UNAVAILABLE")
ERROR_ILLEGAL_STATE = (wire.ERROR_ILLEGAL_STATE, "ERROR_ILLEGAL_STATE")
ERROR_INPROGRESS = (wire.ERROR_INPROGRESS, "ERROR_INPROGRESS")
ERROR_UNKNOWN_KEY = (wire.ERROR_UNKNOWN_KEY, "ERROR_UNKNOWN_KEY")


class RpcError(Exception):
    """A JSON-RPC error answer; ``request_id`` is known only once the envelope has been read."""

    def __init__(self, code: int, message: str, request_id: Any = None) -> None:
        super().__init__(f"{code} {message}")
        self.code, self.message, self.request_id = code, message, request_id


def designator(method: str, api_version: int) -> tuple[str, str]:
    """``callsign[.N].method`` → (callsign, method). A box serves versions 1…its API version of
    com.comcast.DeviceProvisioning and version 1 of Provisioning; every version carries all of the box's methods.
    Another N is refused as Thunder R2 refuses it (``Destination`` → STATE_INCORRECT_VERSION)."""
    for callsign in CALLSIGNS:
        if method.startswith(callsign + "."):
            rest = method[len(callsign) + 1 :]
            version, dot, name = rest.partition(".")
            match = _VERSION.fullmatch(version) if dot else None
            if match is None:
                return callsign, rest
            highest = api_version if callsign == DEVICE_PROVISIONING else int(PLUGIN_VERSION)
            if not 1 <= int(match["number"] or "0") <= highest:  # no number group: more than 3 digits, far too big
                raise RpcError(*VERSION_UNSUPPORTED)
            return callsign, name
    raise RpcError(*UNKNOWN_METHOD)


def property_read(params: Any) -> None:
    """A property call with params is a write; both Thunder properties are read-only."""
    if params not in (None, {}, []):
        raise RpcError(*INVALID_PARAMS)


def parse(raw: bytes | str) -> tuple[Any, str, Any]:
    """The (id, method, params) of one request, or ``RpcError`` for an envelope problem."""
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError):
        raise RpcError(*PARSE_ERROR) from None
    if not isinstance(message, dict):
        raise RpcError(*INVALID_REQUEST)
    request_id = message.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, str | int | float | None):
        raise RpcError(*INVALID_REQUEST)
    if message.get("jsonrpc") != "2.0" or not isinstance(message.get("method"), str):
        raise RpcError(*INVALID_REQUEST, request_id)
    return request_id, message["method"], message.get("params")


def error_answer(exc: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": exc.request_id, "error": {"code": exc.code, "message": exc.message}}
