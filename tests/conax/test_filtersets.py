"""The provisioning-request FilterSet (one test module per FilterSet). Conax has no staff REST list: the CRM list and
the selector use it, so each filter is checked through ``selectors.request_list``, and each invalid value is a
ValidationError (the REST error handler's 400 body), never a filter silently left out."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from conax import selectors
from tests.conax.factories import ProvisioningRequestFactory
from tests.conax.support import world_load
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db
NO_CHOICE = "Select a valid choice. That choice is not one of the available choices."


@pytest.fixture
def requests_():
    StaffFactory(username="staff")
    world = world_load()
    later = timezone.now().replace(year=2030)
    pending = ProvisioningRequestFactory(
        type="ADD_SUBSCRIPTIONS", scheduled_date=later, smartcard=world.card, service=world.service
    )
    rejected = ProvisioningRequestFactory(
        type="CANCEL_SUBSCRIPTIONS",
        smartcard=world.pin_card,
        service=world.service,
        life_cycle_state="REJECTED",
        priority="EXPRESS",
        executed_date=timezone.now(),
    )
    return {"pending": pending, "rejected": rejected, "card": world.card}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"type": "ADD_SUBSCRIPTIONS"}, ["pending"]),
        ({"life_cycle_state": "REJECTED"}, ["rejected"]),
        ({"priority": "EXPRESS"}, ["rejected"]),
        ({"smartcard_id": "card"}, ["pending"]),
        ({"scheduled_after": "2029-01-01T00:00:00Z"}, ["pending"]),
        ({"created_before": "2000-01-02T00:00:00Z"}, []),
    ],
    ids=["type", "life_cycle_state", "priority", "smartcard_id", "scheduled_after", "created_before"],
)
def test_the_request_filterset_narrows(requests_, query, expected):
    query = {name: requests_[value].pk if name == "smartcard_id" else value for name, value in query.items()}
    mine = {requests_["pending"].pk, requests_["rejected"].pk}

    found = [r.pk for r in selectors.request_list(filters=query) if r.pk in mine]

    assert found == [requests_[name].pk for name in expected]


@pytest.mark.parametrize(
    ("name", "value", "messages"),
    [
        ("type", "REBOOT", ["Select a valid choice. REBOOT is not one of the available choices."]),
        ("priority", "SOON", ["Select a valid choice. SOON is not one of the available choices."]),
        ("smartcard_id", "f" * 32, [NO_CHOICE]),
        ("subscription_id", "0" * 32, [NO_CHOICE]),
        ("created_after", "2014-02-30T09:00:00", None),
        ("scheduled_before", "tomorrow", None),
    ],
    ids=[
        "type-bad-choice",
        "priority-bad-choice",
        "smartcard_id-unknown",
        "subscription_id-unknown",
        "created_after-impossible-date",
        "scheduled_before-not-a-date",
    ],
)
def test_an_invalid_filter_value_is_an_error_never_ignored(requests_, name, value, messages):
    with pytest.raises(ValidationError) as raised:
        list(selectors.request_list(filters={name: value}))

    assert list(raised.value.message_dict) == [name]
    assert messages is None or raised.value.message_dict[name] == messages
