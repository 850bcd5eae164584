"""/healthz and /readyz against the real database, Redis and broker, and with each of them unreachable."""

from __future__ import annotations

import pytest
from django.utils import timezone

from portal.celery import app as celery_app
from portal.kernel.models import WorkerHeartbeat
from tests.conftest import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def dead_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture
def broker(request):
    """Point the Celery app at another broker for one test."""
    original = celery_app.conf.broker_url

    def use(url: str) -> None:
        celery_app.conf.broker_url = url

    yield use
    celery_app.conf.broker_url = original


def test_healthz_is_always_ok(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_embedded_default(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "not configured", "broker": "ok"},
        "failing": [],
        "workers": {"workers_seen": 0},
    }


@pytest.mark.redis
def test_readyz_with_real_redis_as_cache_and_broker(client, settings, redis_url, broker):
    settings.REDIS_URL = redis_url
    broker(redis_url)
    WorkerHeartbeat.objects.create(hostname="celery@a", seen_at=timezone.now())

    response = client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["checks"] == {"database": "ok", "redis": "ok", "broker": "ok"}
    assert body["workers"]["workers_seen"] == 1
    assert 0 <= body["workers"]["last_heartbeat_age_s"] < 5


def test_readyz_names_redis_when_it_is_down(client, settings, dead_url):
    settings.REDIS_URL = dead_url

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failing"] == ["redis"]
    assert response.json()["checks"]["redis"] == "error: ConnectionError"


def test_readyz_names_the_broker_when_it_is_down(client, broker, dead_url):
    broker(dead_url)

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failing"] == ["broker"]
    assert response.json()["checks"]["database"] == "ok"


@pytest.mark.django_db(transaction=True)  # the announcement closes its connection, as a worker's main process must
def test_a_starting_worker_is_recorded_under_its_own_name_and_starts_even_without_the_database(monkeypatch, caplog):
    from types import SimpleNamespace

    from django.db import OperationalError

    from portal.kernel import tasks

    tasks._announce(sender=SimpleNamespace(hostname="regular@box-7"))
    assert list(WorkerHeartbeat.objects.values_list("hostname", flat=True)) == ["regular@box-7"]

    def database_away(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(tasks.services, "heartbeat_record", database_away)
    tasks._announce(sender=SimpleNamespace(hostname="express@box-7"))  # does not raise: the worker goes on starting
    assert "worker=express@box-7 announcement not recorded: OperationalError" in caplog.text
