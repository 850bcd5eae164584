"""Campaigns on the staff REST API: every endpoint, every illegal move answers its documented error in the staff
API's body and changes nothing (state, members, audit trail), model permissions. PostgreSQL; no worker (the moves'
kicks wait for a commit that a test transaction never makes; the engine tests run one)."""

from __future__ import annotations

import csv
import io

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Permission
from django.db import transaction

from campaigns import services
from campaigns.choices import CampaignState, MemberState
from campaigns.models import Campaign, Member
from portal.kernel import services as kernel
from portal.kernel.choices import TokenPurpose
from tests.campaigns.support import boxes, definition
from tests.factories import StaffFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
API = "/api/v1/campaigns/"
S = CampaignState
BODY = {
    "name": "hardware key rotation",
    "target_kind": "devices",
    "target_filters": {},
    "action_kind": "command",
    "action": "reprovision",
    "params": {"provision_type": "HARDWARE"},
    "waves": ["10%", "rest"],
    "rate_per_second": 50,
}


@pytest.fixture
def fleet():
    return boxes([f"127.0.0.1:{11000 + n}" for n in range(20)])


def draft(**overrides) -> Campaign:
    return services.campaign_create(definition=definition(**overrides))


def in_state(state: str) -> Campaign:
    """A campaign brought to ``state`` through the services (a halt as the engine makes it, under the row lock)."""
    campaign = draft()
    if state == S.SCHEDULED:
        return services.campaign_schedule(campaign=campaign)
    if state == S.DRAFT:
        return campaign
    services.campaign_start(campaign=campaign)
    if state == S.PAUSED:
        services.campaign_pause(campaign=campaign)
    elif state == S.HALTED:
        with transaction.atomic():
            locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
            services.campaign_halt(campaign=locked, reason="wave 1: 50 % succeeded, below 95 %")
    elif state == S.CANCELLED:
        services.campaign_cancel(campaign=campaign)
    elif state == S.FINISHED:
        Member.objects.filter(campaign=campaign).update(state=MemberState.SUCCEEDED)
        with transaction.atomic():
            services.campaign_finish(campaign=Campaign.objects.select_for_update().get(pk=campaign.pk))
    return Campaign.objects.get(pk=campaign.pk)


def fingerprint(campaign: Campaign) -> tuple:
    row = Campaign.objects.filter(pk=campaign.pk).values().get()
    members = list(Member.objects.filter(campaign=campaign).order_by("id").values_list("id", "state", "wave"))
    return row, members, LogEntry.objects.count()


# --- definition ----------------------------------------------------------------------------------------------------


def test_create_makes_a_draft_through_the_service(staff_api, fleet, staff_user):
    response = staff_api.post(API, BODY, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["state"], body["waves"], body["created_by"]) == ("draft", ["10%", "rest"], "staff")
    assert Campaign.objects.get(pk=body["id"]).created_by == staff_user


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"action": "reboot"}, id="unknown-command"),
        pytest.param({"params": {"provision_type": "FLOPPY"}}, id="params-refused-by-provisioning"),
        pytest.param({"waves": ["rest", "10%"]}, id="rest-not-last"),
        pytest.param({"target_filters": {"model_id": "x"}}, id="invalid-filter-value"),
        pytest.param({"target_kind": "smartcards"}, id="cards-take-no-commands"),
        pytest.param({"window_timezone": "Mars/Olympus"}, id="unknown-zone"),
    ],
)
def test_a_bad_definition_is_400_invalid_campaign_and_writes_nothing(staff_api, change):
    response = staff_api.post(API, {**BODY, **change}, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "INVALID_CAMPAIGN")
    assert response.json()["detail"]
    assert not Campaign.objects.exists()


@pytest.mark.parametrize(
    "change",
    [{"rate_per_second": "fast"}, {"waves": []}, {"name": ""}, {"target_kind": "toasters"}, {"success_threshold": 2}],
)
def test_a_mistyped_field_is_drf_validation_body(staff_api, change):
    response = staff_api.post(API, {**BODY, **change}, format="json")

    assert response.status_code == 400
    assert set(response.json()) <= set(BODY) | {"success_threshold"}
    assert not Campaign.objects.exists()


def test_update_changes_a_draft_and_refuses_anything_later(staff_api, fleet):
    campaign = draft()

    response = staff_api.put(f"{API}{campaign.pk}/", {**BODY, "name": "renamed"}, format="json")
    assert (response.status_code, response.json()["name"]) == (200, "renamed")

    services.campaign_start(campaign=campaign)
    before = fingerprint(campaign)
    response = staff_api.put(f"{API}{campaign.pk}/", {**BODY, "name": "too late"}, format="json")

    assert (response.status_code, response.json()["code"]) == (409, "CAMPAIGN_NOT_EDITABLE")
    assert fingerprint(campaign) == before


