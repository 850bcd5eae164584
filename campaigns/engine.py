"""The engine: for each running campaign inside its window, release the next members of its current wave within
the rate limits, record outcomes set-based, judge each wave at its end, and publish progress.

One step of a campaign is one transaction under its row lock (``SKIP LOCKED``: a second worker stepping the same
campaign at once leaves it alone). A member's move to SENT and the command (or Conax request) it gets are written in
that transaction, so a worker killed mid-step leaves either both or neither; what the broker loses after the commit
(a worker SIGKILL, a Redis restart) is sent again by the pipelines' own sweeps (``provisioning.tasks.commands_sweep``,
``conax.tasks.requests_dispatch``), because their tables, like the member table, are the source of truth.

Rate limits are token buckets over wall time kept in the campaign row (``bucket_tokens`` at ``bucket_at``; one per
group in ``group_tokens``): each step adds ``rate * elapsed`` (at most ``rate * CAMPAIGN_TICK_SECONDS``, at least
one member's worth) and spends one token per member released. Groups are device models for commands and the one
head-end for Conax requests.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, OuterRef, Q, Subquery
from django.utils import timezone

from campaigns import actions, plan, targets
from campaigns import services as campaign_services
from campaigns.choices import ActionKind, CampaignState, MemberState
from campaigns.models import Campaign, Member
from conax import services as conax
from conax.choices import LifeCycleState
from conax.exceptions import ConaxError
from conax.models import ProvisioningRequest, Smartcard
from conax.models import SetTopBox as CasBox
from portal.kernel.live import CampaignProgress, publish
from provisioning import services as provisioning
from provisioning.models import Command

log = logging.getLogger(__name__)
S, M = CampaignState, MemberState
MAX_PER_STEP = 5000  # members released in one transaction, whatever the rate
SCAN_FACTOR = 4  # with per-group limits, look this many times the budget ahead for members of groups with tokens
CHUNK = 500  # members per call of the pipelines' services
REMOVED = "device removed since the campaign started"
REQUEST_SUBJECT = {targets.CARD: "smartcard_id", targets.CAS_BOX: "set_top_box_id"}  # a member's subject: a request's
GONE_IN_FLIGHT = "its command or request was deleted while in flight (device removed)"


def tick() -> int:
    """The periodic run: start scheduled campaigns that are due, step every campaign that is running or still has
    members in flight. Returns how many campaigns were stepped."""
    now = timezone.now()
    due = Campaign.objects.filter(state=S.SCHEDULED).filter(Q(start_at__isnull=True) | Q(start_at__lte=now))
    for campaign in due:
        try:
            campaign_services.campaign_start(campaign=campaign)
        except campaign_services.NotStartable:
            continue  # started (or cancelled) by someone else meanwhile
    in_flight = Member.objects.filter(state=M.SENT).values("campaign_id")
    ids = list(
        Campaign.objects.filter(Q(state=S.RUNNING) | Q(pk__in=in_flight)).order_by("pk").values_list("pk", flat=True)
    )
    for pk in ids:
        step(campaign_id=pk)
    return len(ids)


@dataclass
class StepResult:
    released: int = 0
    synced: int = 0
    state: str = ""


def step(*, campaign_id: int, now: datetime | None = None) -> StepResult | None:
    """One step of one campaign; None when another worker holds it or it is gone."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update(skip_locked=True).filter(pk=campaign_id).first()
        if campaign is None:
            return None
        result = StepResult(synced=sync(campaign=campaign, now=now))
        if campaign.state == S.RUNNING:
            if _may_release(campaign, now):
                result.released = release(campaign=campaign, now=now)
            _judge_wave(campaign)
        result.state = campaign.state
    publish_progress(campaign=campaign)
    return result


def _may_release(campaign: Campaign, now: datetime) -> bool:
    if campaign.start_at is not None and campaign.start_at > now:
        return False
    return plan.in_window(now, campaign.window_start, campaign.window_end, campaign.window_timezone)


# --- release -------------------------------------------------------------------------------------------------------


def _refill(tokens: float, rate: float, elapsed: float) -> float:
    burst = max(1.0, rate * settings.CAMPAIGN_TICK_SECONDS)
    return min(burst, tokens + rate * max(0.0, elapsed))


