"""The campaigns' console page: the definition form goes through the services, the buttons shown are exactly those
that apply, a stale button says so and changes nothing, destructive ones confirm first, the report and the export."""

from __future__ import annotations

import csv
import io
import re

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Permission
from django.urls import reverse

from campaigns.choices import CampaignState, MemberState
from campaigns.models import Campaign, Member
from tests.campaigns.support import boxes
from tests.campaigns.test_api import draft, fingerprint, in_state
from tests.factories import StaffFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
S = CampaignState
BUTTONS = ("start", "schedule", "pause", "resume", "retry_failed", "cancel")


@pytest.fixture
def fleet():
    return boxes([f"127.0.0.1:{13000 + n}" for n in range(20)])


@pytest.fixture
def console(client, staff_user):
    client.force_login(staff_user)
    return client


def page(campaign: Campaign) -> str:
    return reverse("admin:campaigns_campaign_change", args=[campaign.pk])


def act(campaign: Campaign, name: str) -> str:
    return reverse("admin:campaigns_campaign_act", args=[campaign.pk, name])


def buttons(html: str) -> set[str]:
    return set(re.findall(r'data-action="([a-z_]+)"', html))


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


@pytest.mark.parametrize(
    ("state", "shown"),
    [
        (S.DRAFT, {"start", "schedule", "cancel"}),
        (S.SCHEDULED, {"start", "cancel"}),
        (S.RUNNING, {"pause", "cancel"}),
        (S.PAUSED, {"resume", "cancel"}),  # nothing failed yet: no Retry failed
        (S.HALTED, {"resume", "cancel"}),
        (S.CANCELLED, set()),
        (S.FINISHED, set()),
    ],
)
def test_the_buttons_shown_are_those_that_apply(console, fleet, state, shown):
    campaign = in_state(state)

    html = console.get(page(campaign)).content.decode()

    assert buttons(html) == shown
    assert ('name="_save"' in html) == (state == S.DRAFT)  # frozen once it leaves draft: no Save


def test_retry_failed_is_shown_only_while_a_failure_is_left_to_retry(console, fleet):
    campaign = in_state(S.HALTED)
    member = Member.objects.filter(campaign=campaign).first()
    Member.objects.filter(pk=member.pk).update(state=MemberState.FAILED, error="ERROR_UNAVAILABLE")

    assert "retry_failed" in buttons(console.get(page(campaign)).content.decode())
    console.post(act(campaign, "retry_failed"), {"confirmed": "1"})
    # Running again: the retry wave holds the failure; nothing more to retry once it is paused.
    console.post(act(campaign, "pause"))
    assert Campaign.objects.get(pk=campaign.pk).state == S.PAUSED
    assert "retry_failed" not in buttons(console.get(page(campaign)).content.decode())


@pytest.mark.parametrize(
    ("state", "name"),
    [(S.PAUSED, "pause"), (S.RUNNING, "start"), (S.CANCELLED, "cancel"), (S.DRAFT, "resume"), (S.FINISHED, "resume")],
)
def test_a_stale_button_says_so_and_changes_nothing(console, fleet, state, name):
    campaign = in_state(state)
    before = fingerprint(campaign)

    response = console.post(act(campaign, name), {"confirmed": "1"}, follow=True)

    assert response.redirect_chain[-1][0] == page(campaign)
    assert any("does not apply" in m for m in messages_of(response))
    assert fingerprint(campaign) == before


def test_a_destructive_button_asks_first_and_says_what_happens(console, fleet):
    campaign = in_state(S.RUNNING)
    before = fingerprint(campaign)

    asked = console.get(act(campaign, "cancel")).content.decode()
    unconfirmed = console.post(act(campaign, "cancel"))

    assert "Members not yet sent are skipped" in asked and 'name="confirmed"' in asked
    assert unconfirmed.status_code == 200 and fingerprint(campaign) == before
    done = console.post(act(campaign, "cancel"), {"confirmed": "1"}, follow=True)
    assert Campaign.objects.get(pk=campaign.pk).state == S.CANCELLED
    assert any("Cancelled" in m for m in messages_of(done))
    assert Member.objects.filter(campaign=campaign, state=MemberState.SKIPPED).count() == 20


def test_start_confirmation_says_how_many_members_the_target_holds_now(console, fleet):
    campaign = draft()

    asked = console.get(act(campaign, "start")).content.decode()

    assert "The target holds 20 members now." in asked
    assert "(draft)" not in asked  # the page names the campaign, not a state it may have left by the time it is read
    done = console.post(act(campaign, "start"), {"confirmed": "1"}, follow=True)
    assert Campaign.objects.get(pk=campaign.pk).state == S.RUNNING
    assert any("20 members frozen in 2 waves" in m for m in messages_of(done))


