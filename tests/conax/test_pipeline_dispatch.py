"""How a due request reaches the broker: a ``process_immediately`` creation (or a staff "process now") marks its rows
queued in the very statement that writes them, and sends their numbers once the transaction commits, with no
statement of its own; a message lost on the way (never published, or lost by the broker) is sent again by the
periodic run once ``CAS_DISPATCH_GRACE_SECONDS`` have passed, EXPRESS and REGULAR still apart. The messages go
through the test run's real embedded broker (``tests/conax/test_pipeline_batch.py``'s ``broker``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from kombu import Connection

from conax import pipeline, services
from conax.models import ProvisioningRequest
from tests.conax import test_pipeline_batch as batch
from tests.conax.factories import ServiceFactory, SubscriptionFactory
from tests.conax.support import ADD

pytestmark = pytest.mark.django_db
NOTHING: dict[str, list] = {"express": [], "regular": [], "devices": []}
cards = batch.cards


@pytest.fixture
def broker():
    """The embedded broker, emptied; calling it takes the Conax messages off (``test_pipeline_batch.taken``)."""
    batch.taken()
    return batch.taken


@pytest.fixture
def catalog():
    service = ServiceFactory(code="GOLD", service_ca_id="GOLD-CA")
    return service, SubscriptionFactory(number="S-DISPATCH", services=[service])


def creation(card, service, *, immediately: bool, priority: str = "REGULAR") -> ProvisioningRequest:
    draft = services.subscription_change(
        type="ADD_SUBSCRIPTIONS", subscription=card.subscription, service=service, smartcard=card
    )
    options = services.Options(priority=priority, process_immediately=immediately)
    return services.request_create(draft=draft, actor=services.Actor(None), options=options)


def statements(queries: CaptureQueriesContext) -> list[str]:
    """The statements sent, without the savepoints of the test's own transaction."""
    return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]


def test_a_process_immediately_creation_is_marked_queued_by_its_insert_and_sent_after_the_commit(
    catalog, broker, django_capture_on_commit_callbacks
):
    later, now = cards(catalog, 2)
    with CaptureQueriesContext(connection) as unqueued:
        creation(later, catalog[0], immediately=False)

    with (
        CaptureQueriesContext(connection) as queued,  # the after-commit work included
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        transaction.atomic(),
    ):
        request = creation(now, catalog[0], immediately=True)
        marked = ProvisioningRequest.objects.get(pk=request.pk).enqueued_at  # in the creation's transaction
        assert broker() == NOTHING  # nothing is sent before the commit

    sql = statements(queued)
    # the draft's service check, the card's lock, its last sequence, the row; then the read above, and nothing more
    assert [statement.split()[0] for statement in sql] == ["SELECT", "SELECT", "SELECT", "INSERT", "SELECT"]
    assert len(sql) - 1 == len(statements(unqueued))  # being queued costs no statement (an UPDATE before)
    assert '"enqueued_at"' in sql[3] and marked is not None and marked == request.enqueued_at
    assert marked <= request.created_date
    assert len(callbacks) == 1
    assert broker() == {**NOTHING, "regular": [([request.pk], False)]}


def test_a_crm_creation_with_process_immediately_sends_as_many_statements_as_one_without(
    crm, broker, django_capture_on_commit_callbacks
):
    with CaptureQueriesContext(connection) as unqueued:
        assert crm.post("add_subscriptions", ADD)["status"]["code"] == "OK"
    with CaptureQueriesContext(connection) as queued, django_capture_on_commit_callbacks(execute=True):
        answer = crm.post("add_subscriptions", {**ADD, "process_immediately": 1, "priority": "EXPRESS"})

    number = int(answer["data"]["number"])
    assert answer["status"]["code"] == "OK"
    assert len(statements(queued)) == len(statements(unqueued))
    assert not [sql for sql in statements(queued) if sql.startswith("UPDATE")]
    assert ProvisioningRequest.objects.get(pk=number).enqueued_at is not None
    assert broker() == {**NOTHING, "express": [([number], False)]}


