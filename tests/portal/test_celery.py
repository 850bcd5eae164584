"""A real Celery worker process on the real Redis broker, writing to the real PostgreSQL test database."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
import redis

from portal.celery import app as celery_app
from portal.kernel.models import WorkerHeartbeat
from portal.kernel.tasks import heartbeat
from tests.conftest import REPO, clean_env, subprocess_database_url
from tests.waiting import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def broker_url(redis_url) -> str:
    return redis_url.rsplit("/", 1)[0] + "/14"


def named_worker(var_dir, broker_url: str, queues: str, name: str) -> subprocess.Popen:
    env = clean_env(PORTAL_VAR_DIR=str(var_dir), DATABASE_URL=subprocess_database_url(), CELERY_BROKER_URL=broker_url)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "-Q",
            queues,
            "-n",
            name,
            "-c",
            "1",
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "INFO",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture
def worker(tmp_path, broker_url):
    """A worker on its own Redis database and queue, stopped by pid at the end."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    name = f"{queue}@pytest"
    proc = named_worker(tmp_path, broker_url, queue, name)
    yield queue, name, proc
    proc.kill()
    proc.wait(timeout=10)
    redis.Redis.from_url(broker_url).flushdb()


def test_worker_consumes_from_redis_and_writes_to_postgres(worker, broker_url):
    queue, name, proc = worker
    # The worker announces itself with a heartbeat as soon as it is ready (portal.kernel.tasks._announce).
    first = wait_for(lambda: WorkerHeartbeat.objects.filter(hostname=name).first(), timeout=60, interval=0.2)

    with celery_app.connection_for_write(broker_url) as conn:
        heartbeat.apply_async(connection=conn, queue=queue)

    later = wait_for(
        lambda: WorkerHeartbeat.objects.filter(hostname=name, seen_at__gt=first.seen_at).first(),
        timeout=60,
        interval=0.2,
    )
    assert later.seen_at > first.seen_at
    assert proc.poll() is None


def test_worker_on_the_embedded_broker_runs_tasks_from_other_processes_and_acks_them(tmp_path):
    # given a worker started as `make run` starts it: no broker variable, so the embedded portalfs:// broker
    name = f"embedded-{uuid.uuid4().hex[:8]}@pytest"
    env = clean_env(PORTAL_VAR_DIR=str(tmp_path), DATABASE_URL=subprocess_database_url())
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "-n", name, "-c", "2", "--loglevel", "WARNING"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = wait_for(lambda: WorkerHeartbeat.objects.filter(hostname=name).first(), timeout=60, interval=0.2)
        # when three other processes publish a task each, at once
        publish = (
            "import django, portal.celery; django.setup(); from portal.kernel.tasks import heartbeat; heartbeat.delay()"
        )
        publishers = [subprocess.Popen([sys.executable, "-c", publish], cwd=REPO, env=env) for _ in range(3)]
        assert [p.wait(timeout=60) for p in publishers] == [0, 0, 0]

        # then the worker ran them, and acknowledged each (nothing left claimed or queued)
        wait_for(
            lambda: WorkerHeartbeat.objects.filter(hostname=name, seen_at__gt=first.seen_at).exists(),
            timeout=60,
            interval=0.2,
        )
        queue = tmp_path / "broker" / "queue"
        wait_for(
            lambda: not list(queue.glob("*.msg")) and not list(queue.glob(".claimed/*/*.msg")), timeout=30, interval=0.2
        )
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_workers_sharing_a_queue_are_each_seen_as_they_start(tmp_path, broker_url):
    # given a worker on a queue, idle and waiting on it (as the express worker waits on express)
    shared = f"test-{uuid.uuid4().hex[:8]}"
    first_name, second_name = f"express-{shared}@pytest", f"regular-{shared}@pytest"
    first = named_worker(tmp_path / "first", broker_url, shared, first_name)
    second = None
    try:
        wait_for(lambda: WorkerHeartbeat.objects.filter(hostname=first_name).exists(), timeout=60, interval=0.2)

        # when a second worker starts on that queue and one of its own (the regular worker: express,regular)
        second = named_worker(tmp_path / "second", broker_url, f"{shared},{shared}-own", second_name)

        # then it is seen under its own name, with no beat running (an announcement sent as a task to the shared queue
        # was taken by the waiting worker, and the second stayed unseen)
        wait_for(lambda: WorkerHeartbeat.objects.filter(hostname=second_name).exists(), timeout=60, interval=0.2)
        assert first.poll() is None and second.poll() is None
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.kill()
                proc.wait(timeout=10)
        redis.Redis.from_url(broker_url).flushdb()
