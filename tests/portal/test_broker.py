"""The embedded broker (kernel/broker.py, ``portalfs://``) with real producer and consumer processes on real folders.

Every test runs against ``portalfs`` by default; ``PORTAL_TEST_BROKER_TRANSPORT=stock`` runs the same tests
against kombu's stock filesystem transport: it fails the hammer (JSONDecodeError out of ``_get``, messages lost),
the killed consumer (the message is gone) and the file that is not a message (the consumer raises).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from kombu import Connection

from bench.broker import EXCHANGE, QUEUE, candidate_url, hammer
from portal.kernel import broker
from tests.conftest import REPO

pytestmark = pytest.mark.slow
TRANSPORT = os.environ.get("PORTAL_TEST_BROKER_TRANSPORT", "portalfs")


def run_python(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


PUBLISH = """
    import json, sys, time
    from kombu import Connection
    from bench.broker import EXCHANGE, QUEUE
    import portal.kernel.broker
    url, options, body = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    with Connection(url, transport_options=options) as conn:
        conn.Producer(serializer="json").publish(body, exchange=EXCHANGE, routing_key="bench", declare=[QUEUE])
        print("published", flush=True)
        time.sleep(60)
"""

RECEIVE_NO_ACK = """
    import json, sys, time
    from kombu import Connection
    from bench.broker import QUEUE
    import portal.kernel.broker
    url, options = sys.argv[1], json.loads(sys.argv[2])
    with Connection(url, transport_options=options) as conn:
        def hold(body, message):
            print(json.dumps(body), flush=True)  # received, never acknowledged
            time.sleep(60)
        with conn.Consumer(QUEUE, callbacks=[hold], accept=["json"]) as consumer:
            consumer.qos(prefetch_count=1)
            conn.drain_events(timeout=30)
"""


@pytest.fixture
def folder(tmp_path) -> tuple[str, dict]:
    return candidate_url(TRANSPORT, tmp_path)


def receive(url: str, options: dict, timeout: float = 10) -> list[dict]:
    """Every message now in the queue, each acknowledged."""
    bodies: list[dict] = []

    def take(body, message):
        bodies.append(body)
        message.ack()

    with Connection(url, transport_options=options) as conn, conn.Consumer(QUEUE, callbacks=[take], accept=["json"]):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                conn.drain_events(timeout=1)
            except TimeoutError:
                break
    return bodies


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def test_concurrent_producers_and_consumers_lose_nothing_and_deliver_once():
    # given 4 producer processes publishing 250 messages each in bursts, and 3 consumer processes
    outcome = hammer(TRANSPORT, producers=4, consumers=3, messages=250, timeout=90)

    # then every message was delivered exactly once, and no consumer ever failed
    assert (outcome.errors, outcome.lost, outcome.duplicates) == ({}, 0, 0)
    assert outcome.published == 1000


def test_a_message_survives_its_publisher_killed_right_after_publish_returns(folder):
    url, options = folder
    import json

    publisher = run_python(PUBLISH, url, json.dumps(options), json.dumps({"p": 1, "seq": 7}))
    assert publisher.stdout.readline() == "published\n"
    kill(publisher)

    assert receive(url, options) == [{"p": 1, "seq": 7}]


def test_a_consumer_killed_before_its_ack_gives_the_message_back(folder):
    import json

    url, options = folder
    with Connection(url, transport_options=options) as conn:
        conn.Producer(serializer="json").publish(
            {"p": 2, "seq": 1}, exchange=EXCHANGE, routing_key="bench", declare=[QUEUE]
        )
    holder = run_python(RECEIVE_NO_ACK, url, json.dumps(options))
    assert json.loads(holder.stdout.readline()) == {"p": 2, "seq": 1}
    assert receive(url, options, timeout=2) == []  # held by the live consumer: not delivered twice

    kill(holder)  # a crash: its channel never closes

    assert receive(url, options) == [{"p": 2, "seq": 1}]
    claims = Path(options["data_folder_in"]) / broker.CLAIMED
    assert [p for p in claims.glob("*/*.msg")] == []


def test_a_file_that_is_not_a_message_is_set_aside_and_consuming_goes_on(folder, caplog):
    url, options = folder
    queue = Path(options["data_folder_in"])
    (queue / f"{0:020d}_broken.bench.msg").write_bytes(b"")  # what the stock transport's race leaves behind
    with Connection(url, transport_options=options) as conn:
        conn.Producer(serializer="json").publish(
            {"p": 3, "seq": 1}, exchange=EXCHANGE, routing_key="bench", declare=[QUEUE]
        )

    assert receive(url, options) == [{"p": 3, "seq": 1}]
    assert [p.name for p in (queue / broker.BAD).iterdir()] == [f"{0:020d}_broken.bench.msg"]
    assert "not a message" in caplog.text


BIND = """
    import json, sys
    from kombu import Connection, Exchange, Queue
    import portal.kernel.broker
    url, options, name = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    with Connection(url, transport_options=options) as conn:
        for n in range(20):
            queue = Queue(f"{name}-{n}", Exchange("shared", "direct"), routing_key=f"{name}-{n}")
            queue(conn.default_channel).declare()
"""


def test_queues_bound_at_once_by_many_processes_all_stay_bound(folder):
    import json

    url, options = folder
    binders = [run_python(BIND, url, json.dumps(options), f"q{n}") for n in range(6)]
    for proc in binders:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err

    with Connection(url, transport_options=options) as conn:
        table = conn.default_channel.get_table("shared")
    assert sorted(entry.queue for entry in table) == sorted(f"q{n}-{m}" for n in range(6) for m in range(20))
