"""Thin tasks: take a request number, call the pipeline. Queues: ``express`` / ``regular`` by priority."""

from celery import shared_task

from conax import pipeline


@shared_task(bind=True, ignore_result=True, acks_late=True)
def process_request(self, number: int) -> str | None:
    return pipeline.request_process(number=number, process_id=self.request.id)


@shared_task(ignore_result=True)
def requests_dispatch() -> int:
    return pipeline.requests_dispatch()
