"""The only code that speaks to set-top boxes: Thunder JSON-RPC 2.0 over HTTP and over WebSocket.

Method designators are exactly those of the plugins' documents (``com.comcast.DeviceProvisioning.reprovision``,
``Provisioning.1.state``, …). With ``versioned=True`` (default: the setting ``THUNDER_VERSIONED_DESIGNATORS``,
off) com.comcast.DeviceProvisioning calls carry a version as ThunderJS sends them, ``callsign.N.method``, N being
the API version that introduced the method (``…DeviceProvisioning.3.getSOCId``, ``….1.reprovision``): a box
serves every version up to its own, so the lowest one that has the method reaches every box that has it. Every
call has an explicit timeout and a fresh id. Answers are parsed into typed
values and checked against the plugins' interface specs: an unexpected shape raises ``BadShape`` (a recorded
failure), never a crash further up.

Errors are split by what the caller should do (see ``ThunderError.retry``):
- ``InProgress``: Thunder error 12 (``ERROR_INPROGRESS``) or a type reported ``IN_PROGRESS`` — try again later.
- ``Unavailable``: error 2 (``ERROR_UNAVAILABLE``), timeouts, refused or dropped connections — back off, then give up.
- ``Failed`` (and ``Unsupported``, ``BadShape``): -32601, any other code, ``success: false`` — fail at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from websockets.asyncio.client import connect as ws_connect_async
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect
from websockets.typing import Subprotocol

from provisioning import thunder_protocol as protocol
from provisioning.thunder_protocol import (
    DEVICE_PROVISIONING,
    ERROR_INPROGRESS,
    ERROR_UNAVAILABLE,
    METHOD_NOT_FOUND,  # noqa: F401 - callers compare ThunderError.code with it
    ProvisionState,
    ProvisionType,
)

PROVISIONING = f"{protocol.PROVISIONING}.{protocol.PLUGIN_VERSION}"
DEFAULT_TIMEOUT = 5.0
# Which API version of com.comcast.DeviceProvisioning first has a method (getApiVersionNumber tells a box's).
NEEDS_VERSION = protocol.METHOD_SINCE


NOTIFICATION = Subprotocol("notification")  # Thunder's WebSocket subprotocol for JSON-RPC with events


class Retry(StrEnum):
    LATER = "later"  # the box is busy: same attempt budget, fixed delay
    BACKOFF = "backoff"  # the box or its back office is unreachable: exponential backoff, then give up
    NEVER = "never"


class ThunderError(Exception):
    retry = Retry.NEVER

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class InProgress(ThunderError):
    retry = Retry.LATER


class Unavailable(ThunderError):
    retry = Retry.BACKOFF


class Failed(ThunderError):
    retry = Retry.NEVER


class Unsupported(Failed):
    """The box's API version lacks the method: it is never called."""


class BadShape(Failed):
    """The answer does not have the shape the interface spec gives."""


@dataclass(frozen=True)
class TypeStatus:
    provision_type: ProvisionType
    kind: str
    state: ProvisionState
    reason: str


@dataclass(frozen=True)
class PlatformState:
    provision_id: str
    status: int
    tokens: tuple[str, ...]


# --- shape checks (from ../shared/specs) ---------------------------------------------------------------------------


MAX_TEXT = 255  # no string a box sends is longer in the specs' examples; the portal stores at most this
INT32 = (-(2**31), 2**31 - 1)
MAX_ANSWER = 64 * 1024  # bytes; a bigger answer is not one of these plugins'


