"""Thin tasks: take request numbers, call the pipeline. Queues: ``express`` / ``regular`` by priority."""

from celery import shared_task

from conax import pipeline


@shared_task(bind=True, ignore_result=True, acks_late=True)
def process_requests(self, numbers: list[int]) -> dict[int, str]:
    """The unit of work: up to CAS_BATCH_SIZE requests of one priority (pipeline.requests_process)."""
    return pipeline.requests_process(numbers=numbers, process_id=self.request.id)


@shared_task(bind=True, ignore_result=True, acks_late=True)
def process_request(self, number: int) -> str | None:
    """One request (messages queued before batches existed)."""
    return pipeline.request_process(number=number, process_id=self.request.id)


@shared_task(ignore_result=True)
def requests_dispatch() -> int:
    return pipeline.requests_dispatch()
