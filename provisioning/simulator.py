"""Device simulator: a fleet of set-top boxes that speak the two on-box provisioning plugins over real sockets.

The portal is a *client* of these APIs (``provisioning/thunder.py``); tests, the demo and the benchmarks point it
at this simulator instead of real boxes. Every box listens on its own TCP port; all boxes share one asyncio event
loop, one aiohttp application and one ``AppRunner`` (one ``SockSite`` per box). A request finds its box from the
local port of its connection; ``Fleet(count, sockets=[…])`` serves box i on the i-th of sockets someone else
bound (``manage.py simulate_devices --fd``). 2 000 boxes fit in one process (the open-file soft limit is raised to
the hard one).

Use: ``Fleet(count, host=, base_port=, api_version=, faults=Faults(…), …)`` with ``await fleet.start()`` /
``await fleet.stop()`` (or ``async with``); ``FleetThread(count, **fleet_kwargs)`` runs one on its own loop in a
background thread for synchronous code (``start()`` / ``stop()`` or ``with``, ``.boxes``, ``.run(factory)``);
``manage.py simulate_devices`` runs one from the command line.

Wire behaviour (as Thunder puts it on the wire)
-----------------------------------------------
- ``POST /jsonrpc`` with a JSON-RPC 2.0 request. Success: HTTP 200 ``{"jsonrpc":"2.0","id":…,"result":…}``.
  A JSON-RPC error: HTTP **202** ``{"jsonrpc":"2.0","id":…,"error":{"code":N,"message":"…"}}``. Bodies are compact
  JSON, ``Content-Type: application/json``. Other paths: 404; other methods on ``/jsonrpc``: 405.
- ``GET /jsonrpc`` upgraded to a WebSocket (subprotocol ``notification`` is accepted, so is no subprotocol). Each
  text frame is one request; its answer is one text frame, byte-identical to the HTTP body. Requests on one socket
  are served concurrently, so with latency their answers may come back out of order (match them by ``id``).
  Binary frames are ignored.
- Envelope errors: unparseable JSON → -32700 ``Parse error`` (``id`` null); not an object (batches included),
  ``jsonrpc`` not ``"2.0"``, ``method`` missing or not a string, ``id`` not a string/number/null → -32600
  ``Invalid Request``; unknown callsign, version or method → -32601 ``Unknown method.``. A request without ``id``
  is still answered, with ``"id": null``.
- Designators ``callsign[.N].method``, as ThunderJS builds them (it always sends a version, 1 unless configured):
  ``com.comcast.DeviceProvisioning.N.<method>`` for N from 1 to the box's API version, ``Provisioning.1.<method>``,
  or either without a version. Every version N reaches every method of the box (a method above the box's API
  version stays -32601, whatever N says); register / unregister take a version too. Any other N (0, above the
  box's API version, ``Provisioning.2``) → -32602 ``Requested version is not supported.``, which is what Thunder R2
  answers for a version no handler of the plugin supports (``PluginHost::JSONRPC::Destination`` →
  ``STATE_INCORRECT_VERSION`` → ``ERROR_INVALID_SIGNATURE``; R4 says the same text with code 45). Leading zeros
  count for nothing (``.01.`` is version 1).
- Thunder error codes used: 2 ``ERROR_UNAVAILABLE`` (fault knob), 5 ``ERROR_ILLEGAL_STATE`` (``register`` /
  ``unregister`` over plain HTTP: there is no channel to push events on), 12 ``ERROR_INPROGRESS`` (a run already
  going, or the busy knob), 22 ``ERROR_UNKNOWN_KEY`` (``register`` for an event other than
  ``provisioningchange``). Bad parameters (``index`` with a non-string label or an index outside 0…2³²-1, params
  that are not an object where an object is expected, ``register`` without ``event``/``id`` strings, a property
  read carrying non-empty params, i.e. a write to a read-only property) → -32602 ``Invalid params``.

Events
------
``<callsign>.register`` / ``.unregister`` with ``{"event": "provisioningchange", "id": "client.events.1"}`` return
``0`` on either callsign, subscribe / unsubscribe that WebSocket, and are idempotent (registering the same id twice,
even through the other callsign, still yields one notification per change; unregistering an unknown id returns 0).
Notifications: ``{"jsonrpc":"2.0","method":"<id>.provisioningchange","params":{"status":N}}`` where N is 200 when a
run ends well and 500 when it ends CORRUPTED. Both plugins' runs notify: a provision-type run
(``reprovision``) and the platform run (``Provisioning.1.provision``). Starting a run (→ IN_PROGRESS) does not
notify. With ``provision_seconds == 0`` a run completes inside the call; its notification may then reach the
socket before the call's answer.

com.comcast.DeviceProvisioning
------------------------------
``getApiVersionNumber`` → ``{"version": "<n>", "success": true}``; ``getNetflixESN`` (API ≥ 2) →
``{"esn": …, "success": true}``, the ESN empty unless the box's first provision type (HARDWARE) is PROVISIONED;
``getSOCId`` (≥ 3) → ``{"socid": …, "success": true}``; ``notifyProvisioning`` (≥ 2) → ``{"success": true}``
(recorded in ``Box.notified_types``, no other effect); ``provisionCheck`` and ``reprovision`` →
``{"provisionTypes": […], "success": true}``. A method above the box's API version → -32601. A missing, unknown
or unsupported ``provisionType`` → result ``{"success": false, "error": "<why>"}``. ``reprovision`` of a type
already IN_PROGRESS → error 12. Per type: NOT_PROVISIONED → IN_PROGRESS → PROVISIONED | CORRUPTED after
``provision_seconds`` (CORRUPTED for ``corrupt_share`` of runs); the answer to ``reprovision`` already shows
IN_PROGRESS, or the final state when ``provision_seconds`` is 0 (which is how the seed's example answer, showing
PROVISIONED, is reproduced). Kinds and reasons: ``KINDS`` and ``REASONS`` below.

Provisioning (Thunder, version 1)
---------------------------------
``provision`` → ``null`` and starts the platform run; another ``provision`` while it runs → error 12. After
``provision_seconds`` status becomes 200 with tokens ``["netflix, playready"]`` (or 500 with no tokens for a
corrupt run) and subscribers get ``provisioningchange``. ``index`` {label: string, index: 0…2³²-1} → ``null``;
both are optional as in the seed (absent → ``""`` / ``0``); the values are kept in ``Box.indexes``.
Properties ``id`` → provision id, ``state`` → ``{"id", "status", "tokens"}``; status 0 means never provisioned.
The platform run and the provision-type runs are independent of each other.

Boxes and identities
--------------------
Box *i* has API version ``1 + i % 3`` unless the fleet fixes one, supports every configured type except every
``single_type_every``-th box (box 0 included) which supports only the first (HARDWARE), and starts PROVISIONED
(platform status 200) except every fifth box (``i % 5 == 4``) which starts NOT_PROVISIONED (status 0, no tokens,
empty ESN), unless ``initial_state`` says otherwise. ``Box.calls`` counts the well-formed requests a box received,
by bare method name (``calls["reprovision"]``), on arrival, before latency and faults. Box 0 reproduces the seeds'
examples byte for byte: provision id ``WPE00000uCfrLF45``, ESN ``CMCSTX100000000000000000000000000001000000``, SOC
id ``001b08011000082a``, platform status 200 with tokens ``["netflix, playready"]``, HARDWARE ``RT.2`` PROVISIONED;
box *i* derives distinct values from *i* (``provision_id_for``, ``esn_for``, ``soc_id_for``; serial number
``SIM%06d``). A fleet starts once.

Faults (``Faults``, per box: ``fleet.boxes[3].faults.unavailable_share = 1.0``)
------------------------------------------------------------------------------
``latency`` seconds before every answer; of the well-formed calls, ``drop_share`` get their connection aborted
without an answer (over a WebSocket the whole socket goes), ``busy_share`` get error 12, ``unavailable_share`` error
2 (drawn in that order, after the latency); ``dead_share`` of boxes accept TCP connections and read requests
(WebSocket handshakes included) but never answer; ``corrupt_share`` of runs end CORRUPTED (status 500);
``provision_seconds`` is the length of a run; ``seed`` makes every draw reproducible (each box draws from its own
generator, seeded with the seed and its index). Whether a box is dead is drawn once per box (a fixed number compared
with its ``dead_share``), so changing ``dead_share`` on a box, or setting ``box.dead``, takes effect at once: new
requests hang, frames on open WebSockets are ignored and no events go out. A silent caller is released (its
connection aborted) when the fleet stops.

Portal link (optional)
----------------------
With ``portal_url``, each box activates itself at start (``POST {portal_url}/provision/activate`` with vendor,
model, sn; a 40-hex CIK back) and pushes every notification to ``POST {portal_url}/jsonrpc`` with header
``X-Exosite-CIK`` and method ``client.events.1.provisioningchange``. Failures are logged, never raised.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import enum
import functools
import inspect
import json
import logging
import random
import re
import resource
import socket
import string
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpx
from aiohttp import WSCloseCode, WSMsgType, web

from portal.lib.net import bound_socket

logger = logging.getLogger(__name__)

DEVICE_PROVISIONING = "com.comcast.DeviceProvisioning"
PROVISIONING = "Provisioning"
CALLSIGNS = (DEVICE_PROVISIONING, PROVISIONING)
PLUGIN_VERSION = "1"
EVENT = "provisioningchange"
PORTAL_EVENT_ID = "client.events.1"
HARDWARE, CRYPTANIUM = "HARDWARE", "CRYPTANIUM"
PROVISION_TYPES = (HARDWARE, CRYPTANIUM)
TOKENS = ("netflix, playready",)
STATUS_NEVER, STATUS_OK, STATUS_CORRUPTED = 0, 200, 500
MAX_INDEX = 2**32 - 1
CLOSE_TIMEOUT = 2.0
PORTAL_TIMEOUT = httpx.Timeout(5.0)
PORTAL_CONCURRENCY = 50
_PLATFORM = "platform"  # key of the Thunder platform run among a box's running tasks
_dump = functools.partial(json.dumps, separators=(",", ":"))
# A version is the ASCII digits between the callsign and the method (Thunder's Message::Version); leading zeros
# count for nothing ("01" is 1).
_VERSION = re.compile(r"0*(?P<number>[0-9]{0,3})|[0-9]+")


class ProvisionState(enum.StrEnum):
    NOT_PROVISIONED = "NOT_PROVISIONED"
    IN_PROGRESS = "IN_PROGRESS"
    PROVISIONED = "PROVISIONED"
    CORRUPTED = "CORRUPTED"


_STATUS_OF = {ProvisionState.PROVISIONED: STATUS_OK, ProvisionState.CORRUPTED: STATUS_CORRUPTED}
KINDS = {HARDWARE: "RT.2", CRYPTANIUM: "CRYPTANIUM.4"}
REASONS = {
    HARDWARE: {
        ProvisionState.NOT_PROVISIONED: "RT_NO_CREDS. No credentials present on the device",
        ProvisionState.IN_PROGRESS: "RT_IN_PROGRESS. Credential fetch in progress",
        ProvisionState.PROVISIONED: "RT_GOOD_ACTIVE_PREFETCH_CREDS. Active device and NOT NEW prefetch creds are valid",
        ProvisionState.CORRUPTED: "RT_CORRUPT_CREDS. Credentials failed the integrity check",
    },
    CRYPTANIUM: {
        ProvisionState.NOT_PROVISIONED: "CRYPTANIUM_NO_CREDS. No Cryptanium credentials present on the device",
        ProvisionState.IN_PROGRESS: "CRYPTANIUM_IN_PROGRESS. Cryptanium credential fetch in progress",
        ProvisionState.PROVISIONED: "CRYPTANIUM_GOOD_ACTIVE_CREDS. Active device and Cryptanium creds are valid",
        ProvisionState.CORRUPTED: "CRYPTANIUM_CORRUPT_CREDS. Cryptanium credentials failed the integrity check",
    },
}

PARSE_ERROR = (-32700, "Parse error")
INVALID_REQUEST = (-32600, "Invalid Request")
UNKNOWN_METHOD = (-32601, "Unknown method.")
# Thunder R2: a version no handler of the plugin supports → ERROR_INVALID_SIGNATURE (-32602) with this text.
VERSION_UNSUPPORTED = (-32602, "Requested version is not supported.")
INVALID_PARAMS = (-32602, "Invalid params")
ERROR_UNAVAILABLE = (2, "ERROR_UNAVAILABLE")
ERROR_ILLEGAL_STATE = (5, "ERROR_ILLEGAL_STATE")
ERROR_INPROGRESS = (12, "ERROR_INPROGRESS")
ERROR_UNKNOWN_KEY = (22, "ERROR_UNKNOWN_KEY")


class RpcError(Exception):
    """A JSON-RPC error answer; ``request_id`` is known only once the envelope has been read."""

    def __init__(self, code: int, message: str, request_id: Any = None) -> None:
        super().__init__(f"{code} {message}")
        self.code, self.message, self.request_id = code, message, request_id


@dataclasses.dataclass
class Faults:
    """Misbehaviour knobs, all off by default; shares are probabilities in [0, 1]."""

    latency: float = 0.0
    busy_share: float = 0.0
    unavailable_share: float = 0.0
    drop_share: float = 0.0
    dead_share: float = 0.0
    corrupt_share: float = 0.0
    provision_seconds: float = 0.5
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("busy_share", "unavailable_share", "drop_share", "dead_share", "corrupt_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.latency < 0 or self.provision_seconds < 0:
            raise ValueError("latency and provision_seconds must not be negative")


@dataclasses.dataclass
class TypeState:
    """One provision type on one box; the reason follows from the type and the state."""

    provision_type: str
    state: ProvisionState
    provision_kind: str = ""

    def __post_init__(self) -> None:
        self.provision_kind = self.provision_kind or KINDS[self.provision_type]

    @property
    def reason(self) -> str:
        return REASONS[self.provision_type][self.state]

    def as_json(self) -> dict[str, str]:
        return {
            "provisionType": self.provision_type,
            "provisionKind": self.provision_kind,
            "state": str(self.state),
            "reason": self.reason,
        }


_ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
_SEED_ID_SUFFIX = "uCfrLF45"
_SUFFIX_STEPS = (7, 11, 13, 17, 19, 23, 29, 31)


def provision_id_for(index: int) -> str:
    """``WPE`` + index + the seed's suffix with every character moved by a per-position step (box 0: the seed)."""
    suffix = "".join(
        _ALPHABET[(_ALPHABET.index(char) + index * step) % len(_ALPHABET)]
        for char, step in zip(_SEED_ID_SUFFIX, _SUFFIX_STEPS, strict=True)
    )
    return f"WPE{index:05d}{suffix}"


