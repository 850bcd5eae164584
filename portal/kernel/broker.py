"""The broker transports the portal runs on: the embedded one (``portalfs://``) and a guarded Redis transport.

The embedded broker: kombu's filesystem transport, made safe for several producer and consumer processes.

Why not the stock transport (kombu 5.7, ``kombu/transport/filesystem.py``; celery/kombu#1551): ``_put`` creates
the message file under its final name and only then writes it (its ``flock`` is advisory, and ``_get`` never
takes it), while ``_get`` lists the folder, moves a file and reads it at once. A consumer polling while a producer
is between ``open`` and ``write`` reads an empty or half-written file: ``JSONDecodeError`` escapes ``_get`` and the
worker stops with "Unrecoverable error"; the file was already removed, so the message is lost too. Beat sending
several tasks at once makes that window likely. The exchange tables (``control/*.exchange``) have the same flaw:
opened with ``wb`` (truncated) before they are locked. And ``_get`` deletes the message before the task runs, so
``acks_late`` means nothing: a worker killed mid-task loses it.

This transport (URL ``portalfs://``, see ``TRANSPORT_ALIAS``) keeps the same folder layout and file names and
changes what happens to a file:

- publish: write the message to ``<queue folder>/.staging/``, ``fsync`` it, ``rename`` it into the queue folder,
  ``fsync`` the folder. A consumer can only ever see a complete file, and a message is on disk when publish
  returns (durable against a crash of the publisher, or of the machine).
- consume: ``rename`` the file into this channel's own claim folder (``.claimed/<id>/``); rename is atomic, so of
  several consumers exactly one wins. The file stays there until the message is acknowledged (then it is
  deleted) or rejected / restored (then it goes back to the queue first). A file that is not a message (written
  by something else, a broken disk) is moved to ``.bad/`` with one error line; it never stops the worker.
- crash recovery: a channel holds an exclusive ``flock`` on its claim folder while it lives; the kernel drops it
  when the process dies. Every consumer, when it starts and every ``recovery_interval`` seconds, moves the
  messages of claim folders nobody holds back into the queue: what a killed worker held is delivered again
  (the tasks are idempotent), as with Redis's visibility timeout, but without waiting for one.
- exchange tables: written to a temporary file and renamed, under a separate lock file, so readers never see a
  partial table.

The Redis transport (``RedisTransport``, alias ``portalredis``, set by ``CELERY_BROKER_TRANSPORT`` for a ``redis://``
broker URL) is kombu's with one guard. When Redis goes away under a prefork worker, Celery's consumer
(``on_connection_error_after_connected``) first ``collect()``s the connection, which detaches the transport
(``transport.client = None``) but leaves the channel as the connection's default channel, then ``close()``s it.
That close can reach the channel's restore of unacknowledged messages (traceback seen here, kombu 5.7 / Celery 5.7:
``Connection.close`` -> ``Channel.close`` -> ``restore_unacked`` -> a new Redis pool -> ``_connparams``), and kombu
builds the pool's parameters from ``transport.client.hostname``: ``AttributeError: 'NoneType' object has no
attribute 'hostname'``. Not a connection error, so it escapes ``ignore_errors`` and Celery stops the worker
("Unrecoverable error"). The ``threads`` pool (synchronous loop) did not reach it. Here a channel whose connection
is gone raises Redis's own ``ConnectionError`` instead, which kombu ignores while closing, and the consumer reconnects.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from queue import Empty
from typing import TYPE_CHECKING, Any

import redis
from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem, virtual
from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads
from kombu.utils.objects import cached_property

if TYPE_CHECKING:
    from kombu import Connection

logger = logging.getLogger(__name__)

TRANSPORT_ALIAS = "portalfs"
REDIS_TRANSPORT_ALIAS = "portalredis"  # named in the log lines as the broker's scheme ("Connected to portalredis://…")
STAGING, CLAIMED, BAD = ".staging", ".claimed", ".bad"
LOCK_NAME = "lock"


def fsync_dir(path: Path | str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(staging: Path, target: Path, data: bytes) -> None:
    """``data`` appears at ``target`` whole or not at all, and is on disk when this returns."""
    temporary = staging / f"{uuid.uuid4().hex}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(temporary, target)
    fsync_dir(target.parent)


class Channel(filesystem.Channel):
    """Atomic publish, claim-until-ack consume, recovery of what dead consumers held."""

    if TYPE_CHECKING:
        # The stock transport's own helper, which kombu-stubs leave out: the table file of ``exchange``.
        def _exchange_file(self, exchange: str) -> Path: ...

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._claims: dict[str, Path] = {}
        self._noack_queues: set[str] = set()
        self._claim_dir: Path | None = None
        self._claim_lock: int | None = None
        self._next_recovery = 0.0

    # --- folders ----------------------------------------------------------------------------------------------
    @cached_property
    def inbox(self) -> Path:
        return Path(self.data_folder_in)

    @cached_property
    def outbox(self) -> Path:
        return Path(self.data_folder_out)

    def _folder(self, parent: Path, name: str) -> Path:
        folder = parent / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @cached_property
    def recovery_interval(self) -> float:
        return float(self.transport_options.get("recovery_interval", 10.0))

    # --- publish ----------------------------------------------------------------------------------------------
    # _put, _get and get_table keep the stock filesystem transport's signatures, which kombu-stubs declare with an
    # override ignore too: the stubs' virtual base has other shapes than kombu's filesystem transport defines.
    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]
        # Same name shape as the stock transport (``<time>_<uuid>.<queue>.msg``), zero-padded so names sort by time.
        name = f"{time.time_ns():020d}_{uuid.uuid4()}.{queue}.msg"
        try:
            write_durably(self._folder(self.outbox, STAGING), self.outbox / name, str_to_bytes(dumps(payload)))
        except OSError as exc:
            raise ChannelError(f"Cannot add message {name!r} to {self.outbox}") from exc

    # --- consume ----------------------------------------------------------------------------------------------
    def basic_consume(
        self, queue: str, no_ack: bool, callback: Callable[..., Any] | None, consumer_tag: str | None, **kwargs: Any
    ) -> str:
        if no_ack:
            self._noack_queues.add(queue)
        return super().basic_consume(queue, no_ack, callback, consumer_tag, **kwargs)

    def basic_get(self, queue: str, no_ack: bool = False, **kwargs: Any) -> virtual.Message | None:
        message = super().basic_get(queue, no_ack=no_ack, **kwargs)
        if message is not None and no_ack:
            self._settle(message.delivery_tag)
        return message

    def _get(self, queue: str) -> dict[str, Any]:  # type: ignore[override]  # see _put
        if time.monotonic() >= self._next_recovery:
            self._next_recovery = time.monotonic() + self.recovery_interval
            self.recover_orphans()
        wanted = f"{queue}.msg"
        for name in sorted(os.listdir(self.inbox)):
            if name.partition(".")[2] != wanted:
                continue
            claimed = self._own_claim_dir() / name
            try:
                os.rename(self.inbox / name, claimed)
            except FileNotFoundError:
                continue  # another consumer claimed it first
            payload = self._read(claimed)
            if payload is None:
                continue
            tag = payload["properties"]["delivery_tag"]
            self._claims[tag] = claimed
            if queue in self._noack_queues:
                self._settle(tag)
            return payload
        raise Empty()

    def _read(self, claimed: Path) -> dict[str, Any] | None:
        try:
            payload = loads(bytes_to_str(claimed.read_bytes()))
            if not isinstance(payload["properties"]["delivery_tag"], str):
                raise TypeError("delivery_tag")
        except (ValueError, TypeError, KeyError) as exc:
            bad = self._folder(self.inbox, BAD) / claimed.name
            os.rename(claimed, bad)
            logger.error("broker file=%s error=%s moved to %s: not a message", claimed.name, type(exc).__name__, bad)
            return None
        return payload

    def basic_ack(self, delivery_tag: str, multiple: bool = False) -> None:
        super().basic_ack(delivery_tag, multiple=multiple)
        self._settle(delivery_tag)

    def _restore(self, message: virtual.Message) -> None:
        """Back into the queue (a reject with requeue, or unacked at shutdown): the new copy first, then the claim."""
        super()._restore(message)
        self._settle(message.delivery_tag)

    def _settle(self, delivery_tag: str | None) -> None:
        if delivery_tag is None:  # kombu-stubs allow a message without a tag; kombu never delivers one
            return
        claimed = self._claims.pop(delivery_tag, None)
        if claimed is not None:
            with contextlib.suppress(FileNotFoundError):
                claimed.unlink()

    def basic_reject(self, delivery_tag: str, requeue: bool = False) -> None:
        super().basic_reject(delivery_tag, requeue=requeue)
        self._settle(delivery_tag)  # without requeue a rejected message is dropped, as on every broker

    # --- claim folders and their recovery ---------------------------------------------------------------------
    def _own_claim_dir(self) -> Path:
        """Made under ``.staging`` with its lock held, then renamed in: a recoverer never sees it unlocked."""
        if self._claim_dir is None:
            claims = self._folder(self.inbox, CLAIMED)
            name = f"{os.getpid()}-{uuid.uuid4().hex}"
            building = self._folder(self.inbox, STAGING) / name
            building.mkdir()
            fd = os.open(building / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.rename(building, claims / name)
            self._claim_dir, self._claim_lock = claims / name, fd
        return self._claim_dir

    def recover_orphans(self) -> int:
        """Put back into the queue every message held by a claim folder whose owner is gone; returns how many."""
        claims = self.inbox / CLAIMED
        if not claims.is_dir():
            return 0
        restored = 0
        for folder in claims.iterdir():
            if folder != self._claim_dir:
                restored += self._recover(folder)
        if restored:
            fsync_dir(self.inbox)
            logger.warning("broker restored=%d messages held by consumers that died", restored)
        return restored

    def _recover(self, folder: Path) -> int:
        try:
            fd = os.open(folder / LOCK_NAME, os.O_RDWR)
        except (FileNotFoundError, NotADirectoryError):
            return 0  # recovered by someone else meanwhile
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # its owner is alive
            names = [name for name in os.listdir(folder) if name != LOCK_NAME]
            for name in names:
                os.rename(folder / name, self.inbox / name)
            os.unlink(folder / LOCK_NAME)
            os.rmdir(folder)
            return len(names)
        except FileNotFoundError:
            return 0
        finally:
            os.close(fd)

    def close(self) -> None:
        super().close()  # restores what is still unacked into the queue
        if self._claim_dir is not None and not self._claims:
            with contextlib.suppress(OSError):
                os.unlink(self._claim_dir / LOCK_NAME)
                os.rmdir(self._claim_dir)
        if self._claim_lock is not None:
            os.close(self._claim_lock)
            self._claim_dir = self._claim_lock = None

    # --- exchange tables --------------------------------------------------------------------------------------
    def get_table(self, exchange: str) -> list[filesystem.exchange_queue_t]:  # type: ignore[override]  # see _put
        try:
            data = self._exchange_file(exchange).read_bytes()
        except FileNotFoundError:
            return []
        return [filesystem.exchange_queue_t(*entry) for entry in loads(bytes_to_str(data))]

    @contextlib.contextmanager
    def _table_lock(self, exchange: str) -> Iterator[Path]:
        file = self._exchange_file(exchange)
        self.control_folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(file.with_name(f".{file.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield file
        finally:
            os.close(fd)

    def _write_table(self, file: Path, table: Iterable[filesystem.exchange_queue_t]) -> None:
        write_durably(file.parent, file, str_to_bytes(dumps(list(table))))

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str | None, queue: str) -> None:
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with self._table_lock(exchange) as file:
            table = self.get_table(exchange)
            if entry not in table:
                self._write_table(file, [entry, *table])

    def _delete(
        self, queue: str, exchange: str, routing_key: str, pattern: str | None, *args: Any, **kwargs: Any
    ) -> None:
        virtual.Channel._delete(self, queue, exchange, routing_key, pattern, *args, **kwargs)
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with self._table_lock(exchange) as file:
            table = self.get_table(exchange)
            if entry in table:
                self._write_table(file, [item for item in table if item != entry])


class Transport(filesystem.Transport):
    Channel = Channel
    driver_name = TRANSPORT_ALIAS
    #: The in-process record of declared bindings, one per control folder: the stock transport keeps one for the
    #: whole process, so after a binding in one folder it skips the same binding in another (and drops messages).
    states: dict[str, virtual.BrokerState] = {}

    def __init__(self, client: Connection, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        options = client.transport_options or {}  # a Connection always has a dict; kombu-stubs allow None
        folder = str(Path(options.get("control_folder", "control")).resolve())
        self.state = self.states.setdefault(folder, virtual.BrokerState())


class RedisChannel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection is None or self.connection.client is None:
            raise redis.exceptions.ConnectionError("the broker connection of this channel is closed")
        return super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]  # private kombu API, not in the stubs


class RedisTransport(kombu_redis.Transport):
    Channel = RedisChannel


TRANSPORT_ALIASES.setdefault(TRANSPORT_ALIAS, "portal.kernel.broker:Transport")
TRANSPORT_ALIASES.setdefault(REDIS_TRANSPORT_ALIAS, "portal.kernel.broker:RedisTransport")