def test_a_plain_button_moves_at_once_and_is_audited(console, fleet, staff_user):
    campaign = in_state(S.RUNNING)

    console.post(act(campaign, "pause"))

    assert Campaign.objects.get(pk=campaign.pk).state == S.PAUSED
    entry = LogEntry.objects.filter(object_pk=str(campaign.pk)).order_by("-pk").first()
    assert (entry.actor, entry.additional_data["action"]) == (staff_user, "campaign_pause")


FORM = {
    "name": "night rotation",
    "target_kind": "devices",
    "target_filters": "{}",
    "action_kind": "command",
    "action": "reprovision",
    "params": '{"provision_type": "HARDWARE"}',
    "waves": '["10%", "rest"]',
    "rate_per_second": "20",
    "rate_per_group": "",
    "success_threshold": "0.9",
    "start_at_0": "",
    "start_at_1": "",
    "window_start": "",
    "window_end": "",
    "window_timezone": "UTC",
}


def test_the_add_form_creates_a_draft_through_the_service(console, fleet, staff_user):
    response = console.post(reverse("admin:campaigns_campaign_add"), FORM)

    assert response.status_code == 302, messages_of(response) or response.content.decode()[:2000]
    campaign = Campaign.objects.get()
    assert (campaign.state, campaign.created_by, campaign.waves) == (S.DRAFT, staff_user, ["10%", "rest"])
    html = console.get(page(campaign)).content.decode()
    assert "20 (counted now" in html  # the preview of the target


def test_a_definition_the_core_refuses_is_a_message_and_writes_nothing(console, fleet):
    bad = {**FORM, "params": '{"provision_type": "FLOPPY"}'}

    response = console.post(reverse("admin:campaigns_campaign_add"), bad, follow=True)

    assert response.status_code == 200
    assert not Campaign.objects.exists()
    assert any("FLOPPY" in m or "provision_type" in m for m in messages_of(response)), messages_of(response)


def test_editing_a_draft_goes_through_campaign_update(console, fleet):
    campaign = draft()

    response = console.post(page(campaign), {**FORM, "name": "renamed"})

    assert response.status_code == 302
    assert Campaign.objects.get(pk=campaign.pk).name == "renamed"


def test_a_started_campaign_refuses_a_form_post(console, fleet):
    campaign = in_state(S.RUNNING)
    before = fingerprint(campaign)

    assert console.post(page(campaign), {**FORM, "name": "renamed"}).status_code == 403
    assert fingerprint(campaign) == before


def test_the_report_shows_waves_failures_and_the_halt_reason(console, fleet):
    campaign = in_state(S.HALTED)
    wave1 = Member.objects.filter(campaign=campaign, wave=1).values("pk")
    Member.objects.filter(pk__in=wave1).update(state=MemberState.FAILED, error="ERROR_UNAVAILABLE")

    html = console.get(reverse("admin:campaigns_campaign_panel", args=[campaign.pk])).content.decode()

    assert "Halted by itself: wave 1: 50 % succeeded, below 95 %" in html
    assert "2 \N{MULTIPLICATION SIGN} ERROR_UNAVAILABLE" in html
    wave1_row = r'data-key="wave-1"><th scope="row">1</th><td>2</td>' + "<td>0</td>" * 3 + "<td>2</td>"
    assert re.search(wave1_row, html)
    assert "Export members (CSV)" in html


def test_the_list_filters_by_target_in_words(console, fleet):
    draft()
    html = console.get(reverse("admin:campaigns_campaign_changelist"), {"target_kind": "devices"}).content.decode()

    assert "key rotation" in html and "Devices" in html
    assert "devices.filters.DeviceFilter" not in html


def test_the_breadcrumb_carries_no_state(console, fleet):
    campaign = in_state(S.RUNNING)

    html = console.get(page(campaign)).content.decode()
    crumbs = html.split('<div class="breadcrumbs">', 1)[1].split("</div>", 1)[0]

    assert "key rotation" in crumbs and "running" not in crumbs.lower()


def test_export_is_the_member_csv_and_audited(console, fleet):
    campaign = in_state(S.RUNNING)

    response = console.get(reverse("admin:campaigns_campaign_export", args=[campaign.pk]))

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert (response.status_code, len(rows), rows[0][0]) == (200, 21, "member_id")
    assert LogEntry.objects.filter(action=LogEntry.Action.ACCESS, object_pk=str(campaign.pk)).count() == 1


def test_staff_without_change_permission_see_no_buttons_and_cannot_act(client, fleet):
    campaign = in_state(S.RUNNING)
    user = StaffFactory(username="reader")
    user.groups.get(name="support").permissions.remove(Permission.objects.get(codename="change_campaign"))
    client.force_login(user)

    html = client.get(page(campaign)).content.decode()

    assert buttons(html) == set()
    assert client.post(act(campaign, "pause")).status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).state == S.RUNNING
