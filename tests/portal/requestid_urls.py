"""A test-only URLconf: a view that queues a task on the broker the test names (tests/portal/test_request_ids.py)."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.urls import path

from portal.celery import app as celery_app
from portal.kernel.tasks import heartbeat

log = logging.getLogger("tests.requestid")


def queue_heartbeat(request: HttpRequest) -> HttpResponse:
    log.info("queueing a heartbeat")
    with celery_app.connection_for_write(request.GET["broker"]) as conn:
        heartbeat.apply_async(connection=conn, queue=request.GET["queue"])
    return HttpResponse("queued")


urlpatterns = [path("queue-heartbeat", queue_heartbeat)]
