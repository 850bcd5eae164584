"""What both simulators need to run as servers: no Django here (``python -m provisioning.simulator`` and
``python -m conax.simulator`` start without settings).

- ``ServerThread``: an asyncio server (anything with ``async start()``, returning once it listens, and ``async
  stop()``) on its own event loop in a daemon thread, for synchronous code and tests.
- ``serve_until_signalled``: the entry points' main loop, serving until SIGINT or SIGTERM.
- ``inherited_socket``: the listening TCP socket a parent passed down as ``--fd`` (it keeps the port bound across
  restarts of the child).

``StartError`` is what an entry point reports on one line and exits 1 for: arguments that cannot work together, a
descriptor that is not a listening socket, a port it cannot listen on.
"""

from __future__ import annotations

import asyncio
import inspect
import signal
import socket
import threading
from collections.abc import Callable
from typing import Any, Generic, Protocol, Self, TypeVar


class StartError(Exception):
    """The server cannot start as asked; the message is for the operator and names the argument at fault."""


class AsyncServer(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


ServerT = TypeVar("ServerT", bound=AsyncServer)


async def _call(factory: Callable[[], Any]) -> Any:
    result = factory()
    if inspect.isawaitable(result):
        result = await result
    return result


def _serve_forever(loop: asyncio.AbstractEventLoop) -> None:
    """Run the loop until stopped, then cancel what is left on it and close it (on the loop's own thread)."""
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


class ServerThread(Generic[ServerT]):
    """``server`` on its own event loop in a background (daemon) thread: ``start()`` returns once it listens,
    ``stop()`` stops it and ends the thread (twice is harmless), ``with`` does both, ``run(factory)`` calls code on
    the server's loop."""

    def __init__(self, server: ServerT, *, name: str, what: str, start_timeout: float) -> None:
        """``what`` names the server in errors ("the fleet", "the CAS simulator")."""
        self.server = server
        self.name, self.what, self.start_timeout = name, what, start_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError(f"{self.what} is already running")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=_serve_forever, args=(self._loop,), name=self.name, daemon=True)
        self._thread.start()
        try:
            self.run(self.server.start, timeout=self.start_timeout)
        except BaseException:
            self._halt()
            raise
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        try:
            self.run(self.server.stop, timeout=self.start_timeout)
        finally:
            self._halt()

    def run(self, factory: Callable[[], Any], timeout: float | None = None) -> Any:
        """Call ``factory`` on the server's loop (awaiting it when it returns an awaitable) and return the result."""
        if self._loop is None:
            raise RuntimeError(f"{self.what} is not running")
        return asyncio.run_coroutine_threadsafe(_call(factory), self._loop).result(timeout)

    def _halt(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:  # only ever called once start() set both
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._loop, self._thread = None, None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


async def serve_until_signalled(server: AsyncServer, *, announce: Callable[[], None]) -> None:
    """Start ``server``, call ``announce`` once it listens, serve until SIGINT or SIGTERM, then stop it.

    A socket that cannot be listened on is a ``StartError``; the server is stopped however the wait ends."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await server.start()
    except OSError as exc:
        raise StartError(f"cannot listen: {exc}") from exc
    try:
        announce()
        await stopping.wait()
    finally:
        await server.stop()


def inherited_socket(fd: int, *, wanted: str = "a bound and listening TCP socket") -> socket.socket:
    """The listening TCP socket open as ``fd`` (inherited from a parent that keeps the port), or a ``StartError``
    saying what ``fd`` is instead: ``"--fd FD: not <wanted>"``. A descriptor that is not usable is left open: it
    stays the parent's business."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise StartError(f"--fd {fd}: not an open socket ({exc.strerror or exc})") from exc
    try:
        tcp = sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM
        usable = tcp and bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    except OSError:
        usable = False
    if not usable:
        sock.detach()
        raise StartError(f"--fd {fd}: not {wanted}")
    return sock
