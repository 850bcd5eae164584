from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from celery import Task, shared_task, signals
from django.db import DatabaseError, connections

from portal.kernel import adminexport, jobs, services

if TYPE_CHECKING:
    from celery.worker.consumer import Consumer

logger = logging.getLogger(__name__)


@shared_task(bind=True, ignore_result=True)
def heartbeat(self: Task) -> None:
    services.heartbeat_record(hostname=self.request.hostname or "unknown")


@shared_task(ignore_result=True)
def job_run(job_id: int) -> None:
    """A background job over many objects (``portal.kernel.jobs``); redelivered after a worker loss, it carries on
    from the job's committed cursor."""
    jobs.job_run(job_id=job_id)


@shared_task(ignore_result=True)
def export_run(job_id: int) -> None:
    """A list export too large for a request (``portal.kernel.adminexport``): the file, then the job finished."""
    adminexport.export_run(job_id=job_id)


@shared_task(ignore_result=True)
def exports_purge() -> int:
    return adminexport.exports_purge()


@shared_task(ignore_result=True)
def tokens_purge() -> int:
    return services.tokens_purge()


@signals.worker_ready.connect
def _announce(sender: Consumer | None = None, **kwargs: object) -> None:
    """A worker shows up in /readyz as soon as it starts, not only at the first scheduled heartbeat.

    Recorded here, in the worker's main process, under this worker's own name. A heartbeat task sent to one of its
    queues could be taken by another worker consuming the same queue (the express worker shares ``express`` with the
    regular one): that worker was then seen twice and this one not at all until beat's heartbeat, up to 30 s later.
    The connection is closed again, so that a pool child forked later inherits none.
    """
    hostname = getattr(sender, "hostname", None) or "unknown"
    try:
        services.heartbeat_record(hostname=hostname)
    except DatabaseError as exc:  # a worker starts even while the database is away; beat's heartbeat follows
        logger.warning("worker=%s announcement not recorded: %s", hostname, type(exc).__name__)
    finally:
        connections.close_all()


@shared_task(ignore_result=False)
def noop() -> None:
    """Does nothing: the benchmarks measure the worker pool's own throughput with it."""
