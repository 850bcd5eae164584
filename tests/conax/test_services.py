"""conax.services: what holds when creations race."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction

from conax import services
from conax.choices import RequestType
from conax.models import ProvisioningRequest
from tests.conax.factories import SmartcardFactory


def _sequence(draft: services.Draft) -> int | None:
    request = services.request_create(draft=draft, actor=services.Actor(None), options=services.Options())
    return request.sequence_number


def _sequence_in_a_thread(draft: services.Draft) -> int | None:
    try:
        return _sequence(draft)
    finally:
        connection.close()  # the thread's own connection


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a row lock (SQLite's IMMEDIATE transactions serialise)")
@pytest.mark.django_db(transaction=True)
def test_a_creation_waits_for_the_smartcards_lock_and_then_takes_the_next_sequence():
    draft = services.card_query(type=RequestType.GET_ACTIVE_SUBSCRIPTIONS, smartcard=SmartcardFactory())
    _sequence(draft)
    pool = ThreadPoolExecutor(1)

    with transaction.atomic():  # a creation whose transaction is still open holds the card's row
        first = _sequence(draft)
        racing = pool.submit(_sequence_in_a_thread, draft)
        time.sleep(0.5)
        waited = not racing.done()
    second = racing.result(timeout=10)
    pool.shutdown()

    assert waited and (first, second) == (2, 3)
    assert sorted(ProvisioningRequest.objects.values_list("sequence_number", flat=True)) == [1, 2, 3]