def release(*, campaign: Campaign, now: datetime) -> int:
    """Release up to the rate limits' tokens of the current wave's pending members (in freeze order)."""
    elapsed = (now - campaign.bucket_at).total_seconds() if campaign.bucket_at else 0.0
    tokens = _refill(campaign.bucket_tokens, campaign.rate_per_second, elapsed)
    budget = min(int(tokens), MAX_PER_STEP)
    groups = _group_budgets(campaign, elapsed, now)
    picked = _pick(campaign, budget, groups) if budget > 0 else []
    for start in range(0, len(picked), CHUNK):
        chunk = picked[start : start + CHUNK]
        if campaign.action_kind == ActionKind.COMMAND:
            _release_commands(campaign, chunk, now)
        else:
            _release_requests(campaign, chunk, now)
    fields: dict[str, Any] = {"bucket_tokens": tokens - len(picked), "bucket_at": now}
    if groups is not None:
        for member in picked:
            groups[str(member.group_id)] -= 1
        fields["group_tokens"] = groups
    if elapsed > 0:
        fields["current_rate"] = round(0.5 * campaign.current_rate + 0.5 * len(picked) / elapsed, 3)
    Campaign.objects.filter(pk=campaign.pk).update(**fields)
    for name, value in fields.items():
        setattr(campaign, name, value)
    return len(picked)


def _group_budgets(campaign: Campaign, elapsed: float, now: datetime) -> defaultdict[str, float] | None:
    """Each group's tokens; a group not seen yet has been filling since the campaign (re)started."""
    rate = campaign.rate_per_group
    if rate is None:
        return None
    since = (now - campaign.bucket_at).total_seconds() if campaign.bucket_at else 0.0
    fresh = _refill(0.0, rate, since)
    buckets: defaultdict[str, float] = defaultdict(lambda: fresh)
    for group, tokens in (campaign.group_tokens or {}).items():
        buckets[group] = _refill(float(tokens), rate, elapsed)
    return buckets


def _pick(campaign: Campaign, budget: int, groups: defaultdict[str, float] | None) -> list[Member]:
    pending = Member.objects.filter(campaign=campaign, wave=campaign.current_wave, state=M.PENDING).order_by("id")
    # What the release reads of a member (it writes by UPDATE): any other field would be read deferred, a query each.
    fields = ("id", "group_id", "box_id", "smartcard_id", "cas_box_id")
    if groups is None:
        return list(pending.only(*fields)[:budget])
    picked: list[Member] = []
    taken: defaultdict[str, int] = defaultdict(int)
    for member in pending.only(*fields)[: budget * SCAN_FACTOR]:
        key = str(member.group_id)
        if taken[key] + 1 <= groups[key]:
            taken[key] += 1
            picked.append(member)
            if len(picked) == budget:
                break
    return picked


def _release_commands(campaign: Campaign, members: list[Member], now: datetime) -> None:
    """One ``commands_queue`` call for the chunk (it locks the boxes and refuses a box that has the same command
    waiting, or that is gone); the members take their outcome in this same transaction, set-based: one UPDATE for
    those that got a command (each its box's new command, by a correlated subquery on the command's box), one per
    reason for those refused. (Django's ``bulk_update`` builds a CASE per row and field: 2 s per 1 000 members.)"""
    by_box = {member.box_id: member for member in members if member.box_id is not None}
    result = provisioning.commands_queue(
        box_ids=list(by_box), kind=campaign.action, params=campaign.params, requested_by=campaign.created_by
    )
    if result.queued:
        new = Command.objects.filter(pk__in=[c.pk for c in result.queued], box_id=OuterRef("box_id")).values("pk")
        Member.objects.filter(pk__in=[by_box[c.box_id].pk for c in result.queued]).update(
            state=M.SENT, command_id=Subquery(new[:1]), released_at=now
        )
    skipped: defaultdict[str, list[int]] = defaultdict(list)
    for box_id, why in result.refused.items():
        skipped[REMOVED if "removed" in why else why[:255]].append(by_box[box_id].pk)
    # A subject that never had a box cannot be frozen for a command; kept in the total all the same.
    skipped[REMOVED] += [member.pk for member in members if member.box_id is None]
    for note, pks in skipped.items():
        if pks:
            Member.objects.filter(pk__in=pks).update(state=M.SKIPPED, note=note, finished_at=now, released_at=now)


