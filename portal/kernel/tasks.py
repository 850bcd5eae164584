from __future__ import annotations

from typing import TYPE_CHECKING

from celery import Task, shared_task, signals

from portal.kernel import adminexport, jobs, services

if TYPE_CHECKING:
    from celery.worker.consumer import Consumer


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

    Sent to a queue this worker consumes, so that a worker on dedicated queues can still announce itself.
    """
    queues = list(sender.app.amqp.queues.consume_from) if sender is not None else []
    if queues:
        heartbeat.apply_async(queue=queues[0])
    else:
        heartbeat.apply_async()


@shared_task(ignore_result=False)
def noop() -> None:
    """Does nothing: the benchmarks measure the worker pool's own throughput with it."""
