from __future__ import annotations

from collections import Counter

import pytest
from django.contrib.auth import get_user_model

from devices.models import Device
from portal.demo import DEMO_USERS, demo_load

pytestmark = pytest.mark.django_db


def test_demo_data_has_vendors_models_serials_in_every_state_and_users():
    counts = demo_load()

    assert counts == {"vendors": 2, "devices": 360, "created": 360}
    states = Counter(Device.objects.values_list("state", flat=True))
    assert states == {"notactivated": 144, "activated": 108, "expired": 36, "disabled": 36, "notadded": 36}
    assert Device.objects.values("model").distinct().count() == 3
    for spec in DEMO_USERS:
        user = get_user_model().objects.get(username=spec.username)
        assert user.check_password(spec.password)
        assert user.is_staff is spec.is_staff
        assert list(user.groups.values_list("name", flat=True)) == [spec.group]
    assert Device.objects.filter(owner__username="alice").count() == 18


def test_demo_load_is_idempotent():
    demo_load()

    assert demo_load() == {"vendors": 2, "devices": 360, "created": 0}