def _require(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    # bool is an int in Python; a JSON number must not be accepted where a boolean is specified, nor the reverse.
    if isinstance(value, bool) and kind is not bool:
        raise BadShape(f"{what}: expected {kind}, got a boolean")
    if not isinstance(value, kind):
        raise BadShape(f"{what}: expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise BadShape(f"{what}: longer than {MAX_TEXT} characters")
    return value


def _status(value: Any, what: str) -> int:
    """A provision status: a JSON number that is a whole 32-bit integer."""
    _require(value, (int, float), what)
    if isinstance(value, float) and not value.is_integer():
        raise BadShape(f"{what}: {value!r} is not a whole number")
    if not INT32[0] <= value <= INT32[1]:
        raise BadShape(f"{what}: {value!r} is out of range")
    return int(value)


def _object(result: Any, what: str, **fields: type) -> dict:
    _require(result, dict, what)
    for name, kind in fields.items():
        if name not in result:
            raise BadShape(f"{what}: missing {name}")
        _require(result[name], kind, f"{what}.{name}")
    return result


def _succeeded(result: Any, what: str, **fields: type) -> dict:
    result = _object(result, what, success=bool)
    if not result["success"]:
        error = result.get("error")
        raise Failed(f"{what}: {error if isinstance(error, str) and error else 'success: false'}")
    return _object(result, what, **fields)


def _type_status(item: Any) -> TypeStatus:
    item = _object(item, "provisionTypes[]", provisionType=str, provisionKind=str, state=str, reason=str)
    try:
        return TypeStatus(
            ProvisionType(item["provisionType"]), item["provisionKind"], ProvisionState(item["state"]), item["reason"]
        )
    except ValueError as exc:
        raise BadShape(f"provisionTypes[]: {exc}") from exc


def _type_statuses(result: Any, what: str) -> list[TypeStatus]:
    return [_type_status(item) for item in _succeeded(result, what, provisionTypes=list)["provisionTypes"]]


def _null(result: Any, what: str) -> None:
    if result is not None:
        raise BadShape(f"{what}: expected null")


# --- transports ----------------------------------------------------------------------------------------------------


class _Http:
    """A connection per call (``http.client``): a box is called rarely, a fleet has thousands of addresses, and a
    pooled client would spend its time scanning idle connections to other boxes."""

    def __init__(self, address: str, timeout: float) -> None:
        host, _, port = address.rpartition(":")
        self._host, self._port, self._timeout = host, int(port), timeout

    def exchange(self, request: dict) -> Any:
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        try:
            conn.request("POST", "/jsonrpc", json.dumps(request), {"Content-Type": "application/json"})
            response = conn.getresponse()
            body = response.read(MAX_ANSWER + 1)
        finally:
            conn.close()
        # Thunder answers a JSON-RPC error with HTTP 202; anything else but 200 is not an answer.
        if response.status not in (200, 202):
            raise Unavailable(f"HTTP {response.status} from the box")
        if len(body) > MAX_ANSWER:
            raise BadShape(f"answer longer than {MAX_ANSWER} bytes")
        return json.loads(body)

    def close(self) -> None:
        """Nothing stays open between calls."""


class _WebSocket:
    def __init__(self, address: str, timeout: float) -> None:
        self._timeout = timeout
        self._stack = contextlib.ExitStack()
        self._ws: ClientConnection = self._stack.enter_context(
            ws_connect(
                f"ws://{address}/jsonrpc",
                subprotocols=[NOTIFICATION],
                open_timeout=timeout,
                close_timeout=1,
                max_size=MAX_ANSWER,
            )
        )
        self.notifications: list[dict] = []

    def exchange(self, request: dict) -> Any:
        self._ws.send(json.dumps(request))
        while True:
            message = json.loads(self._ws.recv(timeout=self._timeout))
            if isinstance(message, dict) and "id" not in message and "method" in message:
                self.notifications.append(message)  # an event arriving before our answer
                continue
            return message

    def close(self) -> None:
        self._stack.close()


def _versioned_by_default() -> bool:
    """The portal's setting, read lazily so that this module works without Django (scripts, the simulator)."""
    try:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured
    except ImportError:
        return False
    try:
        return bool(getattr(settings, "THUNDER_VERSIONED_DESIGNATORS", False))
    except ImproperlyConfigured:  # Django present, settings not configured
        return False


class ThunderClient:
    """One box. ``transport`` is ``"http"`` (a request per call) or ``"ws"`` (one socket for every call)."""

    def __init__(
        self, address: str, *, transport: str = "http", timeout: float = DEFAULT_TIMEOUT, versioned: bool | None = None
    ) -> None:
        self.address = address
        self.versioned = _versioned_by_default() if versioned is None else versioned
        self._ids = itertools.count(1)
        self._version: int | None = None
        try:
            self._transport = _WebSocket(address, timeout) if transport == "ws" else _Http(address, timeout)
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise Unavailable(f"cannot connect to {address}: {exc}") from exc

    def __enter__(self) -> ThunderClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._transport.close()

    def call(self, method: str, params: dict | None = None) -> Any:
        """One JSON-RPC call; returns ``result`` or raises the ThunderError its error maps to."""
        request: dict[str, Any] = {"jsonrpc": "2.0", "id": next(self._ids), "method": method}
        if params is not None:
            request["params"] = params
        try:
            answer = self._transport.exchange(request)
        except TimeoutError as exc:
            raise Unavailable(f"{method}: no answer in time") from exc
        except (http.client.HTTPException, OSError, WebSocketException) as exc:
            raise Unavailable(f"{method}: connection failed ({type(exc).__name__})") from exc
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, absurd nesting or numbers
            raise BadShape(f"{method}: the answer is not JSON this client accepts") from exc
        return self._result(method, request["id"], answer)

    @staticmethod
    def _result(method: str, request_id: int, answer: Any) -> Any:
        if not isinstance(answer, dict) or answer.get("jsonrpc") != "2.0" or answer.get("id") != request_id:
            raise BadShape(f"{method}: not a JSON-RPC 2.0 answer to request {request_id}")
        if "error" in answer:
            error = answer["error"] if isinstance(answer["error"], dict) else {}
            code, message = error.get("code"), str(error.get("message", ""))
            if code == ERROR_INPROGRESS:
                raise InProgress(f"{method}: {message or 'ERROR_INPROGRESS'}", code=code)
            if code == ERROR_UNAVAILABLE:
                raise Unavailable(f"{method}: {message or 'ERROR_UNAVAILABLE'}", code=code)
            raise Failed(f"{method}: error {code} {message}".rstrip(), code=code if isinstance(code, int) else None)
        if "result" not in answer:
            raise BadShape(f"{method}: neither result nor error")
        return answer["result"]

    # --- com.comcast.DeviceProvisioning -------------------------------------------------------------------------

    def _designator(self, method: str) -> str:
        if self.versioned:
            return f"{DEVICE_PROVISIONING}.{NEEDS_VERSION.get(method, 1)}.{method}"
        return f"{DEVICE_PROVISIONING}.{method}"

    def api_version(self) -> int:
        if self._version is None:
            result = _succeeded(self.call(self._designator("getApiVersionNumber")), "getApiVersionNumber", version=str)
            if not result["version"].isdigit():
                raise BadShape(f"getApiVersionNumber: version {result['version']!r} is not a number")
            self._version = int(result["version"])
        return self._version

    def _dp(self, method: str, params: dict | None = None) -> Any:
        needed = NEEDS_VERSION.get(method, 1)
        if needed > 1 and self.api_version() < needed:
            raise Unsupported(f"{method} needs API version {needed}; the box has {self.api_version()}")
        return self.call(self._designator(method), params)

    def provision_check(self) -> list[TypeStatus]:
        return _type_statuses(self._dp("provisionCheck"), "provisionCheck")

    def reprovision(self, provision_type: ProvisionType) -> list[TypeStatus]:
        params = {"provisionType": ProvisionType(provision_type).value}
        return _type_statuses(self._dp("reprovision", params), "reprovision")

    def netflix_esn(self) -> str:
        return _succeeded(self._dp("getNetflixESN"), "getNetflixESN", esn=str)["esn"]

    def soc_id(self) -> str:
        return _succeeded(self._dp("getSOCId"), "getSOCId", socid=str)["socid"]

    # --- Provisioning.1 -----------------------------------------------------------------------------------------

    def provision(self) -> None:
        _null(self.call(f"{PROVISIONING}.provision"), "provision")

    def set_index(self, label: str, index: int) -> None:
        if not 0 <= index <= protocol.MAX_INDEX:
            raise Failed(f"index {index} is not an unsigned 32-bit number")
        _null(self.call(f"{PROVISIONING}.index", {"label": label, "index": index}), "index")

    def provision_id(self) -> str:
        return _require(self.call(f"{PROVISIONING}.id"), str, "id")

    def state(self) -> PlatformState:
        result = _object(self.call(f"{PROVISIONING}.state"), "state", id=str, tokens=list)
        tokens = tuple(_require(token, str, "state.tokens[]") for token in result["tokens"][:32])
        return PlatformState(result["id"], _status(result.get("status"), "state.status"), tokens)


# --- event subscription (asyncio: one process holds many boxes' sockets) -------------------------------------------

EventHandler = Callable[[str, dict], Awaitable[None]]


async def subscribe(
    address: str,
    on_event: EventHandler,
    *,
    event: str = protocol.EVENT,
    client_id: str = protocol.PORTAL_EVENT_ID,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Register for ``event`` on the box (``Provisioning.1.register``) and hand each notification to ``on_event``
    until the connection ends; then raise Unavailable so that the caller reconnects with backoff."""
    method = f"{client_id}.{event}"
    request = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": f"{PROVISIONING}.register",
        "params": {"event": event, "id": client_id},
    }
    try:
        async with ws_connect_async(
            f"ws://{address}/jsonrpc",
            subprotocols=[NOTIFICATION],
            open_timeout=timeout,
            close_timeout=1,
            max_size=MAX_ANSWER,
        ) as ws:
            await ws.send(json.dumps(request))
            ThunderClient._result("register", 1, json.loads(await asyncio.wait_for(ws.recv(), timeout)))
            async for raw in ws:
                message = json.loads(raw)
                if isinstance(message, dict) and message.get("method") == method:
                    params = message.get("params")
                    await on_event(event, params if isinstance(params, dict) else {})
    except (OSError, TimeoutError, WebSocketException) as exc:
        raise Unavailable(f"subscription to {address} ended ({type(exc).__name__})") from exc
    except (ValueError, RecursionError) as exc:
        raise BadShape(f"subscription to {address}: a message is not JSON this client accepts") from exc
    raise Unavailable(f"subscription to {address} closed by the box")
