"""Campaign definitions, the state machine (every illegal move has its named error and changes nothing), the
freeze (one statement, waves in SQL), audit entries, report and CSV. PostgreSQL; no worker (the engine tests have
one)."""

from __future__ import annotations

import csv
import io
from datetime import time

import pytest
from auditlog.models import LogEntry
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from campaigns import exceptions, services
from campaigns.choices import CampaignState
from campaigns.models import Campaign, Member
from tests.campaigns.support import boxes, definition, member_states
from tests.conax.factories import ServiceFactory, SmartcardFactory, SubscriptionFactory
from tests.factories import DeviceModelFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
S = CampaignState


@pytest.fixture
def fleet():
    return boxes([f"127.0.0.1:{10000 + n}" for n in range(40)])


def states_of(campaign) -> str:
    return Campaign.objects.get(pk=campaign.pk).state


# --- definitions ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param({"name": ""}, "name", id="empty-name"),
        pytest.param({"target_kind": "toasters"}, "target_kind", id="unknown-target"),
        pytest.param({"target_filters": {"model_id": "x"}}, None, id="invalid-filter-value"),
        pytest.param({"action": "reboot"}, "action", id="unknown-command"),
        pytest.param({"params": {"provision_type": "FLOPPY"}}, "params", id="command-params-refused-by-provisioning"),
        pytest.param({"waves": ["rest", "10%"]}, "waves", id="rest-not-last"),
        pytest.param({"waves": ["0%"]}, "waves", id="zero-share"),
        pytest.param({"waves": [0]}, "waves", id="zero-size"),
        pytest.param({"rate_per_second": 0}, "rate_per_second", id="zero-rate"),
        pytest.param({"rate_per_group": -1.0}, "rate_per_group", id="negative-group-rate"),
        pytest.param({"success_threshold": 1.5}, "success_threshold", id="threshold-above-one"),
        pytest.param({"window_start": time(1)}, "window_start", id="window-without-end"),
        pytest.param({"window_timezone": "Mars/Olympus"}, "waves", id="unknown-zone"),
        pytest.param({"target_kind": "smartcards"}, None, id="cards-cannot-take-commands"),
        pytest.param(
            {"action_kind": "conax", "action": "SEND_MAIL_MESSAGE_TO_CLIENT", "target_kind": "smartcards",
             "params": {"message": "x" * 142}},
            "params", id="mail-too-long-for-conax",
        ),
        pytest.param(
            {"action_kind": "conax", "action": "SEND_REPEATING_BARK_MESSAGE_TO_CLIENT", "target_kind": "smartcards",
             "params": {"message": "hi", "interval": 15}},
            "params", id="bark-interval-not-in-steps-of-ten",
        ),
        pytest.param(
            {"action_kind": "conax", "action": "UPDATE_CA_PIN_TO_GIVEN_VALUE", "target_kind": "smartcards",
             "params": {}},
            "action", id="no-pin-in-a-campaign",
        ),
        pytest.param(
            {"action_kind": "conax", "action": "ADD_SUBSCRIPTIONS", "target_kind": "smartcards",
             "params": {"service": "NOPE"}},
            "params", id="unknown-service",
        ),
    ],
)  # fmt: skip
def test_an_invalid_definition_is_refused_and_nothing_is_written(overrides, field):
    with pytest.raises(exceptions.InvalidCampaign) as caught:
        services.campaign_create(definition=definition(**overrides))
    if field is not None:
        assert caught.value.details.get("field") == field
    assert Campaign.objects.count() == 0


def test_a_definition_is_stored_cleaned_and_its_creation_audited(staff_user):
    campaign = services.campaign_create(definition=definition(waves=["1%", 10, "25.5%"]), created_by=staff_user)

    assert campaign.waves == ["1%", "10", "25.5%", "rest"]
    assert campaign.state == S.DRAFT
    entry = LogEntry.objects.get_for_object(campaign).get()
    assert entry.action == LogEntry.Action.CREATE


