"""Thin tasks: no payload or secret in a message (a delivery id at most), a service call."""

from celery import shared_task

from webhooks import services


@shared_task(ignore_result=True, acks_late=True)
def deliver_batch() -> dict[str, int]:
    """The unit of work: whatever is due in the outbox, up to WEBHOOK_BATCH_SIZE (services.deliveries_send_batch)."""
    return services.deliveries_send_batch()


@shared_task(ignore_result=True, acks_late=True)
def deliver(delivery_id: int) -> str | None:
    """One delivery (messages queued before batches existed)."""
    return services.delivery_send(delivery_id=delivery_id)


@shared_task(ignore_result=True)
def deliveries_sweep() -> int:
    return services.deliveries_sweep()
