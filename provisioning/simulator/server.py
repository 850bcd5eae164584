"""The fleet on the wire: one aiohttp application and runner for every box, one listening socket per box, HTTP and
WebSocket JSON-RPC, the optional portal link; ``FleetThread`` runs a fleet for synchronous code."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import re
import resource
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpx
from aiohttp import WSCloseCode, WSMsgType, web

from portal.lib.net import bound_socket
from portal.lib.servekit import ServerThread
from provisioning.simulator.rpc import RpcError, dump, error_answer, parse
from provisioning.simulator.state import PROVISION_TYPES, Box, Faults
from provisioning.thunder_protocol import API_VERSIONS, EVENT, PORTAL_EVENT_ID, ProvisionState

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT = 2.0
PORTAL_TIMEOUT = httpx.Timeout(5.0)
PORTAL_CONCURRENCY = 50


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

    async def close(self) -> None:
        """The fleet stops: the box is going away."""
        await self.ws.close(code=WSCloseCode.GOING_AWAY)


_BOX = web.RequestKey("box", Box)


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
        body = dump({"jsonrpc": "2.0", "method": f"{PORTAL_EVENT_ID}.{EVENT}", "params": {"status": status}})
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
        loopback: str | None = None,
    ) -> None:
        types = tuple(types)
        self.loopback = _loopback_range(loopback, count, sockets) if loopback else None
        if count < 0 or not types or not set(types) <= set(PROVISION_TYPES):
            raise ValueError(f"need count >= 0 and types among {PROVISION_TYPES}")
        if sockets and (len(sockets) != count or base_port):
            raise ValueError("with sockets, one per box and no base_port")
        if api_version is not None and api_version not in API_VERSIONS:
            raise ValueError("api_version must be 1, 2 or 3")
        self.host, self.base_port, self.portal_url, self.vendor, self.model = host, base_port, portal_url, vendor, model
        self.boxes = [
            Box(
                index,
                host=str(self.loopback + index) if self.loopback else host,
                port=base_port if self.loopback else base_port + index if base_port else 0,
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
            if self.loopback:
                await self._listen_shared()
            else:
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

    async def _listen_shared(self) -> None:
        """Multi-box mode: one socket on every local address (all of 127/8 reaches ``lo`` on Linux), one port for
        the whole fleet; a request finds its box by the local *address* of its connection (``_find_box``)."""
        sock = bound_socket("0.0.0.0", self.base_port)  # noqa: S104 - connections to no box's address are aborted
        port = sock.getsockname()[1]
        for box in self.boxes:
            box.port = port
        try:
            await web.SockSite(self._runner, sock, backlog=4096).start()
        except BaseException:
            sock.close()
            raise

    def _box_at(self, sockname: tuple | None, peer: tuple | None) -> Box | None:
        if not sockname:
            return None
        if self.loopback is None:
            return self._by_port.get(sockname[1])
        if not peer or not ipaddress.ip_address(peer[0]).is_loopback:
            return None  # the shared socket listens on every address; only local callers reach a box
        index = int(ipaddress.ip_address(sockname[0])) - int(self.loopback)
        return self.boxes[index] if 0 <= index < len(self.boxes) else None

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
        peer = transport.get_extra_info("peername") if transport is not None else None
        box = self._box_at(sockname, peer)
        if box is None:
            if self.loopback is not None:
                _abort(request)  # an address that is no box's: as if nothing listened there
                return web.Response()
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
            request_id, method, params = parse(raw)
        except RpcError as exc:
            await box.delay()
            return error_answer(exc)
        box.calls[method.rpartition(".")[2]] += 1
        await box.delay()
        try:
            if box.draw_call_fault():
                return None
            result = await box.call(method, params, channel)
        except RpcError as exc:
            exc.request_id = request_id
            return error_answer(exc)
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    async def _http(self, request: web.Request) -> web.StreamResponse:
        answer = await self._answer(request[_BOX], await request.read(), None)
        if answer is None:
            _abort(request)
            return web.Response()  # never reaches anyone: the connection is gone
        status = 202 if "error" in answer else 200
        return web.Response(status=status, body=dump(answer).encode(), content_type="application/json")

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
            await channel.send(dump(answer))


def _loopback_range(first: str, count: int, sockets: Sequence[socket.socket]) -> ipaddress.IPv4Address:
    """The first box's address in multi-box mode; the fleet's addresses must all be in 127/8."""
    if sockets:
        raise ValueError("loopback excludes sockets")
    try:
        start = ipaddress.IPv4Address(first)
    except ValueError as exc:
        raise ValueError(f"loopback must be an IPv4 address, not {first!r}") from exc
    last = int(start) + max(count, 1) - 1
    if not start.is_loopback or last > int(ipaddress.IPv4Address("127.255.255.254")):
        raise ValueError(f"{count} boxes from {first} do not fit in 127.0.0.0/8")
    return start


class FleetThread(ServerThread[Fleet]):
    """A ``Fleet`` on its own event loop in a background thread, for synchronous code and tests."""

    def __init__(self, count: int, *, start_timeout: float = 120.0, **fleet_kwargs: Any) -> None:
        super().__init__(
            Fleet(count, **fleet_kwargs), name="device-simulator", what="the fleet", start_timeout=start_timeout
        )

    @property
    def fleet(self) -> Fleet:
        return self.server

    @property
    def boxes(self) -> list[Box]:
        return self.server.boxes
