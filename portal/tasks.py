from celery import shared_task, signals

from portal import services


@shared_task(bind=True, ignore_result=True)
def heartbeat(self) -> None:
    services.heartbeat_record(hostname=self.request.hostname or "unknown")


@shared_task(ignore_result=True)
def tokens_purge() -> int:
    return services.tokens_purge()


@signals.worker_ready.connect
def _announce(sender=None, **kwargs) -> None:
    """A worker shows up in /readyz as soon as it starts, not only at the first scheduled heartbeat."""
    heartbeat.delay()
