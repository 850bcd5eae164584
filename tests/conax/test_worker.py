"""The pipeline in real Celery worker processes on Redis, against the CAS simulator over HTTP, on PostgreSQL.

- A worker SIGKILLed in the middle of 1 000 requests, then started again: every request ends COMPLETED or
  REJECTED, and the head-end carried out each idempotency key exactly once (no duplicate send, no lost one).
- Redis restarted mid-run (it keeps nothing on disk: every queued message is gone): nothing is lost either.
The beat scheduler is not run; the test sends its task (``conax.tasks.requests_dispatch``) every second instead.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess

import pytest
import redis
from kombu.exceptions import OperationalError

from conax import services
from conax.choices import LifeCycleState
from conax.models import ProvisioningRequest
from conax.simulator import CasServerThread
from portal.celery import app as celery_app
from tests.conax.factories import ServiceFactory, SmartcardFactory, SubscriptionFactory
from tests.conftest import free_port, kill_worker, start_worker
from tests.waiting import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
GRACE = "3"  # seconds before the dispatcher queues again a request whose message may be lost


def make_requests(count: int, cards: int = 100) -> list[int]:
    service = ServiceFactory(code="BULK", service_ca_id="BULK-CA")
    subscription = SubscriptionFactory(number="S-BULK", services=[service])
    smartcards = SmartcardFactory.create_batch(cards, subscription=subscription)
    numbers = []
    for n in range(count):
        draft = services.subscription_change(
            type="ADD_SUBSCRIPTIONS", subscription=subscription, service=service, smartcard=smartcards[n % cards]
        )
        priority = "EXPRESS" if n % 10 == 0 else "REGULAR"
        numbers.append(
            services.request_create(
                draft=draft, actor=services.Actor(None), options=services.Options(priority=priority)
            ).pk
        )
    return numbers


def counts() -> dict[str, int]:
    found: dict[str, int] = {}
    for state in ProvisioningRequest.objects.values_list("life_cycle_state", flat=True):
        found[state] = found.get(state, 0) + 1
    return found


def dispatch(broker: str) -> None:
    with celery_app.connection_for_write(broker) as conn:
        celery_app.send_task("conax.tasks.requests_dispatch", queue="regular", connection=conn)


def wait(predicate, broker: str | None, timeout: float, what: str) -> None:
    """Until ``predicate()``, asking for a dispatch round every second when a broker is given."""

    def done() -> bool:
        if predicate():
            return True
        if broker:
            with contextlib.suppress(OperationalError, redis.ConnectionError):  # Redis restarting: next round
                dispatch(broker)
        return False

    wait_for(done, timeout=timeout, interval=1, message=lambda: f"{what}: {counts()}")


def finished(total: int):
    return lambda: counts().get("COMPLETED", 0) + counts().get("REJECTED", 0) >= total


@pytest.fixture
def broker(redis_url):
    url = redis_url.rsplit("/", 1)[0] + "/13"
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()


def test_a_worker_killed_mid_batch_loses_nothing_and_sends_nothing_twice(tmp_path, broker):
    numbers = make_requests(1000)
    with CasServerThread(auto_register=True, latency_ms=5) as head_end:
        env = {"CAS_GATEWAY_URL": head_end.url, "CAS_DISPATCH_GRACE_SECONDS": GRACE, "CAS_TIMEOUT": "2"}
        worker = start_worker(tmp_path, broker, "express,regular", **env)
        try:
            dispatch(broker)
            wait(lambda: counts().get("COMPLETED", 0) >= 150, None, 60, "the worker did not start")
            kill_worker(worker)  # mid-batch: requests claimed, sent, or held in its prefetch are left behind
            left = counts().get("PENDING", 0)
            worker = start_worker(tmp_path, broker, "express,regular", **env)
            wait(finished(len(numbers)), broker, 150, "requests lost")
        finally:
            kill_worker(worker)
        stats, applied = head_end.simulator.stats(), head_end.simulator.applied_counts()

    assert left > 0
    assert counts() == {"COMPLETED": 1000}
    uids = set(ProvisioningRequest.objects.values_list("uid", flat=True))
    assert set(applied) == uids and set(applied.values()) == {1}
    assert (stats["sends"], stats["duplicates"], stats["applied_more_than_once"]) == (1000, 0, [])


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_a_redis_restart_loses_no_request(tmp_path):
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]

    def start_redis() -> subprocess.Popen:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait(lambda: _answers(port), None, 10, "redis did not start")
        return proc

    broker = f"redis://127.0.0.1:{port}/0"
    numbers = make_requests(300, cards=30)
    own_redis = start_redis()
    with CasServerThread(auto_register=True, latency_ms=20) as head_end:
        env = {"CAS_GATEWAY_URL": head_end.url, "CAS_DISPATCH_GRACE_SECONDS": GRACE, "CAS_TIMEOUT": "2"}
        worker = start_worker(tmp_path, broker, "express,regular", concurrency=2, **env)
        try:
            dispatch(broker)  # queues all 300; the worker works through them
            wait(lambda: counts().get("COMPLETED", 0) >= 30, None, 60, "the worker did not start")
            own_redis.kill()  # every queued message is lost with it
            own_redis.wait(timeout=10)
            own_redis = start_redis()
            wait(finished(len(numbers)), broker, 150, "requests lost")
        finally:
            kill_worker(worker)
            own_redis.kill()
            own_redis.wait(timeout=10)
        applied = head_end.simulator.applied_counts()

    assert counts() == {LifeCycleState.COMPLETED: 300}
    assert len(applied) == 300 and set(applied.values()) == {1}


def _answers(port: int) -> bool:
    try:
        return redis.Redis(port=port, socket_connect_timeout=0.2).ping()
    except redis.ConnectionError:
        return False
