"""Thin tasks: a delivery id in (never a payload or a secret), a service call."""

from celery import shared_task

from webhooks import services


@shared_task(ignore_result=True, acks_late=True)
def deliver(delivery_id: int) -> str | None:
    return services.delivery_send(delivery_id=delivery_id)


@shared_task(ignore_result=True)
def deliveries_sweep() -> int:
    return services.deliveries_sweep()
