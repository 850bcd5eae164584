"""The Conax admin: request lists with their filters, and the "process now" and "retry rejected" actions."""

from __future__ import annotations

import pytest
from django.utils import timezone

from conax.models import ProvisioningRequest
from tests.conax.factories import ProvisioningRequestFactory
from tests.conax.support import world_load

pytestmark = pytest.mark.django_db
LIST = "/admin/conax/provisioningrequest/"


@pytest.fixture
def requests_(staff_user):
    world = world_load()
    later = timezone.now().replace(year=2099)
    pending = ProvisioningRequestFactory(
        type="ADD_SUBSCRIPTIONS", scheduled_date=later, smartcard=world.card, service=world.service
    )
    rejected = ProvisioningRequestFactory(
        type="CANCEL_SUBSCRIPTIONS",
        smartcard=world.pin_card,
        service=world.service,
        life_cycle_state="REJECTED",
        executed_date=timezone.now(),
        priority="EXPRESS",
        parameters_set=[{"service_ca_id": "P1test", "id": "A" * 32}, {"smartcard_ca_id": "sc20000010", "id": "B" * 32}],
    )
    return pending, rejected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"type__exact": "CANCEL_SUBSCRIPTIONS"}, ["rejected"]),
        ({"life_cycle_state__exact": "PENDING"}, ["pending"]),
        ({"priority__exact": "EXPRESS"}, ["rejected"]),
        ({"smartcard_ca_id": "stb01-3020-0005"}, ["pending"]),
        ({"subscription_number": "S60058"}, ["pending", "rejected"]),
        ({"q": "sc20000010"}, ["rejected"]),
    ],
)
def test_request_list_filters(client, staff_user, requests_, query, expected):
    client.force_login(staff_user)
    names = dict(zip(("pending", "rejected"), requests_, strict=True))

    html = client.get(LIST, query).content.decode()

    for name, request in names.items():
        link = f'href="/admin/conax/provisioningrequest/{request.pk}/change/'
        assert (link in html) == (name in expected), (name, query)


def test_process_now_and_retry_rejected_actions(client, staff_user, requests_, django_capture_on_commit_callbacks):
    pending, rejected = requests_
    client.force_login(staff_user)

    with django_capture_on_commit_callbacks() as callbacks:
        client.post(LIST, {"action": "process_now", "_selected_action": [pending.pk, rejected.pk]})
    client.post(LIST, {"action": "retry_rejected", "_selected_action": [pending.pk, rejected.pk]})

    pending.refresh_from_db()
    assert pending.scheduled_date <= timezone.now() and pending.process_name == "MANUAL"
    assert len(callbacks) == 1  # only the pending one was queued
    retry = ProvisioningRequest.objects.get(retry_of=rejected)
    assert (retry.type, retry.life_cycle_state, retry.priority) == ("CANCEL_SUBSCRIPTIONS", "PENDING", "EXPRESS")
    assert ProvisioningRequest.objects.count() == 3
