"""The CAS simulator behind its HTTP protocol (``CasServer`` on the running asyncio loop) and ``CasServerThread`` for
synchronous code."""

from __future__ import annotations

import asyncio
import functools
import json
import socket
from typing import Any

from aiohttp import web

from conax import cas_protocol as wire
from conax.cas_protocol import CasCommand, outcome_to_wire
from conax.simulator.state import CasSimulator, HeadendUnavailable, envelope_problem
from portal.lib.net import bound_socket
from portal.lib.servekit import ServerThread

UNAVAILABLE = {"error": wire.UNAVAILABLE}
JSON = "application/json"
_dump = functools.partial(json.dumps, separators=(",", ":"))


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
        self,
        simulator: CasSimulator | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        sock: socket.socket | None = None,
    ) -> None:
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
        app.router.add_post(wire.REQUESTS_PATH, self._send)
        app.router.add_get(f"{wire.REQUESTS_PATH}/{{key}}", self._lookup)
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
        return _answer(outcome_to_wire(key, outcome)) if outcome else _answer({"error": wire.UNKNOWN_KEY}, 404)

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


class CasServerThread(ServerThread[CasServer]):
    """A ``CasServer`` on its own event loop in a background thread, for synchronous code and tests."""

    def __init__(
        self,
        simulator: CasSimulator | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        start_timeout: float = 10.0,
        **simulator_kwargs: Any,
    ) -> None:
        if simulator is not None and simulator_kwargs:
            raise TypeError("pass either a simulator or its keyword arguments")
        server = CasServer(simulator or CasSimulator(**simulator_kwargs), host=host, port=port)
        super().__init__(server, name="cas-simulator", what="the CAS simulator", start_timeout=start_timeout)

    @property
    def simulator(self) -> CasSimulator:
        return self.server.simulator

    @property
    def url(self) -> str:
        return self.server.url
