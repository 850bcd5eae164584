"""The request pipeline against the CAS simulator: each type's effect, the head-end's refusals, order per smartcard,
exactly-once delivery when a reply is lost, retries and their limit, and the staff actions.

The worker's entry point (``pipeline.request_process``) is called directly here; ``test_worker.py`` runs the same
pipeline in real Celery worker processes.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from conax import gateway, pipeline, services
from conax.exceptions import IllegalState
from conax.models import Entitlement, Pairing, ProvisioningRequest, SetTopBox
from conax.simulator import CasServerThread
from tests.conax.factories import SetTopBoxFactory
from tests.conax.support import ADD, CARD, SUB, Crm

pytestmark = pytest.mark.django_db


@pytest.fixture
def head_end(settings):
    """The in-process head-end, fresh for each test (auto-registering: every CA id is a known card or box)."""
    settings.CAS_GATEWAY_URL = "inprocess:"
    gateway.reset_gateway_cache()
    yield gateway.default_simulator()
    gateway.reset_gateway_cache()


@pytest.fixture
def remote_head_end(settings):
    """The simulator as a separate HTTP server on a real socket, the portal talking to it through HttpGateway."""
    with CasServerThread(auto_register=True) as server:
        settings.CAS_GATEWAY_URL, settings.CAS_TIMEOUT = server.url, 2.0
        gateway.reset_gateway_cache()
        yield server.simulator
    gateway.reset_gateway_cache()


def create(crm: Crm, method: str, body: dict) -> ProvisioningRequest:
    answer = crm.post(method, body)
    assert answer["status"]["code"] == "OK", answer["status"]
    return ProvisioningRequest.objects.get(pk=int(answer["data"]["number"]))


def run(request: ProvisioningRequest) -> str | None:
    state = pipeline.request_process(number=request.pk)
    request.refresh_from_db()
    return state


# --- effects -------------------------------------------------------------------------------------------------------


def test_add_then_cancel_a_service(crm, world, head_end):
    added = create(crm, "add_subscriptions", ADD)
    assert run(added) == "COMPLETED"
    assert Entitlement.objects.get(smartcard=world.paired_card, service=world.service).active is True
    cancelled = create(crm, "cancel_subscriptions", ADD)

    assert run(cancelled) == "COMPLETED"
    assert Entitlement.objects.get(smartcard=world.paired_card, service=world.service).active is False
    assert added.reference_number and added.response == "OK" + added.reference_number
    assert (added.request, added.executed_date is not None, added.claimed_until) == ("0000-0000-0008", True, None)
    assert head_end.card("0000-0000-0008")["entitlements"] == []


def test_cancel_of_a_service_that_is_not_active_is_rejected_by_the_head_end(crm, world, head_end):
    request = create(crm, "cancel_subscriptions", ADD)

    assert run(request) == "REJECTED"
    assert (request.error_code, request.provider_error_code) == ("PROVIDER_REJECTED", "SERVICE_NOT_ACTIVE")
    assert request.provider_error_description and request.reference_number is None
    assert not Entitlement.objects.exists()


def test_pairing_created_extended_and_refused_for_a_card_paired_elsewhere(crm, world, head_end):
    created = create(
        crm,
        "create_pairing",
        {"smartcard_set": [{"smartcard_ca_id": "0000-0000-0008"}], "stb_set": [{"stb_ca_id": "THMOD001-10002"}]},
    )
    assert run(created) == "COMPLETED"
    extended = create(crm, "add_to_existing_pairing", {**CARD, "stb_set": [{"stb_ca_id": "0000-0000-0007"}]})
    assert run(extended) == "COMPLETED"
    again = create(
        crm,
        "create_pairing",
        {"smartcard_set": [{"smartcard_ca_id": "0000-0000-0008"}], "stb_set": [{"serial_number": "THMOD001"}]},
    )
    assert run(again) == "COMPLETED"  # re-pairing into the same pairing changes nothing
    SetTopBoxFactory(serial_number="NEW-BOX", ca_id="NEW-BOX-CA", subscription=world.subscription)
    elsewhere = create(
        crm,
        "create_pairing",
        {"smartcard_set": [{"smartcard_ca_id": "0000-0000-0008"}], "stb_set": [{"serial_number": "NEW-BOX"}]},
    )

    assert run(elsewhere) == "REJECTED" and elsewhere.provider_error_code == "CARD_ALREADY_PAIRED"
    for item in (world.paired_card, world.box, world.other_box):
        item.refresh_from_db()
    assert world.paired_card.pairing_id == world.box.pairing_id == world.other_box.pairing_id is not None
    assert Pairing.objects.count() == 1 and SetTopBox.objects.get(serial_number="NEW-BOX").pairing_id is None
    status = create(crm, "get_pairing_status_for_card", CARD)
    assert run(status) == "COMPLETED"
    assert json.loads(status.response)["paired"] is True


def test_active_subscriptions_are_read_back_from_the_head_end(crm, head_end):
    run(create(crm, "add_subscriptions", ADD))
    query = create(crm, "get_active_subscriptions", CARD)

    assert run(query) == "COMPLETED"
    assert json.loads(query.response) == {"services": ["P1test"]}


def test_a_pin_change_is_delivered_and_then_wiped(crm, head_end):
    request = create(crm, "reset_pin_to_given_value", {**SUB, **CARD, "pin": "4321"})
    assert request.ca_pin_encrypted

    assert run(request) == "COMPLETED"
    assert request.ca_pin_encrypted == ""
    assert head_end.card("0000-0000-0008")["pin_is_default"] is False


def test_a_pin_that_cannot_be_decrypted_any_more_is_rejected(crm, head_end, settings):
    request = create(crm, "reset_pin_to_given_value", {**SUB, **CARD, "pin": "4321"})
    settings.SECRET_KEY = "rotated-" + "k" * 50

    assert run(request) == "REJECTED"
    assert (request.error_code, request.ca_pin_encrypted, head_end.stats()["sends"]) == ("CA_PIN_UNREADABLE", "", 0)


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("send_mail_message_to_client", {**CARD, "message": "m" * 141}),
        ("send_bark_message_to_client", {**CARD, "message": "b" * 129}),
        ("send_repeating_bark_message_to_client", {**CARD, "message": "r", "interval": 10, "repetitions": 2}),
        ("display_fingerprint", {**CARD, "fingerprint_slot": "A", "display_duration": 5}),
        ("display_fingerprint", {}),
        ("reset_pin_to_default_value", {**SUB, **CARD}),
        ("get_pairing_status_for_pairing_module", {"stb_identifier": {"serial_number": "BOX-7"}}),
    ],
)
def test_the_other_types_complete(crm, head_end, method, body):
    assert run(create(crm, method, body)) == "COMPLETED"
    assert head_end.stats()["sends"] == 1


def test_an_unknown_card_is_rejected_by_a_head_end_that_does_not_know_it(crm, settings):
    request = create(crm, "add_subscriptions", ADD)
    with CasServerThread(auto_register=False) as server:
        settings.CAS_GATEWAY_URL = server.url
        gateway.reset_gateway_cache()

        assert run(request) == "REJECTED"
    gateway.reset_gateway_cache()
    assert request.provider_error_code == "UNKNOWN_CARD"


# --- when and in which order -----------------------------------------------------------------------------------------


def test_a_request_is_not_sent_before_its_start_date(crm, head_end):
    later = (timezone.now() + timedelta(days=5 * 365)).strftime("%Y-%m-%dT%H:%M:%S")  # inside the 10-year window
    request = create(crm, "add_subscriptions", {**ADD, "start_date": later})

    assert run(request) is None
    assert (request.life_cycle_state, request.attempts, head_end.stats()["sends"]) == ("PENDING", 0, 0)
    assert request.pk not in [number for number, _ in pipeline.requests_due()]


def test_a_smartcards_requests_go_express_first_then_in_sequence(crm, head_end):
    first = create(crm, "add_subscriptions", ADD)
    second = create(crm, "cancel_subscriptions", ADD)
    express = create(crm, "send_mail_message_to_client", {**CARD, "message": "urgent", "priority": "EXPRESS"})

    assert [run(second), run(first)] == [None, None]  # the EXPRESS one goes first
    # The periodic run queues only the EXPRESS one: each of the others is queued by its predecessor when it ends.
    assert pipeline.requests_due() == [(express.pk, "EXPRESS")]
    assert run(express) == "COMPLETED"
    assert run(second) is None  # still behind the first
    assert [run(first), run(second)] == ["COMPLETED", "COMPLETED"]
    assert (first.attempts, second.attempts) == (1, 1)


def test_the_dispatcher_skips_requests_held_or_queued_recently(crm, head_end, settings):
    held = create(crm, "add_subscriptions", ADD)
    queued = create(crm, "send_mail_message_to_client", {**CARD, "message": "a"})
    idle = create(
        crm,
        "send_mail_message_to_client",
        {**{"smartcard_identifier": {"serial_number": "sc20000010"}}, "message": "b"},
    )
    now = timezone.now()
    ProvisioningRequest.objects.filter(pk=held.pk).update(claimed_until=now + timedelta(seconds=30))
    ProvisioningRequest.objects.filter(pk=queued.pk).update(enqueued_at=now)

    assert [number for number, _ in pipeline.requests_due()] == [idle.pk]
    with time_machine.travel(now + timedelta(seconds=settings.CAS_DISPATCH_GRACE_SECONDS + 31), tick=False):
        # The first request of each card; the second waits for its predecessor, which queues it when it ends.
        assert [number for number, _ in pipeline.requests_due()] == [held.pk, idle.pk]


# --- failures ------------------------------------------------------------------------------------------------------


def test_a_lost_reply_is_looked_up_not_sent_twice(crm, remote_head_end):
    request = create(crm, "add_subscriptions", ADD)
    remote_head_end.lost_reply_share = 1.0

    assert run(request) == "PENDING"  # applied at the head-end, the answer never came back
    assert request.sent_at is not None and request.claimed_until > timezone.now()
    remote_head_end.lost_reply_share = 0.0
    with time_machine.travel(request.claimed_until + timedelta(seconds=1), tick=False):
        assert run(request) == "COMPLETED"

    stats = remote_head_end.stats()
    assert (stats["sends"], stats["lookups"], stats["duplicates"]) == (1, 1, 0)
    assert remote_head_end.applied_counts() == {request.uid: 1}
    assert Entitlement.objects.get().active is True


def test_an_unreachable_head_end_is_retried_then_the_request_rejected(crm, world, settings):
    settings.CAS_GATEWAY_URL, settings.CAS_TIMEOUT = "http://127.0.0.1:9", 0.5  # nothing listens on port 9
    gateway.reset_gateway_cache()
    request = create(crm, "add_subscriptions", ADD)
    now = timezone.now()

    states = []
    for _ in range(pipeline.MAX_ATTEMPTS):
        with time_machine.travel(now, tick=False):
            states.append(run(request))
        now = (request.claimed_until or now) + timedelta(seconds=1)

    assert states == ["PENDING"] * (pipeline.MAX_ATTEMPTS - 1) + ["REJECTED"]
    assert (request.error_code, request.attempts, request.provider_error_code) == (
        "GATEWAY_UNAVAILABLE",
        pipeline.MAX_ATTEMPTS,
        None,
    )
    gateway.reset_gateway_cache()


def test_an_outcome_from_a_worker_that_lost_its_claim_is_ignored(crm, head_end):
    request = create(crm, "add_subscriptions", ADD)
    [stale], _ = pipeline._claim_batch([request.pk], None)
    ProvisioningRequest.objects.filter(pk=request.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert run(request) == "COMPLETED"  # a second worker took it over and finished

    assert pipeline._record([(stale, pipeline.Rejected("LATE", "too late"))]) == {}
    request.refresh_from_db()
    assert (request.life_cycle_state, request.provider_error_code) == ("COMPLETED", None)


# --- staff actions -------------------------------------------------------------------------------------------------


def test_process_now_makes_a_scheduled_request_due(crm, staff_user, head_end, django_capture_on_commit_callbacks):
    later = (timezone.now() + timedelta(days=5 * 365)).strftime("%Y-%m-%dT%H:%M:%S")  # inside the 10-year window
    request = create(crm, "add_subscriptions", {**ADD, "start_date": later})

    with django_capture_on_commit_callbacks() as callbacks:
        queued = services.requests_process_now(numbers=[request.pk], actor=services.Actor(staff_user))

    assert (queued, len(callbacks)) == (1, 1)
    assert run(request) == "COMPLETED" and request.process_name == "MANUAL"


def test_retry_of_a_rejected_request_is_a_new_linked_request(crm, staff_user, head_end):
    rejected = create(crm, "cancel_subscriptions", ADD)
    assert run(rejected) == "REJECTED"
    run(create(crm, "add_subscriptions", ADD))

    retry = services.request_retry(request=rejected, actor=services.Actor(staff_user))

    assert (retry.retry_of_id, retry.type, retry.life_cycle_state) == (rejected.pk, "CANCEL_SUBSCRIPTIONS", "PENDING")
    assert [{k: v for k, v in e.items() if k != "id"} for e in retry.parameters_set] == [
        {k: v for k, v in e.items() if k != "id"} for e in rejected.parameters_set
    ]
    assert run(retry) == "COMPLETED"


def test_only_rejected_requests_are_retried_and_never_a_pin_change(crm, staff_user, head_end):
    done = create(crm, "add_subscriptions", ADD)
    run(done)
    pin = create(crm, "reset_pin_to_given_value", {**SUB, **CARD, "pin": "1111"})
    ProvisioningRequest.objects.filter(pk=pin.pk).update(life_cycle_state="REJECTED", executed_date=timezone.now())
    pin.refresh_from_db()

    for request in (done, pin):
        with pytest.raises(IllegalState):
            services.request_retry(request=request, actor=services.Actor(staff_user))


def test_a_refused_request_is_queued_once_more_by_its_predecessor_only(
    crm, head_end, django_capture_on_commit_callbacks
):
    first, second = create(crm, "add_subscriptions", ADD), create(crm, "cancel_subscriptions", ADD)
    ProvisioningRequest.objects.filter(pk=second.pk).update(enqueued_at=timezone.now())

    assert run(second) is None and second.enqueued_at is None  # refused: its queued message is spent
    with django_capture_on_commit_callbacks(execute=True):
        assert run(first) == "COMPLETED"
    second.refresh_from_db()
    assert second.enqueued_at is not None  # the predecessor queued it

    third = create(crm, "send_mail_message_to_client", {**CARD, "message": "x"})
    ProvisioningRequest.objects.filter(pk=third.pk).update(enqueued_at=timezone.now())
    queued_at = ProvisioningRequest.objects.get(pk=third.pk).enqueued_at
    with django_capture_on_commit_callbacks(execute=True):
        assert run(second) == "COMPLETED"
    assert ProvisioningRequest.objects.get(pk=third.pk).enqueued_at == queued_at  # its own message is on its way
