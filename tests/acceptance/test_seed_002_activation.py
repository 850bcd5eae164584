"""Seed 002 (Exosite provisioning), replayed: the request exactly as the document writes it, and its four codes."""

from __future__ import annotations

import re

import pytest

from devices import services
from devices.models import Device
from tests.factories import DeviceFactory, DeviceModelFactory

pytestmark = pytest.mark.django_db

# The document's request: POST /provision/activate, Content-Type: application/x-www-form-urlencoded; charset=utf-8,
# body vendor=<vendor>&model=<model>&sn=<sn>.
HEADERS = {"content_type": "application/x-www-form-urlencoded; charset=utf-8", "HTTP_HOST": "m2.exosite.com"}


def activate(client, vendor: str, model: str, sn: str):
    return client.generic("POST", "/provision/activate", f"vendor={vendor}&model={model}&sn={sn}", **HEADERS)


@pytest.fixture
def model():
    return DeviceModelFactory(vendor__name="myvendor", name="mymodel")


def test_200_request_was_accepted_and_the_body_has_the_cik(client, model, settings):
    settings.ALLOWED_HOSTS = ["m2.exosite.com"]
    services.device_enable(device=DeviceFactory(model=model, serial_number="000001"))

    response = activate(client, "myvendor", "mymodel", "000001")

    assert response.status_code == 200
    assert re.fullmatch(rb"[0-9a-f]{40}", response.content)


def test_404_the_serial_number_is_not_in_the_platform(client, model, settings):
    settings.ALLOWED_HOSTS = ["m2.exosite.com"]

    assert activate(client, "myvendor", "mymodel", "000002").status_code == 404


def test_403_invalid_vendor_model_pair(client, model, settings):
    settings.ALLOWED_HOSTS = ["m2.exosite.com"]
    DeviceModelFactory(vendor__name="othervendor", name="othermodel")

    assert activate(client, "myvendor", "othermodel", "000001").status_code == 403


@pytest.mark.parametrize("state", ["not-added", "already-activated"])
def test_409_not_yet_added_or_already_through_activation(client, model, settings, state):
    settings.ALLOWED_HOSTS = ["m2.exosite.com"]
    device = DeviceFactory(model=model, serial_number="000003")
    if state == "already-activated":
        services.device_enable(device=device)
        assert activate(client, "myvendor", "mymodel", "000003").status_code == 200

    assert activate(client, "myvendor", "mymodel", "000003").status_code == 409
    assert Device.objects.get(pk=device.pk).state == ("activated" if state == "already-activated" else "notadded")
