"""The pipeline's unit of work, a batch (``pipeline.requests_process``, the ``process_requests`` task): its queries do
not grow with its size, one batch records different outcomes at once, a card's requests go in order within a batch,
a lost claim records nothing, a request sent before is looked up rather than sent again, and the messages
``_enqueue`` puts on the (real, embedded) broker never mix EXPRESS and REGULAR numbers.

``test_worker.py`` runs batches in real Celery worker processes (killed mid-run, Redis restarted).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from conax import gateway, pipeline, services, tasks
from conax.cas_protocol import CasCommand, Outcome
from conax.models import Entitlement, ProvisioningRequest, Service, Smartcard
from conax.simulator import CasServerThread, CasSimulator
from conax.simulator.state import HeadendUnavailable
from portal.celery import app as celery_app
from tests.conax.factories import ServiceFactory, SetTopBoxFactory, SmartcardFactory, SubscriptionFactory
from tests.webhooks.support import endpoint
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db
TASK = "conax.tasks.process_requests"


class FlakyHeadend(CasSimulator):
    """The CAS simulator, unreachable for the cards in ``down`` (the simulator's fault shares are random draws; a
    test of one batch with several outcomes needs the fault on chosen requests)."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.down: set[str] = set()

    def send(self, command: CasCommand, *, delay: bool = True) -> Outcome:
        if command.params.get("smartcard_ca_id") in self.down:
            raise HeadendUnavailable("CAS simulator: unavailable for this card")
        return super().send(command, delay=delay)


@pytest.fixture
def head_end(settings):
    """The in-process head-end, fresh for each test (every CA id is a known card)."""
    settings.CAS_GATEWAY_URL = "inprocess:"
    settings.CAS_INPROCESS_BACKEND = f"{__name__}.FlakyHeadend"
    gateway.reset_gateway_cache()
    yield gateway.default_simulator()
    gateway.reset_gateway_cache()


@pytest.fixture
def broker():
    """The test run's embedded broker (portalfs, in its own folder), emptied of what earlier tests queued."""
    taken()
    return taken


def taken(*names: str) -> dict[str, list[tuple[list[int], bool]]]:
    """The Conax batch messages waiting in these queues (all three by default), taken off the broker: each one's
    numbers and whether it has a countdown."""
    found: dict[str, list[tuple[list[int], bool]]] = {}
    with celery_app.connection_for_read() as conn:
        channel = conn.default_channel
        for name in names or ("express", "regular", "devices"):
            found[name] = []
            while (message := channel.basic_get(name, no_ack=True)) is not None:
                args, _kwargs, _embed = message.decode()
                if message.headers["task"] == TASK:
                    found[name].append((args[0], message.headers.get("eta") is not None))
    return found


@pytest.fixture
def catalog():
    service = ServiceFactory(code="GOLD", service_ca_id="GOLD-CA")
    return service, SubscriptionFactory(number="S-BATCH", services=[service])


def cards(catalog, count: int) -> list[Smartcard]:
    return SmartcardFactory.create_batch(count, subscription=catalog[1])


def change(card: Smartcard, service: Service, kind: str = "ADD_SUBSCRIPTIONS", priority: str = "REGULAR"):
    draft = services.subscription_change(type=kind, subscription=card.subscription, service=service, smartcard=card)
    return create(draft, priority)


def create(draft: services.Draft, priority: str = "REGULAR") -> ProvisioningRequest:
    options = services.Options(priority=priority)
    return services.request_create(draft=draft, actor=services.Actor(None), options=options)


def states(*requests: ProvisioningRequest) -> list[tuple[str, int]]:
    return [
        (r.life_cycle_state, r.attempts)
        for r in ProvisioningRequest.objects.filter(pk__in=[r.pk for r in requests]).order_by("number")
    ]


# --- cost ----------------------------------------------------------------------------------------------------------


