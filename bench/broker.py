#!/usr/bin/env python
"""The embedded broker under concurrent producer and consumer processes: kombu's stock filesystem transport against
the kernel broker's ``portalfs://`` (and kombu's SQLAlchemy transport on a SQLite file when SQLAlchemy is installed).

    .venv/bin/python bench/broker.py [--producers 4] [--consumers 2] [--messages 2000] [--burst 5] [--rounds 1]
        [--candidates stock,portalfs,sqlite] [--timeout 120]

For each candidate, in a fresh temporary folder: ``--consumers`` consumer processes (prefetch 1, ack after the
message is recorded, as a Celery worker with ``acks_late``) and ``--producers`` producer processes, each publishing
``--messages`` messages through one direct exchange, ``--burst`` at a time with a short pause between bursts (as
beat sends several tasks at once). A consumer whose ``drain_events`` raises (a Celery worker would stop with
"Unrecoverable error") counts one error, reconnects and goes on. When no message has arrived for 3 s after the last
publish (or at ``--timeout``) the run stops and prints, per candidate: messages/s (published messages over the time
from the first publish to the last delivery), errors (their kinds), duplicates (deliveries beyond the first of a
message), lost (published, never delivered), and the ratio of messages/s against the stock transport measured in
the same run. Exits non-zero when ``portalfs`` shows an error, a duplicate or a lost message.
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kombu import Connection, Exchange, Queue

EXCHANGE = Exchange("bench", "direct", durable=True)
QUEUE = Queue("bench", EXCHANGE, routing_key="bench", durable=True)
POLL = 0.05


def candidate_url(name: str, folder: Path) -> tuple[str, dict]:
    """Broker URL and transport options of a candidate, everything under ``folder``."""
    if name == "sqlite":
        return f"sqla+sqlite:///{folder / 'broker.sqlite3'}", {}  # its options go to create_engine()
    queue_folder, control = folder / "queue", folder / "control"
    for sub in (queue_folder, control):
        sub.mkdir(parents=True, exist_ok=True)
    options = {
        "data_folder_in": str(queue_folder),
        "data_folder_out": str(queue_folder),
        "control_folder": str(control),
    }
    if name == "stock":
        return "filesystem://localhost//", options
    return "portalfs://localhost//", options


def connect(url: str, options: dict) -> Connection:
    import portal.kernel.broker  # noqa: F401 - registers portalfs://

    conn = Connection(url, transport_options=options)
    conn.transport.polling_interval = POLL  # the same for every candidate
    return conn


def produce(url: str, options: dict, producer: int, count: int, burst: int, start) -> None:
    with connect(url, options) as conn:
        publish = conn.Producer(serializer="json").publish
        start.wait()
        for seq in range(count):
            publish({"p": producer, "seq": seq}, exchange=EXCHANGE, routing_key="bench", declare=[QUEUE])
            if seq % burst == burst - 1:
                time.sleep(0.002)


def consume(url: str, options: dict, results, stop) -> None:
    """Records (producer, seq, time) of each delivery, then acks; an exception out of the transport is an error."""
    received: list[tuple[int, int, float]] = []
    errors: Counter[str] = Counter()

    def on_message(body, message) -> None:
        received.append((body["p"], body["seq"], time.monotonic()))
        message.ack()

    while not stop.is_set():
        try:
            with connect(url, options) as conn, conn.Consumer(QUEUE, callbacks=[on_message], accept=["json"]) as c:
                c.qos(prefetch_count=1)
                while not stop.is_set():
                    try:
                        conn.drain_events(timeout=0.5)
                    except TimeoutError:
                        continue
        except Exception as exc:  # the stock transport's failure is what is being counted
            errors[type(exc).__name__] += 1
    results.put((received, dict(errors)))


@dataclass
class Outcome:
    name: str
    published: int
    seconds: float
    errors: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    lost: int = 0

    @property
    def rate(self) -> float:
        return self.published / self.seconds if self.seconds else 0.0

    @property
    def clean(self) -> bool:
        return not self.errors and not self.duplicates and not self.lost


def hammer(name: str, producers: int, consumers: int, messages: int, burst: int = 5, timeout: float = 120) -> Outcome:
    """One candidate: real producer and consumer processes over a fresh folder; what was delivered, how often."""
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix=f"broker-{name}-") as tmp:
        url, options = candidate_url(name, Path(tmp))
        with connect(url, options) as conn:
            QUEUE(conn.default_channel).declare()
        results, stop, start = ctx.Queue(), ctx.Event(), ctx.Event()
        readers = [ctx.Process(target=consume, args=(url, options, results, stop)) for _ in range(consumers)]
        writers = [
            ctx.Process(target=produce, args=(url, options, p, messages, burst, start)) for p in range(producers)
        ]
        for proc in readers + writers:
            proc.start()
        time.sleep(1.0)  # every process connected
        began = time.monotonic()
        start.set()
        for proc in writers:
            proc.join(timeout)
        _wait_quiet(Path(tmp), name, began + timeout)
        stop.set()
        gathered = [results.get(timeout=30) for _ in readers]
        for proc in readers + writers:
            proc.join(10)
    return _outcome(name, producers * messages, began, gathered, producers, messages)


def _wait_quiet(folder: Path, name: str, deadline: float) -> None:
    """Until the queue stays empty (nothing left to deliver) for 3 s, or the deadline."""
    quiet_since = None
    while time.monotonic() < deadline:
        left = _left(folder, name)
        if left:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 3:
            return
        time.sleep(0.2)


def _left(folder: Path, name: str) -> int:
    if name == "sqlite":
        import sqlite3

        with sqlite3.connect(folder / "broker.sqlite3", timeout=30) as db:
            return db.execute("SELECT count(*) FROM kombu_message WHERE visible").fetchone()[0]
    queue = folder / "queue"
    claimed = [p for p in (queue / ".claimed").glob("*/*.msg")] if name == "portalfs" else []
    return sum(1 for p in queue.iterdir() if p.name.endswith(".bench.msg")) + len(claimed)


def _outcome(name, published, began, gathered, producers, messages) -> Outcome:
    seen: Counter[tuple[int, int]] = Counter()
    errors: Counter[str] = Counter()
    last = began
    for received, errs in gathered:
        errors.update(errs)
        for producer, seq, at in received:
            seen[(producer, seq)] += 1
            last = max(last, at)
    expected = {(p, s) for p in range(producers) for s in range(messages)}
    return Outcome(
        name=name,
        published=published,
        seconds=last - began,
        errors=dict(errors),
        duplicates=sum(n - 1 for n in seen.values()),
        lost=len(expected - set(seen)),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument("--messages", type=int, default=2000, help="per producer")
    parser.add_argument("--burst", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--candidates", default="stock,portalfs,sqlite")
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    names = args.candidates.split(",")
    if "sqlite" in names and importlib.util.find_spec("sqlalchemy") is None:
        print("sqlite: skipped (SQLAlchemy is not installed)")
        names.remove("sqlite")
    print(
        f"{args.producers} producers x {args.messages} messages, {args.consumers} consumers, bursts of "
        f"{args.burst}, {os.cpu_count()} cores"
    )
    outcomes: dict[str, list[Outcome]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name in names:  # interleaved rounds: the machine's load is shared alike
            outcomes[name].append(hammer(name, args.producers, args.consumers, args.messages, args.burst, args.timeout))
    base = sum(o.rate for o in outcomes.get("stock", [])) / max(len(outcomes.get("stock", [])), 1)
    print(f"{'transport':<10} {'msg/s':>8} {'vs stock':>8} {'errors':>7} {'dupes':>6} {'lost':>6}  error kinds")
    for name, runs in outcomes.items():
        for o in runs:
            ratio = f"{o.rate / base:.2f}" if base else "-"
            kinds = ", ".join(f"{k} x{v}" for k, v in o.errors.items())
            errors = sum(o.errors.values())
            print(f"{name:<10} {o.rate:8.0f} {ratio:>8} {errors:7d} {o.duplicates:6d} {o.lost:6d}  {kinds}")
    return 0 if all(o.clean for o in outcomes.get("portalfs", [])) else 1


if __name__ == "__main__":
    sys.exit(main())
