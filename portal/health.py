"""Liveness and readiness. /readyz names every part that failed, with 503."""

from __future__ import annotations

from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
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


# csrf_exempt: a POST is a 405 naming GET, not the CSRF check's 403 page (the views change nothing).
@csrf_exempt
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@csrf_exempt
@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    results = readiness()
    failing = [name for name, result in results.items() if result.startswith("error")]
    body: dict = {"status": "unavailable" if failing else "ok", "checks": results, "failing": failing}
    if "database" not in failing:
        body["workers"] = worker_status()
    return JsonResponse(body, status=503 if failing else 200)


# --- in the OpenAPI schema (a drf-spectacular post-processing hook; plain Django views, so not found by it) ----------

_CHECK = {"type": "string", "description": "`ok`, `not configured` or `error: <ExceptionName>`"}
_READY = {
    "type": "object",
    "required": ["status", "checks", "failing"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "unavailable"]},
        "checks": {
            "type": "object",
            "properties": {"database": _CHECK, "redis": _CHECK, "broker": _CHECK},
            "additionalProperties": _CHECK,
        },
        "failing": {"type": "array", "items": {"type": "string"}, "description": "the checks that failed"},
        "workers": {
            "type": "object",
            "description": "informational (the web tier is ready without workers); left out when the database is down",
            "properties": {
                "workers_seen": {"type": "integer", "minimum": 0},
                "last_heartbeat_age_s": {"type": "number", "minimum": 0},
            },
        },
    },
}
_NOT_GET = {
    "description": "Only GET is answered (an empty body); Allow names it.",
    "headers": {"Allow": {"schema": {"type": "string"}, "required": True, "description": "`GET`"}},
}


def _json(schema: dict, example: dict) -> dict:
    return {"application/json": {"schema": schema, "example": example}}


def schema_paths(result: dict, generator, request, public) -> dict:
    """/healthz and /readyz in the schema, as the views above answer them (docs/dialects.md#health-checks)."""
    ok = {"status": "ok", "checks": {"database": "ok", "redis": "ok", "broker": "ok"}, "failing": []}
    down = {"status": "unavailable", "checks": {"database": "error: OperationalError"}, "failing": ["database"]}
    live = {"type": "object", "required": ["status"], "properties": {"status": {"type": "string", "enum": ["ok"]}}}
    paths = result.setdefault("paths", {})
    paths["/healthz"] = {
        "get": {
            "operationId": "healthz",
            "summary": "Liveness: the process answers",
            "description": "200 while the process runs and answers; no dependency is checked. Never cached.",
            "security": [],
            "responses": {"200": {"description": "Alive.", "content": _json(live, {"status": "ok"})}, "405": _NOT_GET},
        }
    }
    paths["/readyz"] = {
        "get": {
            "operationId": "readyz",
            "summary": "Readiness: the database, Redis and the broker answer",
            "description": "Each part checked within 2 s; 503 names the parts that failed. Workers are informational. "
            "Never cached.",
            "security": [],
            "responses": {
                "200": {"description": "Ready.", "content": _json(_READY, {**ok, "workers": {"workers_seen": 1}})},
                "405": _NOT_GET,
                "503": {"description": "A part is down: `failing` names it.", "content": _json(_READY, down)},
            },
        }
    }
    return result
