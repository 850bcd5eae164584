"""The one module that talks to a Conax head-end: it sends a provisioning command and reads back its outcome.

Two gateways behind one interface, chosen by ``settings.CAS_GATEWAY_URL``:
- ``"inprocess:"``: a head-end in this very process, made lazily by the class (or factory) that
  ``settings.CAS_INPROCESS_BACKEND`` names by dotted path (the CAS simulator, ``conax.simulator.CasSimulator``),
  called with ``auto_register=True`` and ``latency_ms=settings.CAS_SIMULATOR_LATENCY_MS``; this module never
  imports it. Its state lives and dies with the process, so with several worker processes each one has its own
  head-end: fine for tests and the demo, not for anything that relies on one head-end seeing every request (use the
  HTTP simulator, ``manage.py simulate_cas``, for that).
- ``"http://host:port"`` (or https): a head-end adapter speaking the HTTP protocol documented in
  ``conax/simulator/__init__.py``, with ``settings.CAS_TIMEOUT`` seconds for each of connect, read, write and pool
  wait.

The command, its outcomes and their JSON are ``conax/cas_protocol.py`` (shared with the simulator); they are
imported from here too.

Outcomes are values, never exceptions: ``Completed`` or ``Rejected`` (the head-end's own refusal: terminal). The
only error raised for what a head-end does is ``GatewayUnavailable``: the command may or may not have been carried
out, so the caller asks ``lookup`` before it sends the same idempotency key again.

Both gateways are called from several threads at once (``conax.pipeline`` sends a batch's calls concurrently): the
HTTP one shares one pooled ``httpx.Client`` (thread-safe, ``MAX_CONNECTIONS`` wide), the in-process one calls a
head-end that must be thread-safe itself (the simulator holds one lock around its state).

Parameters may hold a PIN: they are never logged and never part of a ``repr``.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from conax.cas_protocol import (
    BAD_COMMAND,
    REQUESTS_PATH,
    UNKNOWN_KEY,
    CasCommand,
    Completed,
    GatewayError,
    GatewayUnavailable,
    Outcome,
    Rejected,
    outcome_from_wire,
)

__all__ = [
    "CasCommand",
    "Completed",
    "Gateway",
    "GatewayError",
    "GatewayUnavailable",
    "HttpGateway",
    "InProcessGateway",
    "Outcome",
    "Rejected",
    "gateway_from_settings",
    "reset_gateway_cache",
]

log = logging.getLogger(__name__)

INPROCESS = "inprocess:"
MAX_CONNECTIONS = 100


class Gateway(Protocol):
    def send(self, command: CasCommand) -> Outcome: ...

    def lookup(self, idempotency_key: str) -> Outcome | None: ...


class InProcessHeadend(Gateway, Protocol):
    """What ``CAS_INPROCESS_BACKEND`` makes: a head-end called directly (from several threads at once: it must be
    thread-safe), raising ``GatewayUnavailable`` (or a subclass) itself for what would be a 503 over HTTP."""


class InProcessGateway:
    """The in-process head-end called directly; it raises ``GatewayUnavailable`` itself for its faults."""

    def __init__(self, simulator: InProcessHeadend) -> None:
        self.simulator = simulator

    def send(self, command: CasCommand) -> Outcome:
        return self.simulator.send(command)

    def lookup(self, idempotency_key: str) -> Outcome | None:
        return self.simulator.lookup(idempotency_key)

    def close(self) -> None:
        """Nothing to release: the simulator outlives its gateways."""


class HttpGateway:
    """A head-end over HTTP. One pooled client per gateway, shared by the threads of the process."""

    def __init__(self, base_url: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS),
            headers={"Accept": "application/json"},
        )

    def send(self, command: CasCommand) -> Outcome:
        body = {"idempotency_key": command.idempotency_key, "type": command.type, "params": command.params}
        response = self._request("POST", REQUESTS_PATH, command.idempotency_key, json=body)
        if response.status_code == 400:  # the head-end could not read the command: sending it again cannot help
            return Rejected(BAD_COMMAND, _error_text(response))
        return self._outcome(response, command.idempotency_key)

    def lookup(self, idempotency_key: str) -> Outcome | None:
        response = self._request("GET", f"{REQUESTS_PATH}/{quote(idempotency_key, safe='')}", idempotency_key)
        if response.status_code == 404 and _error_text(response) == UNKNOWN_KEY:
            return None
        return self._outcome(response, idempotency_key)

    def close(self) -> None:
        self._client.close()

    def _request(self, method: str, path: str, key: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise _unavailable(key, f"no answer within {self.timeout:g} s ({type(exc).__name__})") from exc
        except httpx.RequestError as exc:
            raise _unavailable(key, f"connection failed ({type(exc).__name__})") from exc

    def _outcome(self, response: httpx.Response, key: str) -> Outcome:
        if response.status_code != 200:
            raise _unavailable(key, f"HTTP {response.status_code} from the head-end")
        try:
            outcome = outcome_from_wire(response.json(), key)
        except ValueError:  # JSONDecodeError, bad UTF-8
            outcome = None
        if outcome is None:
            raise _unavailable(key, "the head-end's answer is unreadable")
        return outcome


def _error_text(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    return error if isinstance(error, str) else f"HTTP {response.status_code}"


def _unavailable(key: str, reason: str) -> GatewayUnavailable:
    log.warning("CAS head-end unavailable", extra={"idempotency_key": key, "reason": reason})
    return GatewayUnavailable(reason)


# --- the process's gateway -----------------------------------------------------------------------------------------

_lock = threading.RLock()  # reentrant: building the in-process gateway makes the default simulator
_cached: tuple[tuple[str, float], Gateway] | None = None
_simulator: InProcessHeadend | None = None


def default_simulator() -> InProcessHeadend:
    """The in-process head-end of this process, made on first use from ``settings.CAS_INPROCESS_BACKEND``."""
    global _simulator
    with _lock:
        if _simulator is None:
            backend = import_string(settings.CAS_INPROCESS_BACKEND)
            _simulator = backend(auto_register=True, latency_ms=float(settings.CAS_SIMULATOR_LATENCY_MS))
        return _simulator


def gateway_from_settings() -> Gateway:
    """The process's gateway; made again only when the settings it was made from change (tests)."""
    global _cached
    key = (str(settings.CAS_GATEWAY_URL), float(settings.CAS_TIMEOUT))
    with _lock:
        if _cached is None or _cached[0] != key:
            _cached = (key, _build(*key))
        return _cached[1]


def _build(url: str, timeout: float) -> Gateway:
    if url == INPROCESS:
        return InProcessGateway(default_simulator())
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # The URL itself is not repeated: it may carry credentials.
        raise ImproperlyConfigured("CAS_GATEWAY_URL must be 'inprocess:' or an http(s):// URL with a host")
    if timeout <= 0:
        raise ImproperlyConfigured("CAS_TIMEOUT must be a positive number of seconds")
    return HttpGateway(url, timeout)


def reset_gateway_cache() -> None:
    """Forget the process's gateway (closing its connections) and its in-process simulator: tests start afresh."""
    global _cached, _simulator
    with _lock:
        cached, _cached, _simulator = _cached, None, None
    if cached is not None and isinstance(cached[1], HttpGateway):
        cached[1].close()


def _forget_after_fork() -> None:
    """A forked worker must not share its parent's sockets, nor inherit a lock another thread held at the fork."""
    global _lock, _cached, _simulator
    _lock, _cached, _simulator = threading.RLock(), None, None


os.register_at_fork(after_in_child=_forget_after_fork)
