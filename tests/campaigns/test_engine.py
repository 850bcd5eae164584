"""The engine, step by step in this process (``engine.step(now=…)`` with the clock given, on PostgreSQL): the time
window and start time, the token buckets, outcome sync, the edge cases (a box with the same command waiting, a card
with pending requests, a device removed before its release or while in flight), wave judgement and progress.
The same engine in real worker processes against the simulator: ``test_worker.py``."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns import engine, services
from campaigns.models import Campaign, Member
from conax import gateway, pipeline
from conax import services as conax
from conax.models import ProvisioningRequest
from provisioning import services as provisioning
from provisioning.models import Command
from tests.campaigns.support import REPROVISION, boxes, definition, member_states
from tests.conax.factories import SetTopBoxFactory, SmartcardFactory, SubscriptionFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def fleet():
    return boxes([f"127.0.0.1:{20000 + n}" for n in range(20)])


def started(**overrides) -> Campaign:
    campaign = services.campaign_create(definition=definition(**overrides))
    services.campaign_start(campaign=campaign)
    campaign.refresh_from_db()
    return campaign


def step_at(campaign: Campaign, now: datetime) -> engine.StepResult:
    result = engine.step(campaign_id=campaign.pk, now=now)
    assert result is not None
    return result


def finish_commands(state: str = "SUCCEEDED", error: str = "") -> None:
    """What the command pipeline records when boxes answer (its own tests cover how)."""
    Command.objects.filter(state="QUEUED").update(state=state, last_error=error, finished_at=timezone.now())


# --- window and start time -----------------------------------------------------------------------------------------

PARIS_NIGHT = {"window_start": time(1), "window_end": time(5), "window_timezone": "Europe/Paris"}


@pytest.mark.parametrize(
    ("overrides", "utc_hour", "released"),
    [
        pytest.param(PARIS_NIGHT, 0, True, id="01:00-05:00-paris-at-01:xx-local"),
        pytest.param(PARIS_NIGHT, 4, False, id="01:00-05:00-paris-at-05:xx-local"),
        pytest.param(PARIS_NIGHT, 23, False, id="01:00-05:00-paris-at-00:xx-local"),
        pytest.param({"window_start": time(22), "window_end": time(2)}, 23, True, id="past-midnight-inside"),
        pytest.param({"window_start": time(22), "window_end": time(2)}, 3, False, id="past-midnight-outside"),
        pytest.param({}, 12, True, id="no-window"),
    ],
)
def test_members_are_released_only_inside_the_window(fleet, overrides, utc_hour, released):
    campaign = started(waves=["rest"], **overrides)
    base = datetime(2026, 12, 3, utc_hour, 30, tzinfo=UTC)
    Campaign.objects.filter(pk=campaign.pk).update(bucket_at=base - timedelta(seconds=1))

    result = step_at(campaign, base)

    assert (result.released > 0) is released
    assert Member.objects.filter(campaign=campaign, state="sent").count() == result.released


def test_nothing_is_released_before_start_at(fleet):
    later = timezone.now() + timedelta(hours=1)
    campaign = started(start_at=later)

    assert step_at(campaign, later - timedelta(seconds=5)).released == 0
    assert step_at(campaign, later + timedelta(seconds=1)).released > 0


def test_a_scheduled_campaign_starts_at_its_start_time(fleet):
    campaign = services.campaign_create(definition=definition(start_at=timezone.now() + timedelta(hours=1)))
    services.campaign_schedule(campaign=campaign)
    engine.tick()
    assert Campaign.objects.get(pk=campaign.pk).state == "scheduled"

    Campaign.objects.filter(pk=campaign.pk).update(start_at=timezone.now() - timedelta(seconds=1))
    engine.tick()

    assert Campaign.objects.get(pk=campaign.pk).state == "running"
    assert Member.objects.filter(campaign=campaign).count() == 20


# --- token buckets ---------------------------------------------------------------------------------------------------


def test_the_bucket_releases_rate_times_elapsed_and_never_more_than_a_burst(fleet, settings):
    settings.CAMPAIGN_TICK_SECONDS = 1.0
    campaign = started(waves=["rest"], rate_per_second=4.0)
    t0 = campaign.bucket_at

    assert step_at(campaign, t0).released == 0  # buckets start empty
    assert step_at(campaign, t0 + timedelta(seconds=0.5)).released == 2
    assert step_at(campaign, t0 + timedelta(seconds=0.75)).released == 1
    assert step_at(campaign, t0 + timedelta(seconds=60)).released == 4  # idle for a minute: one burst, not 240


def test_the_per_group_limit_holds_for_each_device_model(settings):
    settings.CAMPAIGN_TICK_SECONDS = 1.0
    first = boxes([f"127.0.0.1:{30000 + n}" for n in range(10)])
    second = boxes([f"127.0.0.1:{31000 + n}" for n in range(10)])
    campaign = started(waves=["rest"], rate_per_second=100.0, rate_per_group=3.0)
    t0 = campaign.bucket_at

    released = step_at(campaign, t0 + timedelta(seconds=1)).released

    sent = Member.objects.filter(campaign=campaign, state="sent")
    per_model = {
        model: sent.filter(group_id=model).count() for model in (first[0].device.model_id, second[0].device.model_id)
    }
    assert released == 6
    assert set(per_model.values()) == {3}


def test_a_release_takes_the_same_number_of_queries_for_5_members_and_for_60(settings):
    settings.CAMPAIGN_TICK_SECONDS = 1.0
    boxes([f"127.0.0.1:{32000 + n}" for n in range(80)])
    campaign = started(waves=["rest"], rate_per_second=5.0)
    t0 = campaign.bucket_at
    step_at(campaign, t0 + timedelta(seconds=1))  # the first step also reads what is cached for a while
    counted = []
    for rate, at in ((5.0, 2), (60.0, 3)):
        Campaign.objects.filter(pk=campaign.pk).update(rate_per_second=rate, bucket_tokens=rate)
        with CaptureQueriesContext(connection) as captured:
            released = step_at(campaign, t0 + timedelta(seconds=at)).released
        counted.append((released, len(captured)))

    assert [released for released, _ in counted] == [5, 60]
    assert counted[0][1] == counted[1][1]
    sent = Member.objects.filter(campaign=campaign, state="sent")
    assert sent.count() == 5 + 5 + 60
    assert all(m.command_id is not None and m.released_at is not None for m in sent)
    assert {c.box_id for c in Command.objects.filter(pk__in=sent.values("command_id"))} == set(
        sent.values_list("box_id", flat=True)
    )


def test_a_conax_release_costs_one_request_creation_per_member_and_nothing_more(
    head_end, settings, django_capture_on_commit_callbacks
):
    # Given 80 cards of one subscription, a mail campaign over them, and what one creation of its own costs.
    settings.CAMPAIGN_TICK_SECONDS = 1.0
    subscription = SubscriptionFactory()
    cards = [SmartcardFactory(subscription=subscription) for _ in range(80)]
    campaign = started(
        target_kind="smartcards",
        action_kind="conax",
        action="SEND_MAIL_MESSAGE_TO_CLIENT",
        params={"message": "Maintenance tonight"},
        waves=["rest"],
        rate_per_second=5.0,
    )
    t0 = campaign.bucket_at
    step_at(campaign, t0 + timedelta(seconds=1))  # the first step also reads what is cached for a while
    other = SmartcardFactory(subscription=subscription)
    with CaptureQueriesContext(connection) as one:
        lone = conax.request_create(
            draft=conax.mail(smartcard=other, message="a lone one"),
            actor=conax.Actor(campaign.created_by),
            options=conax.Options(process_immediately=True),
        )

    # When steps release 5 members, then 60.
    counted = []
    for rate, at in ((5.0, 2), (60.0, 3)):
        Campaign.objects.filter(pk=campaign.pk).update(rate_per_second=rate, bucket_tokens=rate)
        with CaptureQueriesContext(connection) as captured, django_capture_on_commit_callbacks() as callbacks:
            released = step_at(campaign, t0 + timedelta(seconds=at)).released
        counted.append((released, len(captured)))

    # Then the 55 more members cost 55 creations' queries exactly (a member's outcome costs none of its own), every
    # member sent names its own card's new request, and the last step's 60 are queued for the worker after the commit.
    assert [released for released, _ in counted] == [5, 60]
    assert counted[1][1] - counted[0][1] == 55 * len(one)
    sent = Member.objects.filter(campaign=campaign, state="sent")
    assert sent.count() == 5 + 5 + 60
    assert all(m.released_at is not None and m.note == "" and m.error == "" for m in sent)
    requests = ProvisioningRequest.objects.exclude(pk=lone.pk).in_bulk(list(sent.values_list("request_id", flat=True)))
    assert len(requests) == 70
    assert {(m.smartcard_id, requests[m.request_id].smartcard_id) for m in sent} == {
        (m.smartcard_id, m.smartcard_id) for m in sent
    }
    assert {r.sequence_number for r in requests.values()} == {1}
    assert Member.objects.filter(campaign=campaign, state="pending").count() == len(cards) - 70
    queued = {number for callback in callbacks for number, _ in callback.numbers_by_priority}
    assert queued == set(sent.filter(released_at=t0 + timedelta(seconds=3)).values_list("request_id", flat=True))
    assert len(queued) == 60


# --- outcomes and waves --------------------------------------------------------------------------------------------


def test_outcomes_are_synced_and_a_good_wave_moves_on_to_the_next(fleet):
    campaign = started(waves=[5, "rest"], rate_per_second=1000.0)
    t0 = campaign.bucket_at
    step_at(campaign, t0 + timedelta(seconds=1))
    assert member_states(campaign) == {"sent": 5, "pending": 15}
    commands = Command.objects.filter(pk__in=Member.objects.filter(campaign=campaign).values("command_id"))
    assert commands.count() == 5
    assert {(command.kind, command.params["provision_type"]) for command in commands} == {("reprovision", "HARDWARE")}

    finish_commands()
    step_at(campaign, t0 + timedelta(seconds=2))

    campaign.refresh_from_db()
    assert campaign.current_wave == 2
    assert Member.objects.filter(campaign=campaign, wave=1, state="succeeded").count() == 5


def test_a_wave_below_its_threshold_halts_the_campaign_with_the_reason(fleet):
    campaign = started(waves=[10, "rest"], success_threshold=0.8)
    t0 = campaign.bucket_at
    step_at(campaign, t0 + timedelta(seconds=1))
    sent = list(Command.objects.filter(state="QUEUED").order_by("pk").values_list("pk", flat=True))
    Command.objects.filter(pk__in=sent[:3]).update(state="FAILED", last_error="box said no", finished_at=timezone.now())
    finish_commands()

    step_at(campaign, t0 + timedelta(seconds=2))

    campaign.refresh_from_db()
    assert campaign.state == "halted"
    assert campaign.halt_reason.startswith("wave 1: 70.0% succeeded (7 of 10; 0 skipped), below the threshold of 80.0%")
    assert member_states(campaign) == {"succeeded": 7, "failed": 3, "pending": 10}
    assert services.campaign_report(campaign=campaign)["failures"] == [{"error": "box said no", "count": 3}]
    progress = engine.progress(campaign=campaign)
    assert (progress["state"], progress["failed"], progress["remaining"], progress["halt_reason"]) == (
        "halted",
        3,
        10,
        campaign.halt_reason,
    )


def test_the_last_wave_done_finishes_the_campaign(fleet):
    campaign = started(waves=["rest"])
    t0 = campaign.bucket_at
    step_at(campaign, t0 + timedelta(seconds=1))
    finish_commands()
    step_at(campaign, t0 + timedelta(seconds=2))

    campaign.refresh_from_db()
    assert campaign.state == "finished"
    report = services.campaign_report(campaign=campaign)
    assert report["waves"][0]["succeeded"] == 20
    assert report["seconds_to_finish"] is not None


# --- the edge cases --------------------------------------------------------------------------------------------------


def test_a_box_with_the_same_command_waiting_is_skipped_with_the_reason(fleet):
    waiting = provisioning.command_create(box=fleet[0], kind="reprovision", params=REPROVISION)
    other_kind = provisioning.command_create(box=fleet[1], kind="refresh")
    campaign = started(waves=["rest"])

    step_at(campaign, campaign.bucket_at + timedelta(seconds=1))

    first = Member.objects.get(campaign=campaign, box=fleet[0])
    second = Member.objects.get(campaign=campaign, box=fleet[1])
    assert (first.state, first.note, first.command_id) == (
        "skipped",
        "the same command is already waiting for this box",
        None,
    )
    assert second.state == "sent" and second.command_id not in (None, other_kind.pk)  # queued behind the refresh
    assert Command.objects.filter(box=fleet[0]).get() == waiting  # no second reprovision


def test_a_device_removed_since_the_start_is_skipped_and_one_removed_in_flight_fails(fleet):
    campaign = started(waves=[2, "rest"], success_threshold=0.0)  # the removal in flight must not halt it
    first_wave = list(Member.objects.filter(campaign=campaign, wave=1).order_by("id"))
    later = Member.objects.filter(campaign=campaign, wave=2).first()
    step_at(campaign, campaign.bucket_at + timedelta(seconds=1))
    in_flight = Member.objects.get(pk=first_wave[0].pk)
    assert in_flight.state == "sent"
    in_flight_box = provisioning.SetTopBox.objects.get(pk=in_flight.box_id)
    in_flight_box.device.delete()  # its box and its command go with it
    provisioning.SetTopBox.objects.get(pk=later.box_id).device.delete()

    finish_commands()
    step_at(campaign, campaign.bucket_at + timedelta(seconds=2))
    step_at(campaign, campaign.bucket_at + timedelta(seconds=3))

    in_flight.refresh_from_db()
    later.refresh_from_db()
    assert (in_flight.state, in_flight.error) == ("failed", engine.GONE_IN_FLIGHT)
    assert (later.state, later.note) == ("skipped", engine.REMOVED)
    assert later.label  # still named in the report and the CSV


@pytest.fixture
def head_end(settings):
    settings.CAS_GATEWAY_URL = "inprocess:"
    gateway.reset_gateway_cache()
    yield gateway.default_simulator()
    gateway.reset_gateway_cache()


def test_a_card_with_pending_requests_gets_its_request_queued_behind_them(head_end):
    subscription = SubscriptionFactory()
    busy, idle = SmartcardFactory(subscription=subscription), SmartcardFactory(subscription=subscription)
    earlier = conax.request_create(
        draft=conax.mail(smartcard=busy, message="first"), actor=conax.Actor(None), options=conax.Options()
    )
    campaign = started(
        target_kind="smartcards",
        action_kind="conax",
        action="SEND_MAIL_MESSAGE_TO_CLIENT",
        params={"message": "Maintenance tonight"},
        waves=["rest"],
    )
    step_at(campaign, campaign.bucket_at + timedelta(seconds=1))
    member = Member.objects.get(campaign=campaign, smartcard=busy)
    assert (member.state, member.note) == ("sent", "queued behind 1 pending request(s) of this card")
    assert Member.objects.get(campaign=campaign, smartcard=idle).note == ""
    ours = ProvisioningRequest.objects.get(pk=member.request_id)
    assert ours.sequence_number == earlier.sequence_number + 1
    assert ours.parameters_set[1]["message"] == "Maintenance tonight"

    assert pipeline.request_process(number=ours.pk) is None  # the card's earlier request goes first
    assert pipeline.request_process(number=earlier.pk) == "COMPLETED"
    assert pipeline.request_process(number=ours.pk) == "COMPLETED"
    pipeline.request_process(number=Member.objects.get(campaign=campaign, smartcard=idle).request_id)
    step_at(campaign, campaign.bucket_at + timedelta(seconds=2))

    assert member_states(campaign) == {"succeeded": 2}
    assert Campaign.objects.get(pk=campaign.pk).state == "finished"


def test_a_conax_rule_refusing_one_card_fails_that_member_only(head_end):
    from tests.conax.factories import ServiceFactory

    sport = ServiceFactory(code="SPORT")
    subscription = SubscriptionFactory(services=[sport])
    member_card = SmartcardFactory(subscription=subscription)
    stray = SmartcardFactory(subscription=SubscriptionFactory())  # SPORT is not in its subscription
    campaign = started(
        target_kind="smartcards",
        action_kind="conax",
        action="ADD_SUBSCRIPTIONS",
        params={"service": "SPORT"},
        waves=["rest"],
    )

    step_at(campaign, campaign.bucket_at + timedelta(seconds=1))

    assert Member.objects.get(campaign=campaign, smartcard=member_card).state == "sent"
    refused = Member.objects.get(campaign=campaign, smartcard=stray)
    assert (refused.state, refused.request_id) == ("failed", None)
    assert refused.error == "CONSTRAINT_VIOLATION: service does not belong to the subscription"
    assert ProvisioningRequest.objects.filter(smartcard=stray).count() == 0


def test_cas_boxes_get_their_own_pairing_module_queries_and_a_box_removed_before_its_release_is_skipped(head_end):
    kept, gone = SetTopBoxFactory(), SetTopBoxFactory()
    campaign = started(
        target_kind="set_top_boxes",
        action_kind="conax",
        action="GET_PAIRING_STATUS_FOR_PAIRING_MODULE",
        params={},
        waves=["rest"],
    )
    gone_id = gone.pk
    gone.delete()

    step_at(campaign, campaign.bucket_at + timedelta(seconds=1))

    sent = Member.objects.get(campaign=campaign, cas_box_id=kept.pk)
    request = ProvisioningRequest.objects.get(pk=sent.request_id)
    assert (sent.state, request.type, request.set_top_box_id) == (
        "sent",
        "GET_PAIRING_STATUS_FOR_PAIRING_MODULE",
        kept.pk,
    )
    skipped = Member.objects.get(campaign=campaign, cas_box_id=gone_id)
    assert (skipped.state, skipped.note, skipped.request_id) == ("skipped", engine.REMOVED, None)
    assert skipped.released_at == skipped.finished_at == sent.released_at
    assert ProvisioningRequest.objects.count() == 1
