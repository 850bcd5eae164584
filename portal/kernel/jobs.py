"""Operations over many objects, as background work with live progress.

An app registers an *operation*: a function that takes a chunk of primary keys and returns which of them it changed
and why it refused the others (``Outcome``). The same function serves a small admin selection at once (``run_now``)
and a large one in the background (``job_start``, then the ``portal.kernel.tasks.job_run`` task), so the rules and the
per-object report are the same whatever the size.

The job row is the source of truth. Each chunk runs in one transaction with the row locked, and the row's ``cursor``
moves in that same transaction: a worker killed mid-chunk leaves the chunk undone (rolled back) and the next delivery
of the task carries on from the cursor, so every object is processed exactly once. Progress is published to the staff
group after each chunk commits (``job.progress``), and the job's page re-reads itself on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone

from portal.kernel import live
from portal.kernel.errors import Category, DomainError
from portal.kernel.models import BulkJob

CHUNK = 100
MAX_FAILURES = 1000  # the first failures are kept with their reasons; the count keeps counting
LISTED = 5  # objects named per reason in a one-line report


class UnknownOperation(DomainError):
    code = "unknown_operation"
    category = Category.INVALID


@dataclass
class Outcome:
    """What one call of an operation did: the keys it changed, and the reason for each one it did not."""

    done: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)
    # How to name a refused key when it is not an object's primary key (a line of an imported file): given, the
    # failure is listed with this label and no link.
    labels: dict[int, str] = field(default_factory=dict)


Actor = AbstractBaseUser | AnonymousUser | None
Function = Callable[[list[int], Mapping[str, Any], Actor], Outcome]


@dataclass(frozen=True)
class Operation:
    name: str
    model: type[models.Model]
    function: Function
    verb: str  # "enable": a job's title reads "Enable 500 devices"
    done_verb: str  # "enabled": the report reads "Enabled 3; 2 could not be enabled (...)"
    not_done: str = ""  # what the refused "could not be ..." (default: could not be <done_verb>)

    @property
    def refused_words(self) -> str:
        return self.not_done or f"could not be {self.done_verb}"


OPERATIONS: dict[str, Operation] = {}


def register(
    name: str, *, model: type[models.Model], verb: str, done_verb: str, not_done: str = ""
) -> Callable[[Function], Function]:
    """Decorator: make ``function(ids, params, actor) -> Outcome`` available as operation ``name``."""

    def decorate(function: Function) -> Function:
        OPERATIONS[name] = Operation(
            name=name, model=model, function=function, verb=verb, done_verb=done_verb, not_done=not_done
        )
        return function

    return decorate


def operation(name: str) -> Operation:
    try:
        return OPERATIONS[name]
    except KeyError:
        raise UnknownOperation(f"no operation {name!r}", operation=name) from None


@dataclass
class Report:
    """An outcome with the objects named, for a message: "Enabled 3; 2 could not be enabled (already activated:
    STB-1, STB-2)"."""

    operation: Operation
    done: int
    refused: dict[str, list[str]]  # reason -> labels

    @property
    def failed(self) -> int:
        return sum(len(labels) for labels in self.refused.values())

    def sentence(self) -> str:
        op = self.operation
        text = f"{op.done_verb[:1].upper()}{op.done_verb[1:]} {self.done}"
        if self.refused:
            parts = []
            for reason, labels in self.refused.items():
                more = f" and {len(labels) - LISTED} more" if len(labels) > LISTED else ""
                parts.append(f"{reason}: {', '.join(labels[:LISTED])}{more}")
            text += f"; {self.failed} {op.refused_words} ({'; '.join(parts)})"
        return text + "."


def _labels(model: type[models.Model], ids: Sequence[int]) -> dict[int, str]:
    found = model._default_manager.in_bulk(list(ids))
    return {pk: str(found[pk]) if pk in found else f"#{pk} (removed)" for pk in ids}


def run_now(*, name: str, ids: Sequence[int], params: Mapping[str, Any] | None = None, actor: Actor) -> Report:
    """A small selection, at once (one transaction)."""
    op = operation(name)
    with transaction.atomic():
        outcome = op.function(list(dict.fromkeys(ids)), params or {}, actor)
    labels = _labels(op.model, list(outcome.refused))
    refused: dict[str, list[str]] = {}
    for pk, reason in outcome.refused.items():
        refused.setdefault(reason, []).append(labels[pk])
    return Report(operation=op, done=len(outcome.done), refused=refused)


def inline_limit() -> int:
    """Selections up to this size run in the request; larger ones become a background job."""
    return int(getattr(settings, "ADMIN_BULK_INLINE_MAX", 20))


def job_start(
    *, name: str, ids: Sequence[int], title: str, params: Mapping[str, Any] | None = None, actor: Actor
) -> BulkJob:
    """Freeze the selection in a job row and queue its task once the row is committed. ``params`` must hold no
    secret (they are stored and shown)."""
    from portal.kernel import tasks  # the task module imports this one

    op = operation(name)
    keys = list(dict.fromkeys(int(pk) for pk in ids))
    user = actor if isinstance(actor, AbstractBaseUser) and actor.pk else None
    job = BulkJob.objects.create(
        operation=name,
        title=title,
        content_type=ContentType.objects.get_for_model(op.model),
        object_ids=keys,
        params=dict(params or {}),
        total=len(keys),
        requested_by=user,  # type: ignore[misc]
    )
    transaction.on_commit(lambda: tasks.job_run.delay(job.pk))
    return job


def job_run(*, job_id: int, chunk: int | None = None) -> BulkJob | None:
    """Process the job chunk by chunk from its cursor until it is finished. Safe to run again (a redelivered task
    finds the cursor where the last committed chunk left it)."""
    chunk = chunk or int(getattr(settings, "BULK_JOB_CHUNK", CHUNK))
    while True:
        with transaction.atomic():
            job = BulkJob.objects.select_for_update().filter(pk=job_id).first()
            if job is None or job.state == BulkJob.State.FINISHED:
                return job
            op = operation(job.operation)
            now = timezone.now()
            if job.started_at is None:
                job.started_at = now
            keys = [int(pk) for pk in job.object_ids[job.cursor : job.cursor + chunk]]
            if keys:
                outcome = op.function(keys, job.params, job.requested_by)
                wanted = set(keys)
                refused = {pk: reason for pk, reason in outcome.refused.items() if pk in wanted}
                room = MAX_FAILURES - len(job.failures)
                if room > 0 and refused:
                    kept = list(refused.items())[:room]
                    labels = _labels(op.model, [pk for pk, _ in kept if pk not in outcome.labels])
                    job.failures = [*job.failures, *(_failure(k, why, labels, outcome.labels) for k, why in kept)]
                job.failed += len(refused)
                job.done += len(keys) - len(refused)
                job.cursor += len(keys)
            finished = job.cursor >= job.total
            job.state = BulkJob.State.FINISHED if finished else BulkJob.State.RUNNING
            if finished:
                job.finished_at = now
            job.save()
            event = progress_event(job)
            transaction.on_commit(lambda event=event: live.publish(event))  # type: ignore[misc]
        if finished:
            return job


def _failure(key: int, reason: str, labels: dict[int, str], given: dict[int, str]) -> dict[str, Any]:
    if key in given:
        return {"id": key, "label": given[key], "reason": reason, "linked": False}
    return {"id": key, "label": labels[key], "reason": reason}


def progress_event(job: BulkJob) -> live.JobProgress:
    return {
        "type": "job.progress",
        "job_id": job.pk,
        "done": job.done,
        "failed": job.failed,
        "total": job.total,
        "state": job.state,
    }
