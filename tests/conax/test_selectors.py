"""Who may see a Conax request (``conax.selectors.request_visible``): support staff every one; anyone else those about
the boxes of the devices they may see (``devices.selectors.device_visibility``), those boxes' smartcards, or their
own subscriptions' smartcards."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from conax import selectors
from conax.models import Pairing, ProvisioningRequest, SetTopBox, Smartcard, Subscription
from tests.factories import CustomerFactory, DeviceFactory, StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """Carol's device is a CAS box paired with a card; Dave owned one and was deactivated; Mallory has a
    subscription of her own with an unpaired card; one request is about nothing anyone owns."""
    carol, dave, mallory = CustomerFactory(), CustomerFactory(is_active=False), CustomerFactory()
    pairing = Pairing.objects.create()
    box = SetTopBox.objects.create(
        serial_number="STB-C", ca_id="CA-STB-C", device=DeviceFactory(owner=carol), pairing=pairing
    )
    paired_card = Smartcard.objects.create(serial_number="SC-C", ca_id="CA-SC-C", pairing=pairing)
    daves_box = SetTopBox.objects.create(serial_number="STB-D", ca_id="CA-STB-D", device=DeviceFactory(owner=dave))
    subscription = Subscription.objects.create(number="SUB-M", customer=mallory)
    own_card = Smartcard.objects.create(serial_number="SC-M", ca_id="CA-SC-M", subscription=subscription)
    now = timezone.now()
    requests = {
        name: ProvisioningRequest.objects.create(type="ADD_SUBSCRIPTIONS", scheduled_date=now, **about).pk
        for name, about in (
            ("carols-box", {"set_top_box": box}),
            ("carols-card", {"smartcard": paired_card}),
            ("daves-box", {"set_top_box": daves_box}),
            ("mallorys-card", {"smartcard": own_card}),
            ("nobodys", {}),
        )
    }
    users = {"carol": carol, "dave": dave, "mallory": mallory, "sam": StaffFactory(), "anonymous": AnonymousUser()}
    return users, requests


WHO_SEES = [
    pytest.param("carol", {"carols-box", "carols-card"}, id="owner-of-the-box"),
    pytest.param("mallory", {"mallorys-card"}, id="subscriber-of-the-card"),
    pytest.param("dave", set(), id="deactivated-owner"),
    pytest.param("anonymous", set(), id="anonymous"),
    pytest.param("sam", {"carols-box", "carols-card", "daves-box", "mallorys-card", "nobodys"}, id="support-staff"),
]


@pytest.mark.parametrize(("who", "sees"), WHO_SEES)
def test_who_sees_which_request(world, who, sees):
    users, requests = world

    visible = {name for name, number in requests.items() if selectors.request_visible(user=users[who], number=number)}

    assert visible == sees


def test_an_unknown_number_is_none_even_for_staff(world):
    users, requests = world

    assert selectors.request_visible(user=users["sam"], number=max(requests.values()) + 1) is None