def esn_for(index: int) -> str:
    return f"CMCSTX1{1_000_000 + index:035d}"


def soc_id_for(index: int) -> str:
    return f"{0x001B08011000082A + index:016x}"


def raise_open_file_limit() -> int:
    """Each box holds a listening socket and every client connection another descriptor; the usual soft limit of
    1 024 would stop a big fleet. Returns the soft limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        logger.warning("could not raise the open-file limit from %s to %s: %s", soft, target, exc)
        return soft
    return target


class _Channel:
    """One WebSocket connection: where a box pushes the events its client registered for."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.ws, self.request = ws, request
        self.ids: set[str] = set()
        self.tasks: set[asyncio.Task] = set()

    async def send(self, text: str) -> None:
        if self.ws.closed:
            return
        with contextlib.suppress(ConnectionError):
            await self.ws.send_str(text)

    def abort(self) -> None:
        _abort(self.request)


class Box:
    """One simulated set-top box: its identity, plugin state, faults and event subscribers."""

    _DEVICE_PROVISIONING_METHODS = {
        "getApiVersionNumber": (1, "_get_api_version"),
        "getNetflixESN": (2, "_get_netflix_esn"),
        "getSOCId": (3, "_get_soc_id"),
        "notifyProvisioning": (2, "_notify_provisioning"),
        "provisionCheck": (1, "_provision_check"),
        "reprovision": (1, "_reprovision"),
    }
    _PROVISIONING_METHODS = {"provision": "_provision", "index": "_index", "id": "_id", "state": "_state"}

    def __init__(
        self,
        index: int,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_version: int | None = None,
        faults: Faults | None = None,
        types: Iterable[str] = PROVISION_TYPES,
        initial_state: ProvisionState | str | None = None,
        serial_number: str | None = None,
    ) -> None:
        self.index, self.host, self.port = index, host, port
        self.api_version = api_version if api_version is not None else 1 + index % 3
        self.faults = dataclasses.replace(faults) if faults is not None else Faults()
        seed = f"{self.faults.seed}/{index}" if self.faults.seed is not None else None
        self._rng = random.Random(seed)  # noqa: S311 - fault draws, not secrets
        self._dead_draw = self._rng.random()
        self.provision_id, self.esn, self.soc_id = provision_id_for(index), esn_for(index), soc_id_for(index)
        self.serial_number = serial_number or f"SIM{index:06d}"
        state = ProvisionState(initial_state or self._default_state(index))
        self.provision_types = {name: TypeState(name, state) for name in types}
        self.status = _STATUS_OF.get(state, STATUS_NEVER)
        self.tokens = list(TOKENS) if self.status == STATUS_OK else []
        self.indexes: dict[str, int] = {}
        self.notified_types: list[str] = []
        self.calls: collections.Counter[str] = collections.Counter()
        self.cik: str | None = None
        self.portal: _PortalLink | None = None
        self._channels: set[_Channel] = set()
        self._tasks: dict[str, asyncio.Task] = {}
        self._background: set[asyncio.Task] = set()

    @staticmethod
    def _default_state(index: int) -> ProvisionState:
        return ProvisionState.NOT_PROVISIONED if index % 5 == 4 else ProvisionState.PROVISIONED

    def __repr__(self) -> str:
        return f"<Box {self.index} {self.address} api={self.api_version}>"

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}/jsonrpc"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.address}/jsonrpc"

    @property
    def dead(self) -> bool:
        return self._dead_draw < self.faults.dead_share

    @dead.setter
    def dead(self, value: bool) -> None:
        self.faults.dead_share = 1.0 if value else 0.0

    @property
    def provisioned(self) -> bool:
        """Whether the Netflix ESN is available: the first (hardware) provision type holds good credentials."""
        first = next(iter(self.provision_types.values()))
        return first.state is ProvisionState.PROVISIONED

    @property
    def subscriber_count(self) -> int:
        return sum(len(channel.ids) for channel in self._channels)

    def provision_check(self) -> list[dict[str, str]]:
        return [entry.as_json() for entry in self.provision_types.values()]

    def type_state(self, provision_type: str) -> ProvisionState:
        return self.provision_types[provision_type].state

    def platform_state(self) -> dict[str, Any]:
        return {"id": self.provision_id, "status": self.status, "tokens": list(self.tokens)}

    def set_type_state(self, provision_type: str, state: ProvisionState | str) -> None:
        """Force a state for a test, silently (call ``notify`` for an event); a run of that type is cancelled.
        Call it on the fleet's loop (``FleetThread.run(lambda: box.set_type_state(…))`` from another thread)."""
        entry = self.provision_types[provision_type]
        task = self._tasks.pop(provision_type, None)
        if task is not None:
            task.cancel()
        entry.state = ProvisionState(state)

    async def notify(self, status: int) -> None:
        """Push ``provisioningchange`` to every registered WebSocket id (and to the portal when linked); a dead box
        stays silent here too."""
        if self.dead:
            return
        for channel in list(self._channels):
            for client_id in sorted(channel.ids):
                await channel.send(
                    _dump({"jsonrpc": "2.0", "method": f"{client_id}.{EVENT}", "params": {"status": status}})
                )
        if self.portal is not None:
            self._spawn(self.portal.push(self, status))

    # Dispatch -------------------------------------------------------------------------------------------------

    async def call(self, method: str, params: Any, channel: _Channel | None = None) -> Any:
        """Run one request; raises ``RpcError`` for an error answer. ``channel`` is None over plain HTTP."""
        callsign, name = _designator(method, self.api_version)
        if name in ("register", "unregister"):
            return self._subscription(name, params, channel)
        if callsign == DEVICE_PROVISIONING:
            needed, attribute = self._DEVICE_PROVISIONING_METHODS.get(name, (None, ""))
            if needed is None or self.api_version < needed:
                raise RpcError(*UNKNOWN_METHOD)
        else:
            attribute = self._PROVISIONING_METHODS.get(name, "")
            if not attribute:
                raise RpcError(*UNKNOWN_METHOD)
        return await getattr(self, attribute)(params)

    async def delay(self) -> None:
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)

    def draw_call_fault(self) -> bool:
        """Apply the per-call fault shares: True means drop the call; busy / unavailable raise their error."""
        if self._draw(self.faults.drop_share):
            return True
        if self._draw(self.faults.busy_share):
            raise RpcError(*ERROR_INPROGRESS)
        if self._draw(self.faults.unavailable_share):
            raise RpcError(*ERROR_UNAVAILABLE)
        return False

    def _draw(self, share: float) -> bool:
        return share > 0 and self._rng.random() < share

    def _subscription(self, name: str, params: Any, channel: _Channel | None) -> int:
        if channel is None:
            raise RpcError(*ERROR_ILLEGAL_STATE)
        if not isinstance(params, dict) or not all(isinstance(params.get(key), str) for key in ("event", "id")):
            raise RpcError(*INVALID_PARAMS)
        if params["event"] != EVENT:
            raise RpcError(*ERROR_UNKNOWN_KEY)
        if name == "register":
            channel.ids.add(params["id"])
        else:
            channel.ids.discard(params["id"])
        return 0

    # com.comcast.DeviceProvisioning ----------------------------------------------------------------------------

    async def _get_api_version(self, params: Any) -> dict[str, Any]:
        return {"version": str(self.api_version), "success": True}

    async def _get_netflix_esn(self, params: Any) -> dict[str, Any]:
        return {"esn": self.esn if self.provisioned else "", "success": True}

    async def _get_soc_id(self, params: Any) -> dict[str, Any]:
        return {"socid": self.soc_id, "success": True}

    async def _notify_provisioning(self, params: Any) -> dict[str, Any]:
        provision_type, problem = self._requested_type(params)
        if problem:
            return {"success": False, "error": problem}
        self.notified_types.append(provision_type)
        return {"success": True}

    async def _provision_check(self, params: Any) -> dict[str, Any]:
        return {"provisionTypes": self.provision_check(), "success": True}

    async def _reprovision(self, params: Any) -> dict[str, Any]:
        provision_type, problem = self._requested_type(params)
        if problem:
            return {"success": False, "error": problem}
        entry = self.provision_types[provision_type]
        if entry.state is ProvisionState.IN_PROGRESS:
            raise RpcError(*ERROR_INPROGRESS)
        entry.state = ProvisionState.IN_PROGRESS
        await self._begin(provision_type, self._finish_type)
        return {"provisionTypes": self.provision_check(), "success": True}

    def _requested_type(self, params: Any) -> tuple[str, str]:
        """The provision type asked for, or the human-readable reason it cannot be used."""
        if params is not None and not isinstance(params, dict):
            raise RpcError(*INVALID_PARAMS)
        provision_type = (params or {}).get("provisionType")
        if provision_type is None:
            return "", "provisionType is required"
        if provision_type not in PROVISION_TYPES:
            return "", f"Invalid provisionType {_dump(provision_type)}: expected one of {', '.join(PROVISION_TYPES)}"
        if provision_type not in self.provision_types:
            return "", f"provisionType {provision_type} is not supported on this device"
        return provision_type, ""

    async def _finish_type(self, provision_type: str) -> None:
        corrupted = self._draw(self.faults.corrupt_share)
        self.provision_types[provision_type].state = (
            ProvisionState.CORRUPTED if corrupted else ProvisionState.PROVISIONED
        )
        await self.notify(STATUS_CORRUPTED if corrupted else STATUS_OK)

    # Provisioning (Thunder) ------------------------------------------------------------------------------------

    async def _provision(self, params: Any) -> None:
        if _PLATFORM in self._tasks:
            raise RpcError(*ERROR_INPROGRESS)
        await self._begin(_PLATFORM, self._finish_platform)

    async def _index(self, params: Any) -> None:
        params = {} if params is None else params
        if not isinstance(params, dict):
            raise RpcError(*INVALID_PARAMS)
        label, index = params.get("label", ""), params.get("index", 0)
        if not isinstance(label, str) or type(index) is not int or not 0 <= index <= MAX_INDEX:
            raise RpcError(*INVALID_PARAMS)
        self.indexes[label] = index

    async def _id(self, params: Any) -> str:
        _property_read(params)
        return self.provision_id

    async def _state(self, params: Any) -> dict[str, Any]:
        _property_read(params)
        return self.platform_state()

    async def _finish_platform(self, key: str) -> None:
        corrupted = self._draw(self.faults.corrupt_share)
        self.status = STATUS_CORRUPTED if corrupted else STATUS_OK
        self.tokens = [] if corrupted else list(TOKENS)
        await self.notify(self.status)

    # Runs --------------------------------------------------------------------------------------------------------

    async def _begin(self, key: str, finish: Callable[[str], Any]) -> None:
        """Start a run: at once when ``provision_seconds`` is 0, else in a task that a second call can see."""
        seconds = self.faults.provision_seconds
        if seconds <= 0:
            await finish(key)
            return
        self._tasks[key] = asyncio.create_task(self._run_later(seconds, key, finish), name=f"box-{self.index}-{key}")

    async def _run_later(self, seconds: float, key: str, finish: Callable[[str], Any]) -> None:
        await asyncio.sleep(seconds)
        # Leave the running set before the event goes out, so that a client reacting to it may start a new run.
        # (Whoever cancels a run, set_type_state or shutdown, removes it first.)
        del self._tasks[key]
        await finish(key)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def shutdown(self) -> None:
        """Cancel runs and background pushes and close every WebSocket (going away)."""
        tasks = [*self._tasks.values(), *self._background]
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        closes = [channel.ws.close(code=WSCloseCode.GOING_AWAY) for channel in list(self._channels)]
        await asyncio.gather(*tasks, *closes, return_exceptions=True)


