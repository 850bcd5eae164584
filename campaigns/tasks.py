"""Thin tasks: the periodic tick (beat, ``CAMPAIGN_TICK_SECONDS``) and the step a start or resume asks for."""

from celery import shared_task

from campaigns import engine


@shared_task(ignore_result=True, acks_late=True)
def tick() -> int:
    return engine.tick()


@shared_task(ignore_result=True, acks_late=True)
def campaign_step(campaign_id: int) -> None:
    engine.step(campaign_id=campaign_id)