def _release_requests(campaign: Campaign, members: list[Member], now: datetime) -> None:
    """One request per member through ``conax.services.request_create`` (``_create_requests``); the members take
    their outcome in this same transaction, set-based as in ``_release_commands``: one UPDATE per note for those
    sent (each its subject's new request, by a correlated subquery on the request's card or CAS box), one per error
    for those a Conax rule refused, one for those removed."""
    created, sent, refused = _create_requests(campaign, members)
    # A wave names each subject once (the freeze selects by ``pk IN``), so each has one of the chunk's new requests.
    subject = targets.subject_column(campaign.action_kind, campaign.action)
    new = ProvisioningRequest.objects.filter(pk__in=created, **{REQUEST_SUBJECT[subject]: OuterRef(subject)})
    for note, pks in sent.items():
        Member.objects.filter(pk__in=pks).update(
            state=M.SENT, request_id=Subquery(new.values("pk")[:1]), note=note, released_at=now
        )
    for (state, why), pks in refused.items():
        text = {"note": why} if state == M.SKIPPED else {"error": why}
        Member.objects.filter(pk__in=pks).update(state=state, finished_at=now, released_at=now, **text)


def _create_requests(
    campaign: Campaign, members: list[Member]
) -> tuple[list[int], dict[str, list[int]], dict[tuple[str, str], list[int]]]:
    """The new requests' numbers, the members sent by note and those refused by (state, error or note).

    Each request goes through ``request_create`` (its per-card sequence lock, the campaign's creator recorded as the
    request's, its dispatch after the commit), REGULAR priority so that EXPRESS traffic keeps going first. A card with
    requests still pending gets its request all the same: the pipeline sends a card's requests in order, so the
    member waits behind them (``note``).
    """
    cards = Smartcard.objects.select_related("subscription").in_bulk(
        [m.smartcard_id for m in members if m.smartcard_id]
    )
    boxes = CasBox.objects.select_related("subscription").in_bulk([m.cas_box_id for m in members if m.cas_box_id])
    waiting = dict(
        ProvisioningRequest.objects.filter(smartcard_id__in=list(cards), life_cycle_state=LifeCycleState.PENDING)
        .values_list("smartcard_id")
        .annotate(n=Count("number"))
    )
    actor, options = conax.Actor(campaign.created_by), conax.Options(process_immediately=True)
    created: list[int] = []
    sent: defaultdict[str, list[int]] = defaultdict(list)
    refused: defaultdict[tuple[str, str], list[int]] = defaultdict(list)
    for member in members:
        card, box = cards.get(member.smartcard_id), boxes.get(member.cas_box_id)
        if card is None and box is None:
            refused[M.SKIPPED, REMOVED].append(member.pk)
            continue
        try:
            draft = actions.draft(action=campaign.action, params=campaign.params, card=card, cas_box=box)
            created.append(conax.request_create(draft=draft, actor=actor, options=options).pk)
        except ConaxError as exc:
            refused[M.FAILED, f"{exc.code}: {exc.message}"[:2000]].append(member.pk)
            continue
        behind = waiting.get(member.smartcard_id)
        sent[f"queued behind {behind} pending request(s) of this card" if behind else ""].append(member.pk)
    return created, sent, refused


# --- outcomes ------------------------------------------------------------------------------------------------------


