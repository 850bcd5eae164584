"""Webhooks in real Celery worker processes on Redis, to a real receiving server, on PostgreSQL.

- A receiver that is down for a while gets every event once it is back (retries with backoff, then the sweep).
- A worker SIGKILLed in the middle of sending loses nothing: what it held stays PENDING in the outbox and is sent
  again (a receiver may see an event twice; it deduplicates by event id).
The beat scheduler is not run; the test sends its task (``webhooks.tasks.deliveries_sweep``) every second instead,
and the tasks the test process queues after each commit go to its own broker, not the worker's: every delivery
below is found by the sweep, from the outbox alone.
"""

from __future__ import annotations

import contextlib

import pytest
import redis
from django.conf import settings
from kombu.exceptions import OperationalError

from devices import services as device_services
from portal.celery import app as celery_app
from tests.conftest import free_port, kill_worker, start_worker
from tests.factories import DeviceFactory
from tests.waiting import wait_for
from tests.webhooks.support import Receiver, endpoint
from webhooks.choices import DeliveryState
from webhooks.models import Delivery

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
# A 1 s timeout: a killed worker's claim runs out in 8 s (services.lease).
FAST = {
    "WEBHOOK_TIMEOUT": "1",
    "WEBHOOK_RETRY_BASE_SECONDS": "0.2",
    "WEBHOOK_RETRY_MAX_SECONDS": "1",
    "WEBHOOK_MAX_ATTEMPTS": "1000",
}


def worker_env() -> dict[str, str]:
    """Fast retries, and this process's SECRET_KEY: the endpoints' secrets are encrypted under it."""
    return {**FAST, "SECRET_KEY": settings.SECRET_KEY}


@pytest.fixture
def broker(redis_url):
    url = redis_url.rsplit("/", 1)[0] + "/12"
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()


def sweep(broker: str) -> None:
    with contextlib.suppress(OperationalError, redis.ConnectionError), celery_app.connection_for_write(broker) as conn:
        celery_app.send_task("webhooks.tasks.deliveries_sweep", queue="regular", connection=conn)


def wait_sweeping(broker: str, predicate, timeout: float) -> None:
    """Until ``predicate()``, asking for a sweep every second (as beat would)."""

    def done() -> bool:
        if predicate():
            return True
        sweep(broker)
        return False

    wait_for(done, timeout=timeout, interval=1, message=lambda: f"{_states()}")


def wait_delivered(broker: str, total: int, timeout: float) -> None:
    wait_sweeping(broker, lambda: Delivery.objects.filter(state=DeliveryState.DELIVERED).count() >= total, timeout)


def _states() -> dict[str, int]:
    found: dict[str, int] = {}
    for state in Delivery.objects.values_list("state", flat=True):
        found[state] = found.get(state, 0) + 1
    return found


def disable_devices(count: int) -> list[int]:
    devices = [device_services.device_enable(device=DeviceFactory()) for _ in range(count)]
    for device in devices:
        device_services.device_disable(device=device)
    return [d.pk for d in devices]


def test_a_receiver_down_for_a_while_gets_everything_once_it_is_back(tmp_path, broker):
    port = free_port()
    endpoint(f"http://127.0.0.1:{port}/hook")
    disable_devices(10)
    worker = start_worker(tmp_path, broker, "regular", concurrency=2, **worker_env())
    receiver = Receiver()
    try:
        wait_sweeping(broker, lambda: Delivery.objects.filter(attempts__gte=2).count() == 10, 60)  # tried, refused
        receiver.start(port)  # back
        wait_delivered(broker, 10, timeout=90)
    finally:
        kill_worker(worker)
        receiver.stop()

    assert _states() == {"DELIVERED": 10}
    assert sorted(set(receiver.event_ids())) == sorted(
        str(e) for e in Delivery.objects.values_list("event_id", flat=True)
    )
    assert all(d.attempts >= 2 for d in Delivery.objects.all())


def test_a_worker_killed_mid_send_loses_nothing(tmp_path, broker):
    receiver = Receiver(mode="slow", delay=1.0).start()
    endpoint(receiver.url)
    ids = disable_devices(30)
    # Batches of 5 (a lease of one delivery's length): the 30 take several batches, so the kill lands while some are
    # unsent or unrecorded (one batch of 30 on 25 threads could be sent and recorded before the kill). A second per
    # POST: the 30 take about 3 s on the two children, longer than the wait's one-second polls need to see the first
    # five arrive (at 0.3 s they were sometimes all recorded before the kill: CI).
    slow_batch = {**worker_env(), "WEBHOOK_BATCH_SIZE": "5", "WEBHOOK_BATCH_THREADS": "5"}
    worker = start_worker(tmp_path, broker, "regular", concurrency=2, **slow_batch)
    try:
        wait_sweeping(broker, lambda: len(receiver.received) >= 5, 60)
        kill_worker(worker)  # mid-send: a receiver may have an event whose delivery was never recorded
        left = Delivery.objects.filter(state=DeliveryState.PENDING).count()
        worker = start_worker(tmp_path, broker, "regular", concurrency=2, **worker_env())
        wait_delivered(broker, 30, timeout=120)
    finally:
        kill_worker(worker)
        receiver.stop()

    assert left > 0
    assert _states() == {"DELIVERED": 30}
    expected = {str(e) for e in Delivery.objects.values_list("event_id", flat=True)}
    assert set(receiver.event_ids()) == expected  # every event arrived; a repeat is the receiver's to drop
    assert {r.event["data"]["device_id"] for r in receiver.received} == set(ids)