def test_a_batchs_queries_do_not_grow_with_its_size(
    catalog, head_end, broker, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    endpoint("http://127.0.0.1:9/hook", "conax_request.finished")  # the webhook events are recorded: one insert
    pipeline.request_process(number=change(cards(catalog, 1)[0], catalog[0]).pk)  # reads the endpoints (cached)
    counts, finished = {}, 1
    for size in (5, 40):
        # each card has a second request, which its first one queues when it ends
        firsts = [change(card, catalog[0]) for card in cards(catalog, size)]
        seconds = [change(r.smartcard, catalog[0], "CANCEL_SUBSCRIPTIONS") for r in firsts]
        numbers = [r.pk for r in firsts]
        for request in firsts:  # a box each: its live event goes to the box's device (one query finds them all)
            ProvisioningRequest.objects.filter(pk=request.pk).update(set_top_box=SetTopBoxFactory())

        # claim: savepoint, SELECT … FOR UPDATE, the top-up's SELECT … FOR UPDATE (room in the batch), UPDATE of the
        # claims, bulk UPDATE of the addresses, release; record: savepoint, SELECT … FOR UPDATE, UPDATE of the state,
        # bulk UPDATE of the answers, entitlements INSERT … ON CONFLICT, webhook deliveries INSERT, release; after the
        # commit: the boxes' devices, the cards' next requests, and marking them queued
        with django_assert_max_num_queries(16) as captured, django_capture_on_commit_callbacks(execute=True):
            done = pipeline.requests_process(numbers=numbers)

        counts[size], finished = len(captured.captured_queries), finished + size
        assert done == dict.fromkeys(numbers, "COMPLETED")
        assert Entitlement.objects.filter(smartcard__in=[r.smartcard for r in firsts], active=True).count() == size
        assert Delivery.objects.filter(event_type="conax_request.finished").count() == finished
        assert broker()["regular"] == [([r.pk for r in seconds], False)]  # the cards' next ones, in one message
    assert counts[5] == counts[40]


# --- outcomes ------------------------------------------------------------------------------------------------------


def test_one_batch_records_completed_rejected_retried_and_given_up_requests_at_once(
    catalog, head_end, broker, settings, django_capture_on_commit_callbacks
):
    service = catalog[0]
    ok, refused, flaky, spent, behind = cards(catalog, 5)
    head_end.down = {flaky.ca_id, spent.ca_id}
    endpoint("http://127.0.0.1:9/hook", "conax_request.finished")
    completed = change(ok, service)
    rejected = change(refused, service, "CANCEL_SUBSCRIPTIONS")  # not active on the card: the head-end refuses
    retried = change(flaky, service)
    given_up = change(spent, service)
    ProvisioningRequest.objects.filter(pk=given_up.pk).update(attempts=pipeline.MAX_ATTEMPTS - 1)
    pin = create(services.pin_reset(subscription=behind.subscription, smartcard=behind, pin="4321"))
    settings.SECRET_KEY = "rotated-" + "k" * 50  # the PIN cannot be decrypted any more
    batch = [completed, rejected, retried, given_up, pin]

    with django_capture_on_commit_callbacks(execute=True):
        done = pipeline.requests_process(numbers=[r.pk for r in batch])

    assert done == {
        completed.pk: "COMPLETED",
        rejected.pk: "REJECTED",
        retried.pk: "PENDING",
        given_up.pk: "REJECTED",
        pin.pk: "REJECTED",
    }
    rows = {r.pk: r for r in ProvisioningRequest.objects.filter(pk__in=[r.pk for r in batch])}
    errors = {pk: (r.error_code, r.provider_error_code) for pk, r in rows.items()}
    assert errors == {
        completed.pk: (None, None),
        rejected.pk: ("PROVIDER_REJECTED", "SERVICE_NOT_ACTIVE"),
        retried.pk: (None, None),
        given_up.pk: ("GATEWAY_UNAVAILABLE", None),
        pin.pk: ("CA_PIN_UNREADABLE", None),
    }
    again = rows[retried.pk]
    assert again.attempts == 1 and again.sent_at is not None and again.executed_date is None
    assert timezone.now() < again.claimed_until <= timezone.now() + timedelta(seconds=3)  # 1-2 s, rounded up
    assert rows[pin.pk].ca_pin_encrypted == "" and rows[pin.pk].sent_at is None
    assert Entitlement.objects.get().smartcard_id == ok.pk
    finished = Delivery.objects.filter(event_type="conax_request.finished")
    ended = sorted([completed.pk, rejected.pk, given_up.pk, pin.pk])
    assert sorted(d.payload["data"]["number"] for d in finished) == ended  # one event each, the retried one none
    assert broker()["regular"] == [([retried.pk], True)]  # the retry, with its countdown; nothing else is due
    assert head_end.stats()["sends"] == 2  # the unreachable ones never got through; the PIN change was not sent


def test_a_cards_two_requests_in_one_batch_go_in_order_express_first(
    catalog, head_end, broker, django_capture_on_commit_callbacks
):
    service = catalog[0]
    card, other = cards(catalog, 2)
    first, second = change(card, service), change(card, service, "CANCEL_SUBSCRIPTIONS")
    urgent = create(services.card_query(type="GET_ACTIVE_SUBSCRIPTIONS", smartcard=card), priority="EXPRESS")
    alone = change(other, service)
    ProvisioningRequest.objects.filter(pk__in=[first.pk, second.pk]).update(enqueued_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        assert pipeline.requests_process(numbers=[second.pk, first.pk, urgent.pk, alone.pk]) == {
            urgent.pk: "COMPLETED",
            alone.pk: "COMPLETED",
        }

    assert states(first, second) == [("PENDING", 0), ("PENDING", 0)]
    assert broker()["regular"] == [([first.pk], False)]  # queued by the EXPRESS one; the second waits for it
    with django_capture_on_commit_callbacks(execute=True):
        assert pipeline.requests_process(numbers=[second.pk, first.pk]) == {first.pk: "COMPLETED"}
        assert pipeline.requests_process(numbers=[second.pk]) == {second.pk: "COMPLETED"}
    assert Entitlement.objects.get(smartcard=card).active is False  # added, then cancelled: in that order


def test_a_request_refused_while_its_predecessor_ends_is_queued_by_the_refusing_worker(
    catalog, head_end, broker, django_capture_on_commit_callbacks
):
    card = cards(catalog, 1)[0]
    first, second = change(card, catalog[0]), change(card, catalog[0], "CANCEL_SUBSCRIPTIONS")
    queued_at = timezone.now()
    ProvisioningRequest.objects.filter(pk=second.pk).update(enqueued_at=queued_at)  # its own message came
    claims, refused = pipeline._claim_batch([second.pk], "worker-2")
    assert (claims, refused) == ([], [second.pk])
    pipeline._queue_unblocked(refused)
    assert broker()["regular"] == []  # the first one is still PENDING: it queues the second when it ends
    # The race: the first one ends, and its worker reads the second one's enqueued_at before the refusal (None)
    # is committed, so it sees it queued and leaves it.
    ProvisioningRequest.objects.filter(pk=second.pk).update(enqueued_at=queued_at)
    with django_capture_on_commit_callbacks(execute=True):
        assert pipeline.requests_process(numbers=[first.pk], process_id="worker-1") == {first.pk: "COMPLETED"}
    assert broker()["regular"] == []
    ProvisioningRequest.objects.filter(pk=second.pk).update(enqueued_at=None)  # the refusal, committed

    pipeline._queue_unblocked(refused)  # the refusing worker looks after its commit

    assert broker()["regular"] == [([second.pk], False)]
    assert pipeline.requests_process(numbers=[second.pk]) == {second.pk: "COMPLETED"}


def test_a_lost_claim_records_nothing_and_the_others_of_its_batch_are_recorded(catalog, head_end):
    service = catalog[0]
    lost, kept = (change(card, service) for card in cards(catalog, 2))
    stale, _ = pipeline._claim_batch([lost.pk, kept.pk], "worker-1")
    # the lease ran out for one of them (a stalled worker), and another worker claimed it: token 2
    ProvisioningRequest.objects.filter(pk=lost.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert [c.request.attempts for c in pipeline._claim_batch([lost.pk], "worker-2")[0]] == [2]

    recorded = pipeline._record(pipeline._call_all(stale))

    assert recorded == {kept.pk: "COMPLETED"}
    row = ProvisioningRequest.objects.get(pk=lost.pk)
    assert (row.life_cycle_state, row.attempts, row.process_id) == ("PENDING", 2, "worker-2")
    assert head_end.applied_counts() == {lost.uid: 1, kept.uid: 1}  # the stale send was answered from the key


def test_requests_sent_before_are_looked_up_and_the_head_end_carries_each_out_once(catalog, settings):
    service = catalog[0]
    known, unknown, *fresh = (change(card, service) for card in cards(catalog, 30))
    with CasServerThread(auto_register=True, latency_ms=20) as server:
        settings.CAS_GATEWAY_URL, settings.CAS_TIMEOUT = server.url, 2.0
        gateway.reset_gateway_cache()
        # an earlier attempt of each was sent; the head-end carried out the first one, its reply was lost
        [claim], _ = pipeline._claim_batch([known.pk], None)
        gateway.gateway_from_settings().send(claim.command)
        pipeline._claim_batch([unknown.pk], None)
        ProvisioningRequest.objects.filter(pk__in=[known.pk, unknown.pk]).update(claimed_until=None)

        done = pipeline.requests_process(numbers=[known.pk, unknown.pk, *(r.pk for r in fresh)])
        stats, applied = server.simulator.stats(), server.simulator.applied_counts()
    gateway.reset_gateway_cache()

    assert done == dict.fromkeys([known.pk, unknown.pk, *(r.pk for r in fresh)], "COMPLETED")
    assert (stats["sends"], stats["lookups"], stats["duplicates"]) == (1 + 1 + 28, 2, 0)
    assert len(applied) == 30 and set(applied.values()) == {1}
    assert states(known, unknown) == [("COMPLETED", 2), ("COMPLETED", 2)]


# --- messages ------------------------------------------------------------------------------------------------------


def test_express_and_regular_numbers_never_share_a_message(
    catalog, head_end, broker, settings, django_capture_on_commit_callbacks, staff_user
):
    settings.CAS_BATCH_SIZE = 3
    service = catalog[0]
    made = [
        change(card, service, priority="EXPRESS" if n % 3 == 0 else "REGULAR")
        for n, card in enumerate(cards(catalog, 11))
    ]
    express = [r.pk for r in made if r.priority == "EXPRESS"]
    regular = [r.pk for r in made if r.priority == "REGULAR"]

    # one transaction makes them all due ("process now"): queued together once it commits
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.requests_process_now(numbers=[r.pk for r in made], actor=services.Actor(staff_user))
    assert len(callbacks) == 1
    assert broker() == {
        "express": [(express[:3], False), (express[3:], False)],
        "regular": [(regular[:3], False), (regular[3:6], False), (regular[6:], False)],
        "devices": [],
    }
    # the periodic run, later (nothing was taken meanwhile): the same shape
    ProvisioningRequest.objects.update(enqueued_at=None)
    assert pipeline.requests_dispatch() == 11
    assert broker() == {
        "express": [(express[:3], False), (express[3:], False)],
        "regular": [(regular[:3], False), (regular[3:6], False), (regular[6:], False)],
        "devices": [],
    }
    assert ProvisioningRequest.objects.filter(enqueued_at__isnull=True).count() == 0


def test_the_batch_task_and_the_single_task_of_older_messages_both_run(catalog, head_end):
    first, second, third = (change(card, catalog[0]) for card in cards(catalog, 3))

    tasks.process_requests.apply(args=[[first.pk, second.pk]])
    tasks.process_request.apply(args=[third.pk])

    assert states(first, second, third) == [("COMPLETED", 1)] * 3


# --- a batch tops itself up from the queue -------------------------------------------------------------------------


def queued(seconds_ago: float, *requests: ProvisioningRequest) -> None:
    """Their own messages went to the queue that long ago (a CRM creation's INSERT writes enqueued_at)."""
    at = timezone.now() - timedelta(seconds=seconds_ago)
    ProvisioningRequest.objects.filter(pk__in=[r.pk for r in requests]).update(enqueued_at=at)


def test_a_one_number_message_behind_a_backlog_takes_the_requests_waiting_in_the_queue(catalog, head_end, settings):
    # given requests whose one-number messages have waited in the queue (a stream of CRM creations the workers are
    # behind), and requests queued a moment ago, of another priority, never queued, or queued before the message's
    # own (their messages went first: another worker has them or is about to)
    settings.CAS_BATCH_SIZE, settings.CAS_BATCH_TOP_UP_AFTER = 4, 1.0
    service = catalog[0]
    earlier, own, *waiting = (change(card, service) for card in cards(catalog, 6))
    fresh, unqueued = (change(card, service) for card in cards(catalog, 2))
    urgent = create(services.card_query(type="GET_ACTIVE_SUBSCRIPTIONS", smartcard=cards(catalog, 1)[0]), "EXPRESS")
    queued(5, earlier, own, *waiting, urgent)
    queued(0.1, fresh)

    # when the message of the first is processed
    done = pipeline.requests_process(numbers=[own.pk])

    # then its batch is full: its own and the oldest waiting ones of its priority, up to CAS_BATCH_SIZE
    assert done == dict.fromkeys([own.pk, *[r.pk for r in waiting[:3]]], "COMPLETED")
    assert states(earlier, waiting[3], fresh, unqueued, urgent) == [("PENDING", 0)] * 5
    # and the messages of those it took find nothing to do; the rest still goes through its own message
    assert pipeline.requests_process(numbers=[waiting[0].pk]) == {}
    assert pipeline.requests_process(numbers=[waiting[3].pk]) == {waiting[3].pk: "COMPLETED"}
    assert head_end.applied_counts() == dict.fromkeys([own.uid, *[r.uid for r in waiting]], 1)


def test_a_top_up_keeps_each_cards_order_and_leaves_held_and_later_requests(catalog, head_end, settings):
    settings.CAS_BATCH_TOP_UP_AFTER = 1.0
    service = catalog[0]
    card, busy, other = cards(catalog, 3)
    own = change(card, service)
    behind = change(card, service, "CANCEL_SUBSCRIPTIONS")  # the same card: after own, in a later batch
    held = change(busy, service)  # another worker holds it
    after_held = change(busy, service, "CANCEL_SUBSCRIPTIONS")  # its card's earlier one is still PENDING
    first, second = change(other, service), change(other, service, "CANCEL_SUBSCRIPTIONS")
    retrying = change(cards(catalog, 1)[0], service)  # waiting out its backoff
    queued(5, own, behind, held, after_held, first, second, retrying)
    ProvisioningRequest.objects.filter(pk=held.pk).update(claimed_until=timezone.now() + timedelta(seconds=60))
    ProvisioningRequest.objects.filter(pk=retrying.pk).update(claimed_until=timezone.now() + timedelta(seconds=8))

    assert pipeline.requests_process(numbers=[own.pk]) == {own.pk: "COMPLETED", first.pk: "COMPLETED"}

    assert states(behind, held, after_held, second, retrying) == [("PENDING", 0)] * 5
    assert pipeline.requests_process(numbers=[behind.pk]) == {behind.pk: "COMPLETED", second.pk: "COMPLETED"}


def test_a_request_a_top_up_locked_but_could_not_take_is_queued_by_its_cards_earlier_one(
    catalog, head_end, broker, settings, django_capture_on_commit_callbacks
):
    # given a card whose first request is in flight in another worker's batch, and its second request queued a while
    # ago: its own message may come while a top-up holds its row, and then skips it (SKIP LOCKED)
    settings.CAS_BATCH_TOP_UP_AFTER = 1.0
    service = catalog[0]
    card, other = cards(catalog, 2)
    in_flight = change(card, service)
    claims, _ = pipeline._claim_batch([in_flight.pk], "worker-1")
    own = change(other, service)
    behind = change(card, service, "CANCEL_SUBSCRIPTIONS")
    queued(5, own, behind)

    # when a message with room locks it as a top-up candidate, and finds its card's earlier one still PENDING
    with django_capture_on_commit_callbacks(execute=True):
        assert pipeline.requests_process(numbers=[own.pk]) == {own.pk: "COMPLETED"}

    # then it is refused as its own message would refuse it (no longer marked queued), so that the earlier one queues
    # it when it ends, instead of leaving it to a message that may have come and gone
    assert ProvisioningRequest.objects.get(pk=behind.pk).enqueued_at is None
    with django_capture_on_commit_callbacks(execute=True):
        assert pipeline._record(pipeline._call_all(claims)) == {in_flight.pk: "COMPLETED"}
    assert broker()["regular"] == [([behind.pk], False)]
    assert pipeline.requests_process(numbers=[behind.pk]) == {behind.pk: "COMPLETED"}


def test_a_top_up_is_off_at_zero_and_a_message_that_finds_nothing_takes_nothing(
    catalog, head_end, settings, django_assert_num_queries
):
    service = catalog[0]
    own, waiting = (change(card, service) for card in cards(catalog, 2))
    done = change(cards(catalog, 1)[0], service)
    queued(5, own, waiting, done)
    ProvisioningRequest.objects.filter(pk=done.pk).update(life_cycle_state="COMPLETED", executed_date=timezone.now())

    settings.CAS_BATCH_TOP_UP_AFTER = 0
    assert pipeline.requests_process(numbers=[own.pk]) == {own.pk: "COMPLETED"}
    settings.CAS_BATCH_TOP_UP_AFTER = 1.0
    with django_assert_num_queries(3):  # the claim's savepoint, its SELECT and release: no top-up, no claim
        assert pipeline.requests_process(numbers=[done.pk]) == {}
    assert states(waiting) == [("PENDING", 0)]