def test_preview_counts_the_target_now(fleet):
    other_model = DeviceModelFactory()
    boxes(["127.0.0.1:9"], model=other_model)
    campaign = services.campaign_create(definition=definition(target_filters={"model_id": str(other_model.pk)}))

    assert services.campaign_preview(campaign=campaign) == 1
    assert services.campaign_preview(campaign=services.campaign_create(definition=definition())) == 41


# --- the freeze ----------------------------------------------------------------------------------------------------


def test_start_freezes_the_members_in_one_statement_with_waves_given_in_sql(fleet):
    campaign = services.campaign_create(definition=definition(waves=["5%", 10, "rest"]))

    with CaptureQueriesContext(connection) as queries:
        services.campaign_start(campaign=campaign)

    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT INTO campaigns_member")]
    assert len(inserts) == 1
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    assert not [sql for sql in reads if "provisioning_settopbox" in sql]  # no subject row passes through Python
    waves = dict(Member.objects.filter(campaign=campaign).values_list("wave").annotate(n=Count("id")))
    assert waves == {1: 2, 2: 10, 3: 28}  # 5 % of 40 = 2, then 10, then the rest
    campaign.refresh_from_db()
    assert (campaign.state, campaign.total, campaign.wave_count, campaign.current_wave) == (S.RUNNING, 40, 3, 1)
    assert set(Member.objects.filter(campaign=campaign).values_list("box_id", flat=True)) == {b.pk for b in fleet}
    assert member_states(campaign) == {"pending": 40}


def test_the_freeze_takes_the_target_as_it_is_at_the_start(fleet):
    campaign = services.campaign_create(definition=definition())
    boxes(["127.0.0.1:1"], model=fleet[0].device.model)

    services.campaign_start(campaign=campaign)

    assert Member.objects.filter(campaign=campaign).count() == 41


def test_a_subscription_target_freezes_its_smartcards():
    service = ServiceFactory(code="SPORT")
    subscription = SubscriptionFactory(services=[service])
    cards = SmartcardFactory.create_batch(3, subscription=subscription)
    SmartcardFactory()  # another subscription's card
    campaign = services.campaign_create(
        definition=definition(
            target_kind="subscriptions",
            target_filters={"number": subscription.number},
            action_kind="conax",
            action="ADD_SUBSCRIPTIONS",
            params={"service": "SPORT"},
        )
    )

    services.campaign_start(campaign=campaign)

    frozen = set(Member.objects.filter(campaign=campaign).values_list("smartcard_id", flat=True))
    assert frozen == {card.pk for card in cards}


# --- the state machine ---------------------------------------------------------------------------------------------

MOVES = {
    "schedule": (services.campaign_schedule, exceptions.NotSchedulable),
    "start": (services.campaign_start, exceptions.NotStartable),
    "pause": (services.campaign_pause, exceptions.NotPausable),
    "resume": (services.campaign_resume, exceptions.NotResumable),
    "cancel": (services.campaign_cancel, exceptions.NotCancellable),
    "retry": (services.campaign_retry_failed, exceptions.NotRetryable),
}
LEGAL = {
    S.DRAFT: {"schedule": S.SCHEDULED, "start": S.RUNNING, "cancel": S.CANCELLED},
    S.SCHEDULED: {"start": S.RUNNING, "cancel": S.CANCELLED},
    S.RUNNING: {"pause": S.PAUSED, "cancel": S.CANCELLED},
    S.PAUSED: {"resume": S.RUNNING, "cancel": S.CANCELLED, "retry": S.RUNNING},
    S.HALTED: {"resume": S.RUNNING, "cancel": S.CANCELLED, "retry": S.RUNNING},
    S.CANCELLED: {},
    S.FINISHED: {"retry": S.RUNNING},
}