def test_list_filters_by_state_and_name(staff_api):
    running, drafted = in_state(S.RUNNING), draft(name="other")

    by_state = staff_api.get(API, {"state": "running"}).json()
    by_name = staff_api.get(API, {"q": "oth"}).json()

    assert [c["id"] for c in by_state["results"]] == [running.pk]
    assert [c["id"] for c in by_name["results"]] == [drafted.pk]
    assert staff_api.get(API, {"state": "exploded"}).status_code == 400


def test_retrieve_and_404(staff_api):
    campaign = draft()

    assert staff_api.get(f"{API}{campaign.pk}/").json()["name"] == "key rotation"
    assert staff_api.get(f"{API}{campaign.pk + 999}/").status_code == 404


def test_preview_counts_the_target_now(staff_api, fleet):
    campaign = draft()

    assert staff_api.get(f"{API}{campaign.pk}/preview/").json() == {"count": 20}
    boxes(["127.0.0.1:12001"])
    assert staff_api.get(f"{API}{campaign.pk}/preview/").json() == {"count": 21}


# --- moves ---------------------------------------------------------------------------------------------------------


def test_start_freezes_the_members(staff_api, fleet):
    campaign = draft()

    response = staff_api.post(f"{API}{campaign.pk}/start/")

    assert response.status_code == 200
    assert (response.json()["state"], response.json()["total"], response.json()["wave_count"]) == ("running", 20, 2)
    assert Member.objects.filter(campaign=campaign).count() == 20


@pytest.mark.parametrize(
    ("move", "start", "end"),
    [
        ("schedule", S.DRAFT, S.SCHEDULED),
        ("start", S.SCHEDULED, S.RUNNING),
        ("pause", S.RUNNING, S.PAUSED),
        ("resume", S.PAUSED, S.RUNNING),
        ("resume", S.HALTED, S.RUNNING),
        ("cancel", S.RUNNING, S.CANCELLED),
        ("cancel", S.DRAFT, S.CANCELLED),
    ],
)
def test_each_legal_move(staff_api, fleet, move, start, end):
    campaign = in_state(start)

    response = staff_api.post(f"{API}{campaign.pk}/{move}/")

    assert (response.status_code, response.json()["state"]) == (200, end)
    assert Campaign.objects.get(pk=campaign.pk).state == end
    entry = LogEntry.objects.filter(object_pk=str(campaign.pk)).order_by("-pk").first()
    assert entry.actor.username == "staff"


ILLEGAL = [
    ("schedule", S.RUNNING, "CAMPAIGN_NOT_SCHEDULABLE"),
    ("schedule", S.SCHEDULED, "CAMPAIGN_NOT_SCHEDULABLE"),
    ("start", S.RUNNING, "CAMPAIGN_NOT_STARTABLE"),
    ("start", S.PAUSED, "CAMPAIGN_NOT_STARTABLE"),
    ("start", S.CANCELLED, "CAMPAIGN_NOT_STARTABLE"),
    ("start", S.FINISHED, "CAMPAIGN_NOT_STARTABLE"),
    ("pause", S.DRAFT, "CAMPAIGN_NOT_PAUSABLE"),
    ("pause", S.PAUSED, "CAMPAIGN_NOT_PAUSABLE"),
    ("pause", S.HALTED, "CAMPAIGN_NOT_PAUSABLE"),
    ("resume", S.RUNNING, "CAMPAIGN_NOT_RESUMABLE"),
    ("resume", S.DRAFT, "CAMPAIGN_NOT_RESUMABLE"),
    ("resume", S.CANCELLED, "CAMPAIGN_NOT_RESUMABLE"),
    ("cancel", S.CANCELLED, "CAMPAIGN_NOT_CANCELLABLE"),
    ("cancel", S.FINISHED, "CAMPAIGN_NOT_CANCELLABLE"),
    ("retry-failed", S.DRAFT, "CAMPAIGN_NOT_RETRYABLE"),
    ("retry-failed", S.RUNNING, "CAMPAIGN_NOT_RETRYABLE"),
    ("retry-failed", S.CANCELLED, "CAMPAIGN_NOT_RETRYABLE"),
    ("retry-failed", S.FINISHED, "CAMPAIGN_NOTHING_TO_RETRY"),
]


@pytest.mark.parametrize(("move", "start", "code"), ILLEGAL, ids=[f"{m}-from-{s}" for m, s, _ in ILLEGAL])
def test_an_illegal_move_is_409_with_its_code_and_changes_nothing(staff_api, fleet, move, start, code):
    campaign = in_state(start)
    before = fingerprint(campaign)

    response = staff_api.post(f"{API}{campaign.pk}/{move}/")

    assert response.status_code == 409
    assert response.json()["code"] == code
    assert set(response.json()) == {"code", "detail"}
    assert fingerprint(campaign) == before


def test_retry_failed_sends_the_failures_again_as_a_new_wave(staff_api, fleet):
    campaign = in_state(S.HALTED)
    failed = list(Member.objects.filter(campaign=campaign).values_list("pk", flat=True)[:3])
    Member.objects.filter(pk__in=failed).update(state=MemberState.FAILED, error="box unreachable")

    response = staff_api.post(f"{API}{campaign.pk}/retry-failed/")

    assert (response.status_code, response.json()["state"], response.json()["current_wave"]) == (200, "running", 3)
    retries = Member.objects.filter(campaign=campaign, wave=3)
    assert sorted(retries.values_list("retry_of_id", flat=True)) == sorted(failed)


