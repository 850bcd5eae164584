"""One simulated set-top box: its identities, the state machine of its provisioning runs, its faults, and what each
method does. The wire behaviour is documented in the package's docstring (``provisioning/simulator/__init__.py``);
the HTTP and WebSocket side is ``server.py``."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import random
import string
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from provisioning.simulator.rpc import (
    ERROR_ILLEGAL_STATE,
    ERROR_INPROGRESS,
    ERROR_UNAVAILABLE,
    ERROR_UNKNOWN_KEY,
    INVALID_PARAMS,
    UNKNOWN_METHOD,
    RpcError,
    designator,
    dump,
    property_read,
)
from provisioning.thunder_protocol import (
    DEVICE_PROVISIONING,
    EVENT,
    MAX_INDEX,
    METHOD_SINCE,
    STATUS_CORRUPTED,
    STATUS_NEVER,
    STATUS_OK,
    ProvisionState,
    ProvisionType,
)

HARDWARE, CRYPTANIUM = ProvisionType.HARDWARE.value, ProvisionType.CRYPTANIUM.value
PROVISION_TYPES = (HARDWARE, CRYPTANIUM)
TOKENS = ("netflix, playready",)
_PLATFORM = "platform"  # key of the Thunder platform run among a box's running tasks

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


class Channel(Protocol):
    """Where a box pushes the events a client registered for (one WebSocket: ``server._Channel``)."""

    ids: set[str]

    async def send(self, text: str) -> None: ...

    async def close(self) -> None: ...


class EventLink(Protocol):
    """Where a box linked to the portal pushes its events as well (``server._PortalLink``)."""

    async def push(self, box: Box, status: int) -> None: ...


class Box:
    """One simulated set-top box: its identity, plugin state, faults and event subscribers."""

    # Which API version introduced each of these is the protocol's METHOD_SINCE.
    _DEVICE_PROVISIONING_METHODS = {
        "getApiVersionNumber": "_get_api_version",
        "getNetflixESN": "_get_netflix_esn",
        "getSOCId": "_get_soc_id",
        "notifyProvisioning": "_notify_provisioning",
        "provisionCheck": "_provision_check",
        "reprovision": "_reprovision",
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
        self._random: random.Random | None = None  # made on first draw (``_rng``): a big fleet need not hold one each
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
        self.portal: EventLink | None = None
        self._channels: set[Channel] = set()
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
    def _rng(self) -> random.Random:
        """The box's own generator, seeded with the fleet's seed and its index; its first number is the dead draw.
        Made lazily: ~2.5 kB of Mersenne Twister state per box is most of a box's memory in a 100 000-box fleet."""
        if self._random is None:
            seed = f"{self.faults.seed}/{self.index}" if self.faults.seed is not None else None
            self._random = random.Random(seed)  # noqa: S311 - fault draws, not secrets
            self._dead_number = self._random.random()
        return self._random

    @property
    def _dead_draw(self) -> float:
        self._rng  # noqa: B018 - makes the generator, and with it the dead draw
        return self._dead_number

    @property
    def dead(self) -> bool:
        # No draw needed while the share is 0 (the default): the generator is then made only by a fault draw.
        return self.faults.dead_share > 0 and self._dead_draw < self.faults.dead_share

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
                    dump({"jsonrpc": "2.0", "method": f"{client_id}.{EVENT}", "params": {"status": status}})
                )
        if self.portal is not None:
            self._spawn(self.portal.push(self, status))

    # Dispatch -------------------------------------------------------------------------------------------------

    async def call(self, method: str, params: Any, channel: Channel | None = None) -> Any:
        """Run one request; raises ``RpcError`` for an error answer. ``channel`` is None over plain HTTP."""
        callsign, name = designator(method, self.api_version)
        if name in ("register", "unregister"):
            return self._subscription(name, params, channel)
        if callsign == DEVICE_PROVISIONING:
            attribute = self._DEVICE_PROVISIONING_METHODS.get(name, "")
            if not attribute or self.api_version < METHOD_SINCE[name]:
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

    def _subscription(self, name: str, params: Any, channel: Channel | None) -> int:
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
            return "", f"Invalid provisionType {dump(provision_type)}: expected one of {', '.join(PROVISION_TYPES)}"
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
        property_read(params)
        return self.provision_id

    async def _state(self, params: Any) -> dict[str, Any]:
        property_read(params)
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
        closes = [channel.close() for channel in list(self._channels)]
        await asyncio.gather(*tasks, *closes, return_exceptions=True)
