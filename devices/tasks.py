from celery import shared_task

from devices import services


@shared_task(ignore_result=True)
def expire_windows() -> int:
    return services.devices_expire_windows()