def sync(*, campaign: Campaign, now: datetime) -> int:
    """Members in flight whose command or request has ended take its outcome: one UPDATE … FROM each."""
    member, command, request = Member._meta.db_table, Command._meta.db_table, ProvisioningRequest._meta.db_table
    statements: list[tuple[str, list[Any]]] = [
        (
            f"UPDATE {member} SET state = CASE WHEN c.state = 'SUCCEEDED' THEN %s ELSE %s END, "  # noqa: S608
            f"error = CASE WHEN c.state = 'SUCCEEDED' THEN '' ELSE substr(c.last_error, 1, 2000) END, "
            f"finished_at = c.finished_at FROM {command} c "
            f"WHERE {member}.campaign_id = %s AND {member}.state = %s AND c.id = {member}.command_id "
            "AND c.state IN ('SUCCEEDED', 'FAILED')",
            [M.SUCCEEDED, M.FAILED, campaign.pk, M.SENT],
        ),
        (
            f"UPDATE {member} SET state = CASE WHEN r.life_cycle_state = 'COMPLETED' THEN %s ELSE %s END, "  # noqa: S608
            f"error = CASE WHEN r.life_cycle_state = 'COMPLETED' THEN '' ELSE "
            f"substr(COALESCE(r.error_code, '') || ': ' || COALESCE(r.error_description, ''), 1, 2000) END, "
            f"finished_at = r.executed_date FROM {request} r "
            f"WHERE {member}.campaign_id = %s AND {member}.state = %s AND r.number = {member}.request_id "
            "AND r.life_cycle_state IN ('COMPLETED', 'REJECTED')",
            [M.SUCCEEDED, M.FAILED, campaign.pk, M.SENT],
        ),
        (
            f"UPDATE {member} SET state = %s, error = %s, finished_at = %s "  # noqa: S608
            f"WHERE campaign_id = %s AND state = %s AND ("
            f"(command_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {command} c WHERE c.id = command_id)) OR "
            f"(request_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {request} r WHERE r.number = request_id)))",
            [M.FAILED, GONE_IN_FLIGHT, now, campaign.pk, M.SENT],
        ),
    ]
    if campaign.action_kind == ActionKind.COMMAND:
        del statements[1]
    else:
        del statements[0]
    changed = 0
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)
            changed += cursor.rowcount
    return changed


def _judge_wave(campaign: Campaign) -> None:
    """At the end of the current wave (nothing pending or in flight): halt below the threshold, else go on."""
    wave = Member.objects.filter(campaign=campaign, wave=campaign.current_wave)
    if wave.filter(state__in=[M.PENDING, M.SENT]).exists():
        return
    counts = dict(wave.values_list("state").annotate(n=Count("id")))
    succeeded, failed = counts.get(M.SUCCEEDED, 0), counts.get(M.FAILED, 0)
    judged = succeeded + failed
    if judged and succeeded / judged < campaign.success_threshold:
        reason = (
            f"wave {campaign.current_wave}: {succeeded / judged:.1%} succeeded ({succeeded} of {judged}; "
            f"{counts.get(M.SKIPPED, 0)} skipped), below the threshold of {campaign.success_threshold:.1%}"
        )
        campaign_services.campaign_halt(campaign=campaign, reason=reason)
        return
    following = campaign_services._next_wave(campaign)
    if following is None:
        campaign_services.campaign_finish(campaign=campaign)
    else:
        campaign_services.campaign_next_wave(campaign=campaign, wave=following)


# --- progress ------------------------------------------------------------------------------------------------------


def progress(*, campaign: Campaign) -> CampaignProgress:
    counts = dict(Member.objects.filter(campaign=campaign).values_list("state").annotate(n=Count("id")))
    done = sum(counts.get(state, 0) for state in (M.SUCCEEDED, M.FAILED, M.SKIPPED))
    remaining = counts.get(M.PENDING, 0) + counts.get(M.SENT, 0)
    rate = campaign.current_rate if campaign.state == S.RUNNING else 0.0
    return {
        "type": "campaign.progress",
        "campaign_id": campaign.pk,
        "state": campaign.state,
        "wave": campaign.current_wave,
        "waves": campaign.wave_count,
        "total": sum(counts.values()),
        "done": done,
        "succeeded": counts.get(M.SUCCEEDED, 0),
        "failed": counts.get(M.FAILED, 0),
        "skipped": counts.get(M.SKIPPED, 0),
        "in_flight": counts.get(M.SENT, 0),
        "remaining": remaining,
        "rate": rate,
        "eta_seconds": round(remaining / rate, 1) if rate > 0 and remaining else None,
        "halt_reason": campaign.halt_reason,
    }


def publish_progress(*, campaign: Campaign) -> None:
    publish(progress(campaign=campaign))