def test_a_scheduled_or_not_immediate_creation_is_not_marked_queued(
    catalog, broker, django_capture_on_commit_callbacks
):
    first, second = cards(catalog, 2)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        waiting = creation(first, catalog[0], immediately=False)
        draft = services.subscription_change(
            type="ADD_SUBSCRIPTIONS", subscription=second.subscription, service=catalog[0], smartcard=second
        )
        options = services.Options(process_immediately=True, start_date=timezone.now() + timedelta(hours=1))
        scheduled = services.request_create(draft=draft, actor=services.Actor(None), options=options)

    assert callbacks == []
    assert list(ProvisioningRequest.objects.filter(pk__in=[waiting.pk, scheduled.pk]).values_list("enqueued_at")) == [
        (None,),
        (None,),
    ]
    assert broker() == NOTHING


@pytest.mark.parametrize("published", [True, False], ids=["lost by the broker", "never published (process died)"])
def test_a_lost_message_is_sent_again_by_the_periodic_run_once_the_grace_has_passed(
    catalog, broker, settings, django_capture_on_commit_callbacks, published
):
    settings.CAS_DISPATCH_GRACE_SECONDS = 120
    first, second = cards(catalog, 2)
    with django_capture_on_commit_callbacks(execute=published):
        regular = creation(first, catalog[0], immediately=True)
        express = creation(second, catalog[0], immediately=True, priority="EXPRESS")
    sent = broker()  # taken off the broker: lost

    assert sent == (
        {"express": [([express.pk], False)], "regular": [([regular.pk], False)], "devices": []}
        if published
        else NOTHING
    )
    assert pipeline.requests_dispatch() == 0  # within the grace: its message may still be on its way
    assert broker() == NOTHING
    with time_machine.travel(timezone.now() + timedelta(seconds=121)):
        assert pipeline.requests_dispatch() == 2
    assert broker() == {"express": [([express.pk], False)], "regular": [([regular.pk], False)], "devices": []}


def test_process_now_marks_its_requests_queued_in_its_own_update(
    catalog, broker, staff_user, django_capture_on_commit_callbacks
):
    made = [creation(card, catalog[0], immediately=False) for card in cards(catalog, 3)]
    made[2].priority = "EXPRESS"
    ProvisioningRequest.objects.filter(pk=made[2].pk).update(priority="EXPRESS")

    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        taken = services.requests_process_now(numbers=[r.pk for r in made], actor=services.Actor(staff_user))

    updates = [sql for sql in statements(queries) if sql.startswith("UPDATE")]
    assert taken == 3 and len(updates) == 1 and '"enqueued_at"' in updates[0]
    assert ProvisioningRequest.objects.filter(enqueued_at__isnull=True).count() == 0
    assert broker() == {**NOTHING, "express": [([made[2].pk], False)], "regular": [([made[0].pk, made[1].pk], False)]}


def test_a_request_not_marked_queued_is_refused_by_the_on_commit_dispatch(catalog, broker):
    request = creation(cards(catalog, 1)[0], catalog[0], immediately=False)

    with pytest.raises(ValueError, match="enqueued_at is not written"), transaction.atomic():
        pipeline.request_dispatch_on_commit(request)
    assert broker() == NOTHING


@pytest.mark.parametrize(
    ("url", "declare"),
    [
        ("redis://127.0.0.1:6379/0", []),
        ("portalfs://localhost//", []),
        ("amqp://guest@127.0.0.1:5672//", None),
    ],
    ids=["Redis: not declared", "embedded: not declared", "AMQP: declared (Celery's default)"],
)
def test_a_publish_declares_its_queue_only_where_the_broker_needs_it(url, declare):
    assert pipeline.declare_for(Connection(url)) == declare
