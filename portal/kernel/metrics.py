"""Prometheus metrics, counted in every process (gunicorn workers, uvicorn, Celery workers and their children) and
summed at the scrape: prometheus-client's multiprocess mode, one small memory-mapped file per process and metric
type in ``PROMETHEUS_MULTIPROC_DIR`` (the settings point it at ``var/metrics`` unless set; every process of one
machine must share it). The scrape (``portal.metrics``, the shell's ``/metrics``) adds what is read at scrape time
(queue depth, oldest due request).

Counted here, in as few places as possible (other code calls these functions, nothing else):
- activations by outcome and their latency: ``activation_observed`` (the shell's metrics middleware, from the
  activation dialect's answer);
- commands by kind and outcome with their duration: ``command_finished`` (``provisioning.services._record``);
- Conax requests by type and outcome with the time from due to terminal: ``cas_request_finished``
  (``conax.pipeline._after_record``);
- rate-limit refusals by limit: ``rate_limited`` (``portal.kernel.ratelimit.retry_after``);
- WebSocket connections open now: ``websocket_opened`` / ``websocket_closed`` (the live consumers).
Labels are small closed sets (outcomes, kinds, types, limit names): never a serial, an address or an id.
"""

from __future__ import annotations

import os
from datetime import datetime

from django.conf import settings
from django.utils import timezone

# prometheus-client chooses between its single- and multi-process value classes when it is first imported.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(settings.PROMETHEUS_MULTIPROC_DIR))

from prometheus_client import Counter, Gauge, Histogram

# Latency buckets: a device's activation answers in milliseconds; a box command or a Conax request in seconds.
FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SLOW = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)

ACTIVATIONS = Counter("portal_activations", "Device activation answers, by outcome", ["outcome"])
ACTIVATION_SECONDS = Histogram(
    "portal_activation_duration_seconds", "Time to answer POST /provision/activate", buckets=FAST
)
COMMANDS = Counter("portal_commands", "Set-top box commands finished, by kind and outcome", ["kind", "outcome"])
COMMAND_SECONDS = Histogram(
    "portal_command_duration_seconds", "Set-top box command, created to finished", ["kind"], buckets=SLOW
)
CAS_REQUESTS = Counter("portal_cas_requests", "Conax requests finished, by type and outcome", ["type", "outcome"])
CAS_REQUEST_SECONDS = Histogram(
    "portal_cas_request_pending_seconds", "Conax request, due (PENDING) to terminal", ["type"], buckets=SLOW
)
WEBHOOK_ATTEMPTS = Counter(
    "portal_webhook_attempts",
    "Webhook delivery attempts, by event type and outcome (delivered, retry, dead)",
    ["event_type", "outcome"],
)
WEBHOOK_SECONDS = Histogram(
    "portal_webhook_attempt_duration_seconds", "Time a receiver took to answer a webhook POST", buckets=FAST
)
RATE_LIMITED = Counter("portal_rate_limit_refusals", "Requests refused by a rate limit, by limit", ["limit"])
WEBSOCKETS = Gauge(
    "portal_websocket_connections", "WebSocket connections open now", ["path"], multiprocess_mode="livesum"
)


def activation_observed(*, outcome: str, seconds: float) -> None:
    ACTIVATIONS.labels(outcome=outcome).inc()
    ACTIVATION_SECONDS.observe(seconds)


def _since(start: datetime | None) -> float | None:
    if start is None:
        return None
    return max(0.0, (timezone.now() - start).total_seconds())


def command_finished(*, kind: str, outcome: str, created_at: datetime | None) -> None:
    COMMANDS.labels(kind=kind, outcome=outcome.lower()).inc()
    if (seconds := _since(created_at)) is not None:
        COMMAND_SECONDS.labels(kind=kind).observe(seconds)


def cas_request_finished(*, type: str, outcome: str, due_at: datetime | None) -> None:
    CAS_REQUESTS.labels(type=type, outcome=outcome.lower()).inc()
    if (seconds := _since(due_at)) is not None:
        CAS_REQUEST_SECONDS.labels(type=type).observe(seconds)


def webhook_attempted(*, event_type: str, outcome: str, seconds: float) -> None:
    WEBHOOK_ATTEMPTS.labels(event_type=event_type, outcome=outcome).inc()
    WEBHOOK_SECONDS.observe(seconds)


def rate_limited(*, limit: str) -> None:
    RATE_LIMITED.labels(limit=limit).inc()


def websocket_opened(path: str) -> None:
    WEBSOCKETS.labels(path=path).inc()


def websocket_closed(path: str) -> None:
    WEBSOCKETS.labels(path=path).dec()
