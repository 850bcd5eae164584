from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from devices.models import Device
from devices.tasks import expire_windows
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db


def test_periodic_task_persists_expired_windows_only():
    now = timezone.now()
    late = DeviceFactory(state="notactivated", activation_expires_at=now - timedelta(seconds=1))
    open_ = DeviceFactory(state="notactivated", activation_expires_at=now + timedelta(hours=1))

    assert expire_windows.apply().get() == 1

    assert Device.objects.get(pk=late.pk).state == "expired"
    assert Device.objects.get(pk=open_.pk).state == "notactivated"


def test_the_sweep_is_on_the_beat_schedule():
    entry = settings.CELERY_BEAT_SCHEDULE["devices-expire-windows"]

    assert (entry["task"], entry["schedule"]) == ("devices.tasks.expire_windows", 60.0)