# --- report, members, export ---------------------------------------------------------------------------------------


def test_report_counts_by_wave_and_groups_failures(staff_api, fleet):
    campaign = in_state(S.RUNNING)
    wave1 = Member.objects.filter(campaign=campaign, wave=1)
    Member.objects.filter(pk__in=wave1.values("pk")).update(state=MemberState.FAILED, error="ERROR_UNAVAILABLE")

    body = staff_api.get(f"{API}{campaign.pk}/report/").json()

    assert [(w["wave"], w["total"], w["failed"], w["pending"]) for w in body["waves"]] == [(1, 2, 2, 0), (2, 18, 0, 18)]
    assert body["failures"] == [{"error": "ERROR_UNAVAILABLE", "count": 2}]
    assert (body["state"], body["total"], body["seconds_to_finish"]) == ("running", 20, None)


def test_members_paginate_and_filter_by_outcome_and_wave(staff_api, fleet):
    campaign = in_state(S.RUNNING)
    first = Member.objects.filter(campaign=campaign).order_by("id").first()
    Member.objects.filter(pk=first.pk).update(state=MemberState.FAILED, error="x")

    page = staff_api.get(f"{API}{campaign.pk}/members/", {"limit": 5}).json()
    failed = staff_api.get(f"{API}{campaign.pk}/members/", {"outcome": "failed"}).json()
    wave2 = staff_api.get(f"{API}{campaign.pk}/members/", {"wave": 2}).json()

    assert (page["count"], len(page["results"]), page["results"][0]["id"]) == (20, 5, first.pk)
    assert [m["id"] for m in failed["results"]] == [first.pk]
    assert wave2["count"] == 18 and {m["wave"] for m in wave2["results"]} == {2}
    assert staff_api.get(f"{API}{campaign.pk}/members/", {"outcome": "exploded"}).status_code == 400
    assert staff_api.get(f"{API}{campaign.pk}/members/", {"wave": "one"}).status_code == 400


def test_export_is_the_core_csv_and_is_audited(staff_api, fleet):
    campaign = in_state(S.RUNNING)

    response = staff_api.get(f"{API}{campaign.pk}/export/")

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["member_id", "wave", "label", "state"]
    assert len(rows) == 21
    entry = LogEntry.objects.filter(action=LogEntry.Action.ACCESS, object_pk=str(campaign.pk)).get()
    assert entry.additional_data["rows"] == 20


# --- permissions ---------------------------------------------------------------------------------------------------


def token_for(user) -> str:
    return f"Token {kernel.token_issue(user=user, purpose=TokenPurpose.STAFF_API).raw}"


def test_anonymous_and_non_support_are_refused(api_client, fleet):
    campaign = draft()
    assert api_client.get(API).status_code == 401
    outsider = StaffFactory(username="outsider")
    outsider.groups.clear()
    api_client.credentials(HTTP_AUTHORIZATION=token_for(outsider))

    assert api_client.get(API).status_code == 403
    assert api_client.post(f"{API}{campaign.pk}/start/").status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).state == S.DRAFT


def test_support_staff_without_change_permission_read_but_cannot_move(api_client, fleet):
    campaign = draft()
    user = StaffFactory(username="reader")
    support = user.groups.get(name="support")
    change = Permission.objects.get(codename="change_campaign")
    support.permissions.remove(change)
    api_client.credentials(HTTP_AUTHORIZATION=token_for(user))

    assert api_client.get(f"{API}{campaign.pk}/").status_code == 200
    assert api_client.post(f"{API}{campaign.pk}/start/").status_code == 403
    assert api_client.put(f"{API}{campaign.pk}/", BODY, format="json").status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).state == S.DRAFT


# --- the OpenAPI document ------------------------------------------------------------------------------------------


def test_every_campaign_operation_is_documented_with_its_errors(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operations = {
        (method, path): op
        for path, item in schema["paths"].items()
        if path.startswith(API)
        for method, op in item.items()
        if method in ("get", "post", "put", "patch")
    }
    moves = ("start", "schedule", "pause", "resume", "cancel", "retry-failed")

    assert len(operations) == 15  # list, create, read, put, patch, preview, six moves, report, members, export
    for (method, path), op in operations.items():
        assert op["tags"] == ["campaigns"] and op["summary"] and op["description"], (method, path)
        assert {"400", "401", "403", "404"} <= set(op["responses"]), (method, path)
    for move in moves:
        refusal = operations[("post", f"{API}{{id}}/{move}/")]["responses"]["409"]
        assert refusal["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
        assert "CAMPAIGN_NOT_" in refusal["description"]
    assert "409" in operations[("put", f"{API}{{id}}/")]["responses"]
    members = {p["name"] for p in operations[("get", f"{API}{{id}}/members/")]["parameters"]}
    assert {"outcome", "wave", "limit", "offset"} <= members
