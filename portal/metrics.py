"""``GET /metrics``: the Prometheus exposition of every process of this machine (``portal.kernel.metrics``: what is
counted where) plus what is read at scrape time from the same functions as ``/readyz`` and the fleet dashboard
(``portal.fleet``): each readiness check, the last worker heartbeat, queue depth per queue, the oldest due Conax
request. So the three never disagree.

Access: with ``METRICS_TOKEN`` set, only ``Authorization: Bearer <token>`` (compared in constant time; 401
otherwise); without it, open in the embedded default and refused (403) in production.

``MetricsMiddleware`` times the device activation dialect and counts its answers by outcome, read from the answer
the dialect gives (so the activation code carries no instrumentation).
"""

from __future__ import annotations

import glob
import hmac
import logging
import os
import re
import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from conax import selectors as conax_selectors
from portal import fleet, health
from portal.kernel import metrics
from provisioning.api.activation import REFUSALS
from webhooks import selectors as webhook_selectors

log = logging.getLogger(__name__)
ACTIVATE_PATH = "/provision/activate"
# The dialect's answers (provisioning/api/activation.py) → outcome label; 409 answers differ by their text.
_BY_TEXT = {(status, text): outcome.lower() for outcome, (status, text) in REFUSALS.items()}
_BY_STATUS = {200: "activated", 400: "bad_request", 405: "bad_request", 429: "rate_limited", 503: "unavailable"}


def activation_outcome(response: HttpResponseBase) -> str:
    status = response.status_code
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    body = getattr(response, "content", b"").decode("utf-8", "replace")
    return _BY_TEXT.get((status, body), "error")


class MetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path != ACTIVATE_PATH:
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        metrics.activation_observed(outcome=activation_outcome(response), seconds=time.perf_counter() - started)
        return response


class ScrapeTimeCollector:
    """What the answering process reads now; never stored in the per-process files. A part that cannot be read
    (the database down) is left out of this scrape, logged, and never fails the rest."""

    def collect(self) -> Iterable[Metric]:
        for part in (self._checks, self._workers, self._oldest_due, self._webhook_outbox):
            try:
                yield from part()
            except Exception as exc:
                log.warning("metrics part not read", extra={"part": part.__name__, "error": type(exc).__name__})

    def _checks(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("portal_check_up", "Readiness checks of /readyz (1 ok, 0 failing)", labels=["check"])
        broker_up = False
        for check in fleet.checks():
            if check.result == "not configured":
                continue
            up.add_metric([check.name], 1.0 if check.result == "ok" else 0.0)
            broker_up = broker_up or (check.name == "broker" and check.result == "ok")
        yield up
        if broker_up:
            depth = GaugeMetricFamily("portal_queue_depth", "Messages waiting in each Celery queue", labels=["queue"])
            for queue in fleet.queue_depths():
                if queue.depth is not None:
                    depth.add_metric([queue.name], queue.depth)
            yield depth

    def _workers(self) -> Iterable[Metric]:
        workers = health.worker_status()
        seen = GaugeMetricFamily("portal_workers_seen", "Celery workers that ever sent a heartbeat")
        seen.add_metric([], workers["workers_seen"])
        yield seen
        if "last_heartbeat_age_s" in workers:
            age = GaugeMetricFamily("portal_worker_heartbeat_age_seconds", "Age of the newest worker heartbeat")
            age.add_metric([], workers["last_heartbeat_age_s"])
            yield age

    def _oldest_due(self) -> Iterable[Metric]:
        now = timezone.now()
        oldest = conax_selectors.request_oldest_due_at(now=now)
        due = GaugeMetricFamily(
            "portal_cas_oldest_due_request_age_seconds", "How long the longest-waiting due Conax request has waited"
        )
        due.add_metric([], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
        yield due

    def _webhook_outbox(self) -> Iterable[Metric]:
        count, oldest = webhook_selectors.deliveries_pending()
        pending = GaugeMetricFamily("portal_webhook_pending", "Webhook deliveries waiting to be sent (the outbox)")
        pending.add_metric([], count)
        yield pending
        age = GaugeMetricFamily(
            "portal_webhook_oldest_pending_age_seconds", "How long the oldest unsent webhook delivery has waited"
        )
        age.add_metric([], max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0)
        yield age


_LIVE_FILE = re.compile(r"^gauge_live\w+?_(\d+)\.db$")


def _forget_dead_processes(path: str) -> None:
    """A process killed without saying so (SIGKILL, OOM) leaves its open-connection gauge behind: drop it."""
    pids = {
        int(m[1])
        for f in glob.glob(os.path.join(path, "gauge_live*_*.db"))
        if (m := _LIVE_FILE.match(os.path.basename(f)))
    }
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, path)
        except PermissionError:  # alive, someone else's
            pass


def exposition() -> bytes:
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    _forget_dead_processes(path)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)
    registry.register(ScrapeTimeCollector())
    return generate_latest(registry)


def _authorised(request: HttpRequest) -> bool | None:
    """True: let in; False: wrong or missing token (401); None: metrics are off here (403)."""
    token = settings.METRICS_TOKEN
    if not token:
        return None if settings.PRODUCTION else True
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    allowed = _authorised(request)
    if allowed is None:
        return HttpResponse("metrics are off: set METRICS_TOKEN\n", status=403, content_type="text/plain")
    if not allowed:
        response = HttpResponse("bearer token required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
