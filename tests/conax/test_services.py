"""conax.services: what holds when creations race."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction
from django.db.models.signals import post_save

from conax import services
from conax.choices import Priority, RequestType
from conax.crypto import pin_decrypt
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


pytestmark = pytest.mark.django_db


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


def _values(request: ProvisioningRequest) -> dict:
    row = ProvisioningRequest.objects.values().get(pk=request.pk)
    row["parameters_set"] = [{k: v for k, v in entry.items() if k != "id"} for entry in row["parameters_set"]]
    row["ca_pin_encrypted"] = pin_decrypt(row["ca_pin_encrypted"])  # Fernet: a fresh IV each time
    row["enqueued_at"] = row["enqueued_at"] is not None
    return {k: v for k, v in row.items() if k not in ("number", "uid", "sequence_number") and not k.endswith("_date")}


def test_the_requests_insert_in_sql_writes_the_row_the_orm_writes_and_a_save_receiver_gets_the_orms_save():
    card = SmartcardFactory()
    draft = services.pin_reset(subscription=card.subscription, smartcard=card, pin="1234")
    options = services.Options(priority=Priority.EXPRESS, process_immediately=True)
    saved: list[ProvisioningRequest] = []

    def receiver(sender, instance, created, **kwargs):
        saved.append(instance)

    written = services.request_create(draft=draft, actor=services.Actor(None), options=options)
    post_save.connect(receiver, sender=ProvisioningRequest)
    try:
        by_orm = services.request_create(draft=draft, actor=services.Actor(None), options=options)
    finally:
        post_save.disconnect(receiver, sender=ProvisioningRequest)

    assert saved == [by_orm]  # with a receiver, the ORM's save (and its signal)
    assert written.pk is not None and not written._state.adding
    assert (written.sequence_number, by_orm.sequence_number) == (1, 2)
    stored = ProvisioningRequest.objects.get(pk=written.pk)
    assert (stored.uid, stored.created_date, stored.enqueued_at) == (
        written.uid,
        written.created_date,
        written.enqueued_at,
    )
    assert stored.scheduled_date <= stored.created_date <= stored.updated_date
    assert pin_decrypt(stored.ca_pin_encrypted) == "1234"
    assert _values(written) == _values(by_orm)