def campaign_in(state: str, fleet) -> Campaign:
    """A campaign brought to ``state`` by services only (halted and finished through the engine's moves), with one
    failed member so that a retry has something to retry."""
    campaign = services.campaign_create(definition=definition())
    if state == S.SCHEDULED:
        services.campaign_schedule(campaign=campaign)
    if state in (S.RUNNING, S.PAUSED, S.HALTED, S.CANCELLED, S.FINISHED):
        services.campaign_start(campaign=campaign)
        Member.objects.filter(pk=Member.objects.filter(campaign=campaign).first().pk).update(state="failed")
    if state == S.PAUSED:
        services.campaign_pause(campaign=campaign)
    if state == S.HALTED:
        services.campaign_halt(campaign=services._lock(campaign.pk), reason="test")
    if state == S.FINISHED:
        services.campaign_finish(campaign=services._lock(campaign.pk))
    if state == S.CANCELLED:
        services.campaign_cancel(campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.state == state
    return campaign


@pytest.mark.parametrize("state", list(LEGAL))
@pytest.mark.parametrize("move", list(MOVES))
def test_every_move_from_every_state_is_done_or_refused_by_name(state, move, fleet):
    campaign = campaign_in(state, fleet)
    service, error = MOVES[move]
    before_members, before_entries = member_states(campaign), LogEntry.objects.get_for_object(campaign).count()

    if move in LEGAL[state]:
        service(campaign=campaign)
        assert states_of(campaign) == LEGAL[state][move]
        entry = LogEntry.objects.get_for_object(campaign).order_by("-id").first()
        assert entry.additional_data["action"].startswith(f"campaign_{move}")
        return
    with pytest.raises(error) as caught:
        service(campaign=campaign)
    assert caught.value.details["state"] == state
    assert caught.value.category == "conflict"
    assert states_of(campaign) == state
    assert member_states(campaign) == before_members
    assert LogEntry.objects.get_for_object(campaign).count() == before_entries


def test_only_a_draft_can_be_edited(fleet):
    campaign = campaign_in(S.RUNNING, fleet)
    with pytest.raises(exceptions.NotEditable):
        services.campaign_update(campaign=campaign, definition=definition(name="other"))
    assert Campaign.objects.get(pk=campaign.pk).name == "key rotation"


def test_cancel_skips_every_member_not_yet_sent_in_one_statement(fleet):
    campaign = campaign_in(S.RUNNING, fleet)

    services.campaign_cancel(campaign=campaign)

    assert member_states(campaign) == {"failed": 1, "skipped": 39}
    assert set(Member.objects.filter(campaign=campaign, state="skipped").values_list("note", flat=True)) == {
        "campaign cancelled before it was sent"
    }


def test_retry_adds_the_failed_members_as_a_new_wave_once(fleet):
    campaign = campaign_in(S.HALTED, fleet)

    services.campaign_retry_failed(campaign=campaign)
    services.campaign_pause(campaign=campaign)

    campaign.refresh_from_db()
    retried = Member.objects.filter(campaign=campaign, wave=3)
    assert (campaign.current_wave, campaign.wave_count, retried.count()) == (3, 3, 1)
    assert retried.get().retry_of.state == "failed"
    with pytest.raises(exceptions.NothingToRetry):
        services.campaign_retry_failed(campaign=campaign)


def test_report_and_csv(fleet):
    campaign = campaign_in(S.FINISHED, fleet)
    Member.objects.filter(campaign=campaign, state="failed").update(error="=HYPERLINK(evil)")

    report = services.campaign_report(campaign=campaign)
    out = io.StringIO()
    rows = services.campaign_export_csv(campaign=campaign, out=out)

    assert [w["total"] for w in report["waves"]] == [4, 36]
    assert report["failures"] == [{"error": "=HYPERLINK(evil)", "count": 1}]
    assert rows == 40
    lines = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(lines) == 40
    assert [line["error"] for line in lines if line["state"] == "failed"] == ["'=HYPERLINK(evil)"]
