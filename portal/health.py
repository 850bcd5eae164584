"""Liveness and readiness. /readyz names every part that failed, with 503."""

from __future__ import annotations

from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portal.celery import app as celery_app
from portal.kernel.models import WorkerHeartbeat

CHECK_TIMEOUT = 2.0


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_redis() -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=CHECK_TIMEOUT, socket_connect_timeout=CHECK_TIMEOUT
    )
    try:
        client.ping()
    finally:
        client.close()


def _check_broker() -> None:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT)


def _checks() -> dict[str, Callable[[], None] | None]:
    return {
        "database": _check_database,
        "redis": _check_redis if settings.REDIS_URL else None,
        "broker": _check_broker,
    }


def readiness() -> dict[str, str]:
    """What /readyz checks, each part ``ok``, ``not configured`` or ``error: <ExceptionName>``: the endpoint and the
    admin's dashboard read the same answers."""
    results: dict[str, str] = {}
    for name, check in _checks().items():
        if check is None:
            results[name] = "not configured"
            continue
        try:
            check()
        except Exception as exc:  # any failure of a check is that part being down, named
            results[name] = f"error: {type(exc).__name__}"
        else:
            results[name] = "ok"
    return results


def worker_status() -> dict:
    """Informational: the web tier is ready without workers, but operators want to see them."""
    latest = WorkerHeartbeat.objects.order_by("-seen_at").first()
    if latest is None:
        return {"workers_seen": 0}
    age = (timezone.now() - latest.seen_at).total_seconds()
    return {"workers_seen": WorkerHeartbeat.objects.count(), "last_heartbeat_age_s": round(age, 1)}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    results = readiness()
    failing = [name for name, result in results.items() if result.startswith("error")]
    body: dict = {"status": "unavailable" if failing else "ok", "checks": results, "failing": failing}
    if "database" not in failing:
        body["workers"] = worker_status()
    return JsonResponse(body, status=503 if failing else 200)
