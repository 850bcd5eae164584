"""Thin tasks: load by id, call a service. Commands go to the ``devices`` queue."""

from celery import shared_task

from portal.kernel import queues
from provisioning import services


@shared_task(ignore_result=True, acks_late=True, queue=queues.DEVICES)
def run_commands(ids: list[int]) -> dict[int, str]:
    """The unit of work: a batch of commands (up to COMMAND_BATCH_SIZE ids), claimed, sent and recorded together."""
    return services.commands_run(ids=ids)


@shared_task(ignore_result=True, acks_late=True, queue=queues.DEVICES)
def run_command(command_id: int) -> str | None:
    """One command: what messages queued before batches carry (still carried out)."""
    return services.command_run(command_id=command_id)


@shared_task(ignore_result=True)
def commands_sweep() -> int:
    return services.commands_sweep()