_BOX = web.RequestKey("box", Box)


def _designator(method: str, api_version: int) -> tuple[str, str]:
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


def _property_read(params: Any) -> None:
    """A property call with params is a write; both Thunder properties are read-only."""
    if params not in (None, {}, []):
        raise RpcError(*INVALID_PARAMS)


def _parse(raw: bytes | str) -> tuple[Any, str, Any]:
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


def _error(exc: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": exc.request_id, "error": {"code": exc.code, "message": exc.message}}


def _abort(request: web.BaseRequest) -> None:
    """Close the connection without a word, as a box that crashed or lost its network would."""
    transport = request.transport
    if transport is not None:
        transport.abort()


class _PortalLink:
    """A box's link to the portal: Exosite activation, then each event pushed with the CIK."""

    def __init__(self, client: httpx.AsyncClient, url: str, vendor: str, model: str, limit: asyncio.Semaphore) -> None:
        self.client, self.url, self.vendor, self.model, self.limit = client, url.rstrip("/"), vendor, model, limit
        self._locks: dict[int, asyncio.Lock] = {}

    async def activate(self, box: Box) -> None:
        """Activate once (a CIK is handed out only once); pushes wait for it."""
        async with self._locks.setdefault(box.index, asyncio.Lock()):
            if box.cik is not None:
                return
            form = {"vendor": self.vendor, "model": self.model, "sn": box.serial_number}
            try:
                async with self.limit:
                    response = await self.client.post(f"{self.url}/provision/activate", data=form)
            except httpx.HTTPError as exc:
                logger.warning("box %s: activation failed: %s", box.index, exc)
                return
            if response.status_code == 200 and re.fullmatch(r"[0-9a-f]{40}", response.text):
                box.cik = response.text
            else:
                logger.warning("box %s: activation refused with HTTP %s", box.index, response.status_code)

    async def push(self, box: Box, status: int) -> None:
        await self.activate(box)
        if box.cik is None:
            return
        body = _dump({"jsonrpc": "2.0", "method": f"{PORTAL_EVENT_ID}.{EVENT}", "params": {"status": status}})
        headers = {"X-Exosite-CIK": box.cik, "Content-Type": "application/json"}
        try:
            async with self.limit:
                response = await self.client.post(f"{self.url}/jsonrpc", content=body, headers=headers)
        except httpx.HTTPError as exc:
            logger.warning("box %s: event push failed: %s", box.index, exc)
            return
        if response.status_code >= 300:
            logger.warning("box %s: event push answered HTTP %s", box.index, response.status_code)


class Fleet:
    """N boxes on one event loop: one aiohttp app and runner, one listening socket per box."""

    def __init__(
        self,
        count: int,
        *,
        host: str = "127.0.0.1",
        base_port: int = 0,
        api_version: int | None = None,
        faults: Faults | None = None,
        types: Iterable[str] = PROVISION_TYPES,
        single_type_every: int = 4,
        initial_state: ProvisionState | str | None = None,
        portal_url: str | None = None,
        vendor: str = "simulator",
        model: str = "stb-sim",
        sockets: Sequence[socket.socket] = (),
    ) -> None:
        types = tuple(types)
        if count < 0 or not types or not set(types) <= set(PROVISION_TYPES):
            raise ValueError(f"need count >= 0 and types among {PROVISION_TYPES}")
        if sockets and (len(sockets) != count or base_port):
            raise ValueError("with sockets, one per box and no base_port")
        if api_version is not None and api_version not in (1, 2, 3):
            raise ValueError("api_version must be 1, 2 or 3")
        self.host, self.base_port, self.portal_url, self.vendor, self.model = host, base_port, portal_url, vendor, model
        self.boxes = [
            Box(
                index,
                host=host,
                port=base_port + index if base_port else 0,
                api_version=api_version,
                faults=faults,
                types=types[:1] if single_type_every and index % single_type_every == 0 else types,
                initial_state=initial_state,
            )
            for index in range(count)
        ]
        # Sockets bound (and listening) by someone else, e.g. a parent process that keeps the ports across restarts.
        self._given = dict(zip(self.boxes, sockets, strict=False))
        for box, sock in self._given.items():
            box.host, box.port = sock.getsockname()[:2]
        self._by_port: dict[int, Box] = {}
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        """Listen on every box's port; returns once all of them accept connections."""
        raise_open_file_limit()
        self._closing = asyncio.Event()
        app = web.Application(middlewares=[web.middleware(functools.partial(Fleet._find_box, self))])
        app.router.add_post("/jsonrpc", self._http)
        app.router.add_get("/jsonrpc", self._websocket)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=CLOSE_TIMEOUT)
        await self._runner.setup()
        try:
            for box in self.boxes:
                await self._listen(box)
        except BaseException:
            await self.stop()
            raise
        if self.portal_url:
            self._link_portal(self.portal_url)

    async def stop(self) -> None:
        """Release silent boxes' callers, end runs, close sockets and free every port."""
        if self._closing is not None:
            self._closing.set()
        await asyncio.gather(*(box.shutdown() for box in self.boxes))
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._by_port.clear()

    async def __aenter__(self) -> Fleet:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _listen(self, box: Box) -> None:
        sock = self._given.get(box) or bound_socket(box.host, box.port)
        box.port = sock.getsockname()[1]
        self._by_port[box.port] = box
        try:
            await web.SockSite(self._runner, sock).start()
        except BaseException:
            sock.close()
            raise

    def _link_portal(self, url: str) -> None:
        self._client = httpx.AsyncClient(timeout=PORTAL_TIMEOUT)
        link = _PortalLink(self._client, url, self.vendor, self.model, asyncio.Semaphore(PORTAL_CONCURRENCY))
        for box in self.boxes:
            box.portal = link
            box._spawn(link.activate(box))

    # Request handling -----------------------------------------------------------------------------------------

    async def _find_box(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        """Middleware: the box is the one listening on the connection's local port; a dead box stays silent."""
        transport = request.transport
        sockname = transport.get_extra_info("sockname") if transport is not None else None
        box = self._by_port.get(sockname[1]) if sockname else None
        if box is None:
            raise web.HTTPServiceUnavailable()
        if box.dead:
            return await self._never_answer(request)
        request[_BOX] = box
        return await handler(request)

    async def _never_answer(self, request: web.Request) -> web.StreamResponse:
        await self._closing.wait()
        _abort(request)
        return web.Response()  # never reaches anyone: the connection is gone

    async def _answer(self, box: Box, raw: bytes | str, channel: _Channel | None) -> dict[str, Any] | None:
        """The answer to one request, or None when the call is dropped."""
        try:
            request_id, method, params = _parse(raw)
        except RpcError as exc:
            await box.delay()
            return _error(exc)
        box.calls[method.rpartition(".")[2]] += 1
        await box.delay()
        try:
            if box.draw_call_fault():
                return None
            result = await box.call(method, params, channel)
        except RpcError as exc:
            exc.request_id = request_id
            return _error(exc)
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    async def _http(self, request: web.Request) -> web.StreamResponse:
        answer = await self._answer(request[_BOX], await request.read(), None)
        if answer is None:
            _abort(request)
            return web.Response()  # never reaches anyone: the connection is gone
        status = 202 if "error" in answer else 200
        return web.Response(status=status, body=_dump(answer).encode(), content_type="application/json")

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(protocols=("notification",), timeout=CLOSE_TIMEOUT)
        if not ws.can_prepare(request).ok:
            raise web.HTTPMethodNotAllowed(request.method, ["POST"])
        await ws.prepare(request)
        box: Box = request[_BOX]
        channel = _Channel(ws, request)
        box._channels.add(channel)
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT and not box.dead:
                    task = asyncio.create_task(self._ws_call(box, channel, message.data))
                    channel.tasks.add(task)
                    task.add_done_callback(channel.tasks.discard)
        finally:
            box._channels.discard(channel)
            for task in list(channel.tasks):
                task.cancel()
        return ws

    async def _ws_call(self, box: Box, channel: _Channel, text: str) -> None:
        answer = await self._answer(box, text, channel)
        if answer is None:
            channel.abort()
        else:
            await channel.send(_dump(answer))


async def _call(factory: Callable[[], Any]) -> Any:
    result = factory()
    if inspect.isawaitable(result):
        result = await result
    return result


def _serve_forever(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


class FleetThread:
    """A ``Fleet`` on its own event loop in a background thread, for synchronous code and tests."""

    def __init__(self, count: int, *, start_timeout: float = 120.0, **fleet_kwargs: Any) -> None:
        self.fleet = Fleet(count, **fleet_kwargs)
        self.start_timeout = start_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def boxes(self) -> list[Box]:
        return self.fleet.boxes

    def start(self) -> FleetThread:
        """Returns once every box listens."""
        if self._thread is not None:
            raise RuntimeError("the fleet is already running")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=_serve_forever, args=(self._loop,), name="device-simulator", daemon=True)
        self._thread.start()
        try:
            self.run(self.fleet.start, timeout=self.start_timeout)
        except BaseException:
            self._halt()
            raise
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        try:
            self.run(self.fleet.stop, timeout=self.start_timeout)
        finally:
            self._halt()

    def run(self, factory: Callable[[], Any], timeout: float | None = None) -> Any:
        """Call ``factory`` on the fleet's loop (awaiting it when it returns an awaitable) and return the result."""
        if self._loop is None:
            raise RuntimeError("the fleet is not running")
        return asyncio.run_coroutine_threadsafe(_call(factory), self._loop).result(timeout)

    def _halt(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop, self._thread = None, None

    def __enter__(self) -> FleetThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
