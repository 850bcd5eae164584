"""The batch, the unit of work of webhook sending (``services.deliveries_send_batch``), against real receiving servers
on loopback and PostgreSQL: one claim and one record for many deliveries, the POSTs concurrent in between.

- only each (endpoint, object)'s oldest pending delivery is claimable: the order per object holds within a batch
  (one per object at most) and across batches, also with two senders batching at once;
- a delivery whose claim was taken over while it was being sent records nothing; the rest of its batch records;
- one slow receiver does not hold the others' outcomes past the timeout.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from tests.webhooks.support import Receiver, endpoint
from webhooks import services
from webhooks.choices import DeliveryState
from webhooks.models import Delivery

pytestmark = pytest.mark.postgres


def emit(*keys: str) -> list[int]:
    """One event per key, in this order (``device:1``, ``device:1``, ``device:2`` …), for every endpoint."""
    events = [(key, {"object": key, "n": n}) for n, key in enumerate(keys)]
    return services.emit(event_type="device.disabled", events=events)


def received_order(receiver: Receiver) -> dict[str, list[int]]:
    order: dict[str, list[int]] = {}
    for got in receiver.received:
        order.setdefault(got.event["data"]["object"], []).append(got.event["data"]["n"])
    return order


@pytest.mark.django_db
def test_a_batch_holds_each_objects_oldest_delivery_and_the_next_ones_follow_in_later_batches(receiver):
    endpoint(receiver.url, "device.disabled")
    emit("device:1", "device:1", "device:2", "device:1", "device:2", "device:3")

    batches = [services.deliveries_send_batch() for _ in range(4)]

    assert batches == [{"DELIVERED": 3}, {"DELIVERED": 2}, {"DELIVERED": 1}, {}]
    assert received_order(receiver) == {"device:1": [0, 1, 3], "device:2": [2, 4], "device:3": [5]}
    assert set(Delivery.objects.values_list("state", "attempts", "claimed_until")) == {("DELIVERED", 1, None)}


@pytest.mark.django_db
def test_a_batch_claims_and_records_in_a_fixed_number_of_queries(receiver, django_assert_max_num_queries):
    endpoint(receiver.url, "device.disabled")
    emit(*[f"device:{n}" for n in range(40)])

    with django_assert_max_num_queries(8):  # claim: SELECT … FOR UPDATE SKIP LOCKED + UPDATE; record: SELECT + UPDATE
        counts = services.deliveries_send_batch()

    assert counts == {"DELIVERED": 40}
    assert len(receiver.received) == 40


@pytest.mark.django_db
def test_a_failed_head_keeps_its_objects_later_deliveries_back_until_it_is_delivered(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0
    down = Receiver(mode="fail").start()
    try:
        endpoint(down.url, "device.disabled")
        emit("device:1", "device:1")
        first = services.deliveries_send_batch()
        second = services.deliveries_send_batch()  # the head is due again at once; its follower still waits
        down.mode = "ok"
        third = [services.deliveries_send_batch() for _ in range(2)]
    finally:
        down.stop()

    assert (first, second, third) == ({"PENDING": 1}, {"PENDING": 1}, [{"DELIVERED": 1}, {"DELIVERED": 1}])
    assert [r.event["data"]["n"] for r in down.received] == [0, 0, 0, 1]


@pytest.mark.django_db(transaction=True)
def test_two_senders_batching_at_once_keep_each_objects_order_and_send_each_delivery_once(settings):
    settings.WEBHOOK_BATCH_SIZE = 7
    slowish = Receiver(mode="slow", delay=0.01).start()
    endpoint(slowish.url, "device.disabled")
    keys = [f"device:{n % 6}" for n in range(60)]
    emit(*keys)
    results: list[dict] = []

    def sender() -> None:
        try:
            while Delivery.objects.filter(state=DeliveryState.PENDING).exists():
                results.append(services.deliveries_send_batch())
        finally:
            connection.close()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        slowish.stop()

    expected = {f"device:{k}": [n for n in range(60) if n % 6 == k] for k in range(6)}
    assert received_order(slowish) == expected  # in order, and each exactly once
    assert Delivery.objects.filter(state=DeliveryState.DELIVERED, attempts=1).count() == 60
    assert all(sum(r.values()) <= 6 for r in results)  # one per object at most in any batch


@pytest.mark.django_db(transaction=True)
def test_a_delivery_whose_claim_was_lost_records_nothing_and_the_rest_of_its_batch_records():
    import psycopg

    from tests.conftest import subprocess_database_url

    slow, fast = Receiver(mode="slow", delay=1.0).start(), Receiver().start()
    try:
        endpoint(slow.url, "device.disabled")
        endpoint(fast.url, "device.disabled")
        emit("device:1")
        lost, kept = Delivery.objects.order_by("pk")
        outcome: list[dict] = []
        sender = threading.Thread(target=lambda: (outcome.append(services.deliveries_send_batch()), connection.close()))
        sender.start()
        with psycopg.connect(subprocess_database_url(), autocommit=True) as other:
            sql = "SELECT claimed_until FROM webhooks_delivery WHERE id = %s"
            for _ in range(100):
                if other.execute(sql, [lost.pk]).fetchone()[0] is not None:
                    break
                time.sleep(0.02)
            assert not slow.received
            # Another sender takes it over (as after its lease ran out) while this batch is still sending it.
            other.execute(
                "UPDATE webhooks_delivery SET claimed_until = now() + interval '1 hour' WHERE id = %s", [lost.pk]
            )
        sender.join(timeout=10)
    finally:
        slow.stop()
        fast.stop()

    assert outcome == [{"lost": 1, "DELIVERED": 1}]
    lost.refresh_from_db()
    kept.refresh_from_db()
    assert (lost.state, lost.attempts, lost.last_status_code) == ("PENDING", 0, None)
    assert lost.claimed_until is not None  # the other sender's claim, untouched
    assert (kept.state, kept.attempts, kept.last_status_code) == ("DELIVERED", 1, 204)


@pytest.mark.django_db
def test_one_slow_receiver_does_not_hold_the_others_past_the_timeout(settings):
    settings.WEBHOOK_TIMEOUT = 0.5
    slow, fast = Receiver(mode="slow", delay=3.0).start(), Receiver().start()
    try:
        endpoint(slow.url, "device.disabled")
        endpoint(fast.url, "device.disabled")
        emit("device:1", "device:2", "device:3")
        started = time.monotonic()
        counts = services.deliveries_send_batch()
        took = time.monotonic() - started
    finally:
        slow.stop()
        fast.stop()

    assert counts == {"DELIVERED": 3, "PENDING": 3}
    assert took < 2.0  # the timeout (0.5 s) and the wait for it (+0.5 s), not the slow receiver's 3 s
    assert len(fast.received) == 3
    slow_rows = Delivery.objects.filter(endpoint__url=slow.url)
    assert set(slow_rows.values_list("state", "last_error", "attempts")) == {("PENDING", "timed out", 1)}
