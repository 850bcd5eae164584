"""Campaigns: every write and every state move. Each move is one transaction under the campaign's row lock, refuses
illegal moves with a named ``CampaignStateError``, and writes its audit entry in the same transaction.

States: draft → scheduled → running → paused / halted / cancelled / finished (docs/campaigns.md has the whole
table). ``campaign_start`` freezes the members with one ``INSERT … SELECT`` (``_freeze``); releasing them and
recording outcomes is ``campaigns.engine``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time
from typing import IO, Any

from auditlog.models import LogEntry
from celery import current_app
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from campaigns import actions, plan, targets
from campaigns.choices import ActionKind, CampaignState, MemberState, TargetKind
from campaigns.exceptions import (
    InvalidCampaign,
    NotCancellable,
    NotEditable,
    NothingToRetry,
    NotPausable,
    NotResumable,
    NotRetryable,
    NotSchedulable,
    NotStartable,
)
from campaigns.models import Campaign, Member

S, M = CampaignState, MemberState
STEP_TASK = "campaigns.tasks.campaign_step"
# Which states each move leaves from; anything else is its named error.
STARTABLE = (S.DRAFT, S.SCHEDULED)
PAUSABLE = (S.RUNNING,)
RESUMABLE = (S.PAUSED, S.HALTED)
CANCELLABLE = (S.DRAFT, S.SCHEDULED, S.RUNNING, S.PAUSED, S.HALTED)
RETRYABLE = (S.HALTED, S.FINISHED, S.PAUSED)


@dataclass(frozen=True)
class Definition:
    """What a staff member defines; ``campaign_create`` / ``campaign_update`` clean it."""

    name: str
    target_kind: str
    target_filters: dict
    action_kind: str
    action: str
    params: dict
    waves: list
    rate_per_second: float
    rate_per_group: float | None = None
    success_threshold: float = 0.95
    start_at: datetime | None = None
    window_start: time | None = None
    window_end: time | None = None
    window_timezone: str = "UTC"


def _clean(definition: Definition) -> dict[str, Any]:
    d = definition
    if not isinstance(d.name, str) or not d.name.strip() or len(d.name) > 128:
        raise InvalidCampaign("name must be 1 to 128 characters", field="name")
    if d.target_kind not in TargetKind.values:
        raise InvalidCampaign(f"unknown target kind {d.target_kind!r}", field="target_kind")
    if not isinstance(d.target_filters, dict):
        raise InvalidCampaign("target_filters must be an object", field="target_filters")
    params = actions.clean(action_kind=d.action_kind, action=d.action, params=d.params)
    targets.subjects(target_kind=d.target_kind, filters=d.target_filters, action_kind=d.action_kind, action=d.action)
    _check_rates(d)
    if (d.window_start is None) != (d.window_end is None) or (d.window_start and d.window_start == d.window_end):
        raise InvalidCampaign("a window needs a start and a different end", field="window_start")
    try:
        waves = plan.waves_clean(d.waves)
        plan.zone(d.window_timezone)
    except plan.PlanError as exc:
        raise InvalidCampaign(str(exc), field="waves") from exc
    return {
        "name": d.name.strip(),
        "target_kind": d.target_kind,
        "target_filters": dict(d.target_filters),
        "action_kind": d.action_kind,
        "action": d.action,
        "params": params,
        "waves": waves,
        "rate_per_second": float(d.rate_per_second),
        "rate_per_group": None if d.rate_per_group is None else float(d.rate_per_group),
        "success_threshold": float(d.success_threshold),
        "start_at": d.start_at,
        "window_start": d.window_start,
        "window_end": d.window_end,
        "window_timezone": d.window_timezone,
    }


def _check_rates(d: Definition) -> None:
    def number(value: object) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    if not number(d.rate_per_second) or not 0 < d.rate_per_second <= 100_000:
        raise InvalidCampaign("rate_per_second must be above 0 and at most 100 000", field="rate_per_second")
    if d.rate_per_group is not None and (not number(d.rate_per_group) or not 0 < d.rate_per_group <= 100_000):
        raise InvalidCampaign("rate_per_group must be above 0 and at most 100 000", field="rate_per_group")
    if not number(d.success_threshold) or not 0 <= d.success_threshold <= 1:
        raise InvalidCampaign("success_threshold must be a share between 0 and 1", field="success_threshold")


# --- definition ----------------------------------------------------------------------------------------------------


def campaign_create(*, definition: Definition, created_by: User | None = None) -> Campaign:
    """A draft (audited by the trail's save hook)."""
    values = _clean(definition)
    with transaction.atomic():
        return Campaign.objects.create(**values, created_by=created_by)


def campaign_update(*, campaign: Campaign, definition: Definition) -> Campaign:
    """Change a draft's definition; anything past draft is frozen (``NotEditable``)."""
    values = _clean(definition)
    with transaction.atomic():
        locked = _lock(campaign.pk)
        if locked.state != S.DRAFT:
            raise NotEditable("only a draft can be changed", state=locked.state)
        for name, value in values.items():
            setattr(locked, name, value)
        locked.save()
    return locked


def campaign_preview(*, campaign: Campaign) -> int:
    """How many members the target holds now (the freeze takes them as they are when it starts)."""
    return _subjects(campaign).queryset.count()


def _subjects(campaign: Campaign) -> targets.Subjects:
    return targets.subjects(
        target_kind=campaign.target_kind,
        filters=campaign.target_filters,
        action_kind=campaign.action_kind,
        action=campaign.action,
    )


# --- state moves ---------------------------------------------------------------------------------------------------


def _lock(pk: int) -> Campaign:
    return Campaign.objects.select_for_update().get(pk=pk)


def _audit(campaign: Campaign, before: str, action: str, actor: User | None, **extra: Any) -> None:
    changes = {"state": [before, campaign.state]} if before != campaign.state else {}
    LogEntry.objects.log_create(
        campaign,
        action=LogEntry.Action.UPDATE,
        force_log=True,
        changes=changes,
        actor=actor,
        additional_data={"action": action, **extra},
    )


def _move(campaign: Campaign, state: str, action: str, actor: User | None, **fields: Any) -> Campaign:
    """Write the new state (and fields) of the locked ``campaign`` and audit it."""
    before = campaign.state
    fields = {"state": state, "updated_at": timezone.now(), **fields}
    Campaign.objects.filter(pk=campaign.pk).update(**fields)
    for name, value in fields.items():
        setattr(campaign, name, value)
    extra = {"reason": fields["halt_reason"]} if fields.get("halt_reason") else {}
    _audit(campaign, before, action, actor, **extra)
    return campaign


def _kick(campaign_id: int) -> None:
    """Ask a worker for a step now rather than at the next periodic tick (lost? the tick does it anyway)."""
    transaction.on_commit(lambda: current_app.send_task(STEP_TASK, args=[campaign_id]))


def campaign_schedule(*, campaign: Campaign, actor: User | None = None) -> Campaign:
    """draft → scheduled: the engine starts it at ``start_at`` (at its next tick when there is none)."""
    with transaction.atomic():
        locked = _lock(campaign.pk)
        if locked.state != S.DRAFT:
            raise NotSchedulable("only a draft can be scheduled", state=locked.state)
        return _move(locked, S.SCHEDULED, "campaign_schedule", actor)


def campaign_start(*, campaign: Campaign, actor: User | None = None) -> Campaign:
    """draft | scheduled → running: the target is evaluated and its members frozen, in one statement."""
    now = timezone.now()
    with transaction.atomic():
        locked = _lock(campaign.pk)
        if locked.state not in STARTABLE:
            raise NotStartable("only a draft or scheduled campaign can start", state=locked.state)
        total = _freeze(locked)
        first = Member.objects.filter(campaign=locked).aggregate(first=Min("wave"))["first"] or 1
        _move(
            locked,
            S.RUNNING,
            "campaign_start",
            actor,
            total=total,
            wave_count=len(locked.waves),
            current_wave=first,
            started_at=now,
            bucket_at=now,
            bucket_tokens=0.0,
            group_tokens={},
        )
        _kick(locked.pk)
    return locked


def _freeze(campaign: Campaign) -> int:
    """``INSERT INTO campaigns_member … SELECT`` from the compiled target queryset: the wave of each member is given
    in SQL (``row_number()`` over a per-campaign hashed order, so that the first 1 % is spread over the whole fleet
    rather than its oldest rows; ``count(*) OVER ()`` for the shares). No row passes through Python."""
    subjects = _subjects(campaign)
    inner, inner_params = subjects.queryset.query.sql_with_params()
    waves_sql, waves_params = _wave_case(campaign.waves)
    if connection.vendor == "postgresql":
        order, order_params = "md5(%s || ':' || s.m_subject::text)", [str(campaign.pk)]
    else:  # the embedded SQLite default has no md5: subject order
        order, order_params = "s.m_subject", []
    sql = (
        f"INSERT INTO {Member._meta.db_table} "  # noqa: S608 - table and column names are ours, values are params
        f"(campaign_id, wave, state, label, group_id, {subjects.column}, error, note) "
        f"SELECT %s, {waves_sql}, %s, substr(t.m_label, 1, 128), t.m_group, t.m_subject, '', '' "
        f"FROM (SELECT s.m_subject, s.m_label, s.m_group, row_number() OVER (ORDER BY {order}) AS rn, "
        f"count(*) OVER () AS n FROM ({inner}) s) t ORDER BY t.rn"
    )
    params = [campaign.pk, *waves_params, M.PENDING, *order_params, *inner_params]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The hashed order sorts every member once: in memory rather than in temporary files (this transaction
            # only; 1 000 000 members sort in ~100 MB).
            cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute(sql, params)
        return cursor.rowcount


def _wave_case(waves: list[str]) -> tuple[str, list[int]]:
    """``CASE WHEN rn <= b1 THEN 1 WHEN rn <= b1 + b2 THEN 2 … ELSE k END``: shares round up (1 % of 150 is 2)."""
    sizes: list[tuple[str, int]] = []  # (SQL of one wave's size, its parameter)
    for spec in waves[:-1]:
        points = plan.basis_points(spec)
        sizes.append(("%s", int(spec)) if points is None else ("((t.n * %s + 9999) / 10000)", points))
    whens: list[str] = []
    params: list[int] = []
    for number in range(1, len(sizes) + 1):
        whens.append(f"WHEN t.rn <= {' + '.join(sql for sql, _ in sizes[:number])} THEN {number}")
        params.extend(value for _, value in sizes[:number])
    if not whens:
        return "1", []
    return f"CASE {' '.join(whens)} ELSE {len(waves)} END", params


def campaign_pause(*, campaign: Campaign, actor: User | None = None) -> Campaign:
    """running → paused: nothing more is released; members in flight finish and are recorded."""
    with transaction.atomic():
        locked = _lock(campaign.pk)
        if locked.state not in PAUSABLE:
            raise NotPausable("only a running campaign can be paused", state=locked.state)
        return _move(locked, S.PAUSED, "campaign_pause", actor, current_rate=0.0)


def campaign_resume(*, campaign: Campaign, actor: User | None = None) -> Campaign:
    """paused | halted → running. Resuming a halted campaign is the operator's override of its threshold: it goes on
    with the next wave that has members left."""
    now = timezone.now()
    with transaction.atomic():
        locked = _lock(campaign.pk)
        if locked.state not in RESUMABLE:
            raise NotResumable("only a paused or halted campaign can be resumed", state=locked.state)
        fields: dict[str, Any] = {"bucket_at": now, "bucket_tokens": 0.0, "group_tokens": {}, "halt_reason": ""}
        if locked.state == S.HALTED:
            fields["current_wave"] = _next_wave(locked, after=locked.current_wave) or locked.current_wave
        _move(locked, S.RUNNING, "campaign_resume", actor, **fields)
        _kick(locked.pk)
    return locked


def _next_wave(campaign: Campaign, *, after: int | None = None) -> int | None:
    pending = Member.objects.filter(campaign=campaign, state=M.PENDING)
    if after is not None:
        pending = pending.filter(wave__gt=after)
    return pending.aggregate(wave=Min("wave"))["wave"]


def campaign_cancel(*, campaign: Campaign, actor: User | None = None) -> Campaign:
    """Any state but cancelled / finished → cancelled: members not yet sent are skipped (one UPDATE); members in
    flight finish, and the engine still records their outcomes."""
    now = timezone.now()
    with transaction.atomic():
        locked = _lock(campaign.pk)
        if locked.state not in CANCELLABLE:
            raise NotCancellable("a finished or cancelled campaign cannot be cancelled", state=locked.state)
        skipped = Member.objects.filter(campaign=locked, state=M.PENDING).update(
            state=M.SKIPPED, note="campaign cancelled before it was sent", finished_at=now
        )
        _move(locked, S.CANCELLED, "campaign_cancel", actor, finished_at=now, current_rate=0.0)
        _audit(locked, locked.state, "campaign_cancel_skipped", actor, skipped=skipped)
    return locked


def campaign_retry_failed(*, campaign: Campaign, actor: User | None = None) -> Campaign:
    """halted | finished | paused → running, with the failed members not yet retried as a new wave (one INSERT …
    SELECT). The retry wave goes first; then any wave still pending."""
    now = timezone.now()
    with transaction.atomic():
        locked = _lock(campaign.pk)
        if locked.state not in RETRYABLE:
            raise NotRetryable("only a halted, finished or paused campaign can retry its failures", state=locked.state)
        wave = (Member.objects.filter(campaign=locked).aggregate(w=Max("wave"))["w"] or 0) + 1
        added = _insert_retries(locked, wave)
        if not added:
            raise NothingToRetry("no failed member is left to retry", state=locked.state)
        _move(
            locked,
            S.RUNNING,
            "campaign_retry_failed",
            actor,
            current_wave=wave,
            wave_count=wave,
            total=locked.total + added,
            bucket_at=now,
            bucket_tokens=0.0,
            group_tokens={},
            halt_reason="",
            finished_at=None,
        )
        _kick(locked.pk)
    return locked


def _insert_retries(campaign: Campaign, wave: int) -> int:
    table = Member._meta.db_table
    sql = (
        f"INSERT INTO {table} (campaign_id, wave, state, label, group_id, box_id, smartcard_id, cas_box_id, "  # noqa: S608
        "retry_of_id, error, note) "
        f"SELECT m.campaign_id, %s, %s, m.label, m.group_id, m.box_id, m.smartcard_id, m.cas_box_id, m.id, '', '' "
        f"FROM {table} m WHERE m.campaign_id = %s AND m.state = %s "
        f"AND NOT EXISTS (SELECT 1 FROM {table} r WHERE r.campaign_id = m.campaign_id AND r.retry_of_id = m.id) "
        "ORDER BY m.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [wave, M.PENDING, campaign.pk, M.FAILED])
        return cursor.rowcount


# --- moves of the engine (called by campaigns.engine under the same lock) -----------------------------------------


def campaign_halt(*, campaign: Campaign, reason: str) -> Campaign:
    return _move(campaign, S.HALTED, "campaign_halt", None, halt_reason=reason, current_rate=0.0)


def campaign_finish(*, campaign: Campaign) -> Campaign:
    return _move(campaign, S.FINISHED, "campaign_finish", None, finished_at=timezone.now(), current_rate=0.0)


def campaign_next_wave(*, campaign: Campaign, wave: int) -> Campaign:
    before = campaign.current_wave
    Campaign.objects.filter(pk=campaign.pk).update(current_wave=wave)
    campaign.current_wave = wave
    _audit(campaign, campaign.state, "campaign_next_wave", None, wave_from=before, wave_to=wave)
    return campaign


# --- report --------------------------------------------------------------------------------------------------------


def campaign_report(*, campaign: Campaign, failures_limit: int = 50) -> dict[str, Any]:
    """Counts by outcome per wave, failures grouped by error (most frequent first), time to finish."""
    rows = Member.objects.filter(campaign=campaign).values("wave", "state").annotate(n=Count("id")).order_by("wave")
    waves: dict[int, dict[str, int]] = {}
    for row in rows:
        counts = waves.setdefault(row["wave"], {state: 0 for state in M.values})
        counts[row["state"]] = row["n"]
    failures = (
        Member.objects.filter(campaign=campaign, state=M.FAILED)
        .values("error")
        .annotate(count=Count("id"))
        .order_by("-count", "error")[:failures_limit]
    )
    times = Member.objects.filter(campaign=campaign).aggregate(first=Min("released_at"), last=Max("finished_at"))
    end = campaign.finished_at or (times["last"] if campaign.state == S.FINISHED else None)
    return {
        "campaign_id": campaign.pk,
        "state": campaign.state,
        "halt_reason": campaign.halt_reason,
        "total": campaign.total,
        "waves": [{"wave": wave, "total": sum(c.values()), **c} for wave, c in sorted(waves.items())],
        "failures": [{"error": f["error"], "count": f["count"]} for f in failures],
        "skipped": list(
            Member.objects.filter(campaign=campaign, state=M.SKIPPED)
            .values("note")
            .annotate(count=Count("id"))
            .order_by("-count", "note")[:failures_limit]
        ),
        "started_at": campaign.started_at,
        "first_release_at": times["first"],
        "finished_at": end,
        "seconds_to_finish": (end - campaign.started_at).total_seconds() if end and campaign.started_at else None,
    }


CSV_COLUMNS = (
    "id", "wave", "label", "state", "command_id", "request_id", "error", "note", "released_at", "finished_at",
    "retry_of_id",
)  # fmt: skip
CSV_FIELDS = (
    "member_id", "wave", "label", "state", "command_id", "request_number", "error", "note", "released_at",
    "finished_at", "retry_of",
)  # fmt: skip


def campaign_export_csv(*, campaign: Campaign, out: IO[str]) -> int:
    """Every member and its outcome, one CSV row each, streamed (bounded memory); returns the number of rows."""
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)
    rows: Iterable[tuple] = (
        Member.objects.filter(campaign=campaign).order_by("id").values_list(*CSV_COLUMNS).iterator(chunk_size=5000)
    )
    count = 0
    for row in rows:
        writer.writerow([_cell(value) for value in row])
        count += 1
    return count


def _cell(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value  # never a formula in a spreadsheet
    return "" if value is None else value


def action_label(campaign: Campaign) -> str:
    return f"{ActionKind(campaign.action_kind).label}: {campaign.action}"
