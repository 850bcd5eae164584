"""Sending Conax provisioning requests to the head-end and recording what it answered.

The database is the source of truth; the broker only carries "look at these requests" (their numbers, nothing else).
The unit of work is a batch (``requests_process``, the ``process_requests`` task): one short transaction claims up to
``CAS_BATCH_SIZE`` requests, their head-end calls run concurrently outside any transaction, and one short transaction
records every outcome.

- **Dispatch**: a request created with ``process_immediately`` is marked queued (``enqueued_at``) by its own INSERT
  and sent after its transaction commits; the requests of one transaction (a campaign's wave, a staff "process now",
  whose UPDATE marks them) go out together. A message carries up to
  ``CAS_BATCH_SIZE`` numbers of one priority, on its own queue (``express`` or ``regular``): EXPRESS and REGULAR
  requests never share a message. If the process dies between commit and publish, or the broker loses the message
  (this machine's Redis keeps nothing on disk), the periodic run ``requests_dispatch`` is the safety net: every
  ``CAS_DISPATCH_INTERVAL`` seconds it queues every due PENDING request that no worker holds and that has not been
  queued in the last ``CAS_DISPATCH_GRACE_SECONDS`` (EXPRESS first). Scheduled requests (not immediate, or
  ``start_date`` in the future) are first queued by that run once due.
- **Claim**: one locking SELECT (``SKIP LOCKED``: rows another worker is claiming are its) of the batch's due, free
  PENDING requests, and one UPDATE: ``attempts`` goes up by one and is each claim's token, ``claimed_until`` the
  batch's lease. A request is refused while an earlier due request of the same smartcard is PENDING (EXPRESS before
  REGULAR, then ``sequence_number``), so a batch holds one request per card at most, the first; the earlier one
  queues the card's next when it ends. A batch with room tops itself up, in the claim's transaction, with due, free
  requests of its priority queued after its own and waiting for over ``CAS_BATCH_TOP_UP_AFTER`` seconds (first of
  their card, oldest first): one-number messages behind a backlog (CRM creations faster than the drain) each fill a
  batch, and the messages of the requests they took end at once.
- **Exactly once at the head-end**: the request's ``uid`` is the idempotency key. ``sent_at`` is written in the claim's
  transaction, committed before any call; a later attempt that finds it set first asks the head-end (``lookup``) and
  takes the stored outcome instead of sending again. The head-end also answers a repeated key with its first outcome.
  A call whose lease ran out before it started is not made (another worker may hold the request by then).
- **Calls**: on a thread pool per worker process and priority (``CAS_BATCH_THREADS`` each, so that an EXPRESS batch
  never waits behind REGULAR calls); the threads speak to the head-end only, never to the database. A batch of one is
  called in the worker's own thread.
- **Outcome**: one transaction locks the batch's rows still held under the same claim token and writes their
  outcomes in bulk, with their effects (entitlements upserted in one statement, pairings), the retries and the
  webhook events; a request whose claim was taken over records nothing. Transient failures retry with jittered
  exponential backoff (the retries of a batch are queued grouped by their whole-second delay); after
  ``MAX_ATTEMPTS`` the request is REJECTED with ``GATEWAY_UNAVAILABLE``. After the commit: each touched card's next
  request is queued (one query for all the cards), and one live batch is published (a ``cas.request`` to each box's
  device, one ``cas.requests`` summary to staff).

A PIN is decrypted in the worker for the call only: never in a task argument, a log line or a live event.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Case, Exists, F, IntegerField, OuterRef, Q, Value, When, Window
from django.db.models.functions import RowNumber
from django.utils import timezone
from kombu import Connection
from kombu.transport import virtual

from conax.choices import LifeCycleState, Priority, RequestType
from conax.crypto import PinUnreadable, pin_decrypt
from conax.gateway import CasCommand, Completed, Gateway, GatewayUnavailable, Rejected, gateway_from_settings
from conax.models import Entitlement, Pairing, ProvisioningRequest, SetTopBox, Smartcard
from portal.kernel import metrics, queues
from portal.kernel.live import CasRequest, CasRequests, CasRequestState, LiveEvent, publish_batch
from webhooks import events as webhook_events

log = logging.getLogger(__name__)
TASK = "conax.tasks.process_requests"
MAX_ATTEMPTS = 8
BACKOFF_BASE, BACKOFF_CAP = 2.0, 300.0
DISPATCH_BATCH = 5000
PENDING, COMPLETED, REJECTED = LifeCycleState.PENDING, LifeCycleState.COMPLETED, LifeCycleState.REJECTED
# Parameters that a request may carry several times: the head-end gets them as lists.
LISTS = {"stb_ca_id": "stb_ca_ids", "smartcard_ca_id": "smartcard_ca_ids"}
LIST_TYPES = (RequestType.CREATE_PAIRING, RequestType.ADD_TO_EXISTING_PAIRING)
SUBSCRIPTION_TYPES = (RequestType.ADD_SUBSCRIPTIONS, RequestType.CANCEL_SUBSCRIPTIONS)
# What differs from one finished request to the next (the rest is the same for every one of a state: one UPDATE).
# bulk_update's cost in Python grows with rows x fields: 10 fields of 50 rows took 57 ms, 2 fields 15 ms.
ANSWERED = {
    LifeCycleState.COMPLETED: ["reference_number", "response"],
    LifeCycleState.REJECTED: ["error_code", "error_description", "provider_error_code", "provider_error_description"],
}


@dataclass(frozen=True)
class Unavailable:
    """The head-end could not be asked, or its answer was lost: the request is tried again later."""

    reason: str


@dataclass(frozen=True)
class Refused:
    """A rejection decided by the portal itself (its own error code), not by the head-end."""

    code: str
    description: str


Result = Completed | Rejected | Refused | Unavailable


def _lease() -> timedelta:
    """Longer than any gateway call can take: a request held past it has lost its worker."""
    return timedelta(seconds=max(30.0, settings.CAS_TIMEOUT * 3))


def _batch_lease(size: int) -> timedelta:
    """A batch's claim: one lease per round of calls its threads make (a call may wait for a thread)."""
    return _lease() * math.ceil(size / max(1, settings.CAS_BATCH_THREADS))


def _rank() -> Case:
    return Case(When(priority=Priority.EXPRESS, then=Value(0)), default=Value(1), output_field=IntegerField())


def _due_and_free(now: datetime) -> Q:
    return Q(life_cycle_state=PENDING, scheduled_date__lte=now) & (
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    )


# --- dispatch ------------------------------------------------------------------------------------------------------


def _enqueue(numbers_by_priority: list[tuple[int, str]], countdown: float | None = None) -> None:
    """Mark the requests queued and send them: one message per CAS_BATCH_SIZE numbers of one priority."""
    if not numbers_by_priority:
        return
    numbers = [number for number, _ in numbers_by_priority]
    ProvisioningRequest.objects.filter(pk__in=numbers).update(enqueued_at=timezone.now())
    _send(numbers_by_priority, countdown)


def _send(numbers_by_priority: list[tuple[int, str]], countdown: float | None) -> None:
    """Publish, EXPRESS first, through one producer, with what Celery would otherwise redo for every message left
    out: ``argsrepr`` is given (the numbers: all a message carries), not built with ``saferepr``; the queue is not
    declared again where publishing does not need it (``_declare``)."""
    by_queue: dict[str, list[int]] = {queues.EXPRESS: [], queues.REGULAR: []}
    for number, priority in numbers_by_priority:
        by_queue[queues.EXPRESS if priority == Priority.EXPRESS else queues.REGULAR].append(number)
    size = max(1, settings.CAS_BATCH_SIZE)
    chunks = [(q, numbers[i : i + size]) for q, numbers in by_queue.items() for i in range(0, len(numbers), size)]
    sent = 0
    try:
        with current_app.producer_or_acquire() as producer:
            for queue, chunk in chunks:
                options = {"producer": producer, "argsrepr": f"[{chunk!r}]", "kwargsrepr": "{}", "declare": _declare()}
                current_app.send_task(TASK, args=[chunk], queue=queue, countdown=countdown, **options)
                sent += 1
    except Exception as exc:  # the broker is down: the periodic run will queue them again
        unsent = [chunk for _, chunk in chunks[sent:]]
        log.warning("requests not queued", extra={"numbers": unsent, "error": type(exc).__name__})


@cache
def _declare() -> list | None:
    """What a publish declares first: nothing on Redis and the embedded broker (kombu's virtual transports route a
    message by its queue's name, declared or not, and each worker declares the queues it consumes); the queue, as
    Celery does by default, elsewhere (AMQP drops a message for a queue that does not exist yet). Celery's declare
    rebinds the queue for every message: about 15 % of a publish's CPU."""
    with current_app.connection_for_write() as connection:
        return declare_for(connection)


def declare_for(connection: Connection) -> list | None:
    return [] if isinstance(connection.transport, virtual.Transport) else None


class _AfterCommit:
    """The requests one transaction made due, sent together once it commits (one message per batch). Their rows
    were marked queued (``enqueued_at``) by the very statement that made them due, in that transaction: no
    statement of its own here, and the mark is committed with the rows. If the process dies before publishing, or
    the broker loses the message, the periodic run queues them once ``CAS_DISPATCH_GRACE_SECONDS`` have passed."""

    def __init__(self, first: tuple[int, str]) -> None:
        self.numbers_by_priority = [first]

    def __call__(self) -> None:
        _send(self.numbers_by_priority, None)


def request_dispatch_on_commit(request: ProvisioningRequest) -> None:
    """Send the request after the commit, with the others the same transaction (and savepoint) queues. The caller
    has written its ``enqueued_at`` in this transaction (``request_create``'s INSERT, "process now"'s UPDATE)."""
    if request.enqueued_at is None:
        raise ValueError(f"request {request.pk} is queued on commit but its enqueued_at is not written")
    pair = (request.pk, request.priority)
    connection = transaction.get_connection()
    if connection.in_atomic_block:
        savepoints = set(connection.savepoint_ids)
        for ids, callback, _robust in reversed(connection.run_on_commit):
            if isinstance(callback, _AfterCommit) and ids == savepoints:  # rolled back with the same savepoints
                callback.numbers_by_priority.append(pair)
                return
    transaction.on_commit(_AfterCommit(pair))


def requests_due(limit: int = DISPATCH_BATCH) -> list[tuple[int, str]]:
    """Due PENDING requests that no worker holds and no queue has had for a while: EXPRESS first, then in order."""
    now = timezone.now()
    grace = now - timedelta(seconds=settings.CAS_DISPATCH_GRACE_SECONDS)
    due = ProvisioningRequest.objects.filter(
        _due_and_free(now) & (Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=grace))
    ).exclude(Q(smartcard__isnull=False) & _earlier_of_same_card(now))  # its predecessor queues it when it ends
    return list(due.order_by(_rank(), "sequence_number", "number").values_list("number", "priority")[:limit])


def requests_dispatch() -> int:
    """The periodic run (beat): queue what is due; the safety net for messages lost before or after publishing."""
    batch = requests_due()
    _enqueue(batch)
    return len(batch)


# --- a batch -------------------------------------------------------------------------------------------------------


def _earlier_of_same_card(now: datetime) -> Exists:
    """A due PENDING request of the same smartcard that goes first: EXPRESS before REGULAR, then by sequence."""
    same = ProvisioningRequest.objects.filter(
        smartcard_id=OuterRef("smartcard_id"), life_cycle_state=PENDING, scheduled_date__lte=now
    ).exclude(pk=OuterRef("pk"))
    first = Q(priority=Priority.EXPRESS) & ~Q(priority=OuterRef("priority"))
    before = Q(priority=OuterRef("priority"), sequence_number__lt=OuterRef("sequence_number"))
    return Exists(same.filter(first | before))


def requests_process(*, numbers: list[int], process_id: str | None = None) -> dict[int, str]:
    """Send those of ``numbers`` that are due and free (and first of their card); record their outcomes.

    Returns the state each request this call took ended in (PENDING: to be tried again); a request not taken (not
    due, held by another worker, behind an earlier one of its card) or whose claim was taken over is not in it."""
    claims, refused = _claim_batch(numbers, process_id)
    _queue_unblocked(refused)
    if not claims:
        return {}
    results = [(claim, claim.command) for claim in claims if isinstance(claim.command, Refused)]
    return _record(results + _call_all([claim for claim in claims if isinstance(claim.command, CasCommand)]))


def request_process(*, number: int, process_id: str | None = None) -> str | None:
    """One request (a message queued before batches, a test): the batch of one. Returns its new state, or None if it
    was not taken."""
    return requests_process(numbers=[number], process_id=process_id).get(number)


@dataclass
class _Claim:
    """A request this batch holds: what to send (or the portal's own refusal, nothing to send), and whether an
    earlier attempt may have reached the head-end (then it is asked before anything is sent again)."""

    request: ProvisioningRequest
    command: CasCommand | Refused
    sent_before: bool


def _claim_batch(numbers: list[int], process_id: str | None) -> tuple[list[_Claim], list[int]]:
    """One short transaction: lock the due, free ones, claim the first of each card, top the batch up (``_top_up``),
    mark those to send as sent. Those refused because an earlier request of their card goes first forget that they
    were queued, so that the earlier one queues them when it ends (and only then). Every row locked here is taken or
    refused: a row locked and left as it was would be skipped (``SKIP LOCKED``) by its own message meanwhile, and
    nobody would queue it again before the periodic run's grace. On SQLite the lock clause is left out (one writer)."""
    now = timezone.now()
    with transaction.atomic():
        taken: list[ProvisioningRequest] = []
        refused: list[int] = []
        cards: set[str] = set()
        _take(_locked(numbers, now), taken, refused, cards)
        if taken and (extra := _top_up(taken[0].priority, settings.CAS_BATCH_SIZE - len(taken), numbers, cards, now)):
            _take(_locked(extra, now), taken, refused, cards)
        if refused:
            ProvisioningRequest.objects.filter(pk__in=refused).update(enqueued_at=None)
        until = now + _batch_lease(len(taken))
        claims = [_claim(request, now, process_id, until) for request in taken]
        if taken:
            _save_claims(claims, now, process_id, until)
    return claims, refused


def _locked(numbers: list[int], now: datetime) -> Iterable[Any]:
    """Those of ``numbers`` due and free, locked (rows another worker is locking are its), in their cards' order; each
    with ``waits``: an earlier request of its card goes first."""
    return (
        ProvisioningRequest.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(_due_and_free(now), pk__in=numbers)
        .annotate(waits=_earlier_of_same_card(now))
        .order_by(_rank(), "sequence_number", "number")
    )


def _take(free: Iterable[Any], taken: list[ProvisioningRequest], refused: list[int], cards: set[str]) -> None:
    """The first of each card is taken; one behind an earlier request of its card (or of a card taken) is refused."""
    for request in free:
        if request.waits or request.smartcard_id in cards:
            refused.append(request.pk)
            continue
        if request.smartcard_id:
            cards.add(request.smartcard_id)
        taken.append(request)


def _top_up(priority: str, room: int, numbers: list[int], cards: set[str], now: datetime) -> list[int]:
    """Up to ``room`` requests of the batch's priority queued after the message's own and waiting for over
    ``CAS_BATCH_TOP_UP_AFTER`` seconds, due and free, oldest first, one per card and none of a card in the batch.
    Messages of one number each (a CRM creation's) then fill a batch whenever the workers are behind; the messages of
    those taken find them taken and end at once. Nothing is taken while the queue keeps up (no request waits that
    long). The caller locks them as it locks the message's own, and takes or refuses each.

    Read without a lock and without the card check, by the ``(life_cycle_state, number)`` index from the message's
    last number on, so that the cost does not depend on the planner's statistics of a table whose PENDING part churns:
    the locking SELECT then checks each card's order for these few rows only."""
    after = settings.CAS_BATCH_TOP_UP_AFTER
    if room <= 0 or not after:
        return []
    rows = (
        ProvisioningRequest.objects.filter(
            _due_and_free(now),
            priority=priority,
            number__gt=max(numbers),
            enqueued_at__lte=now - timedelta(seconds=after),
        )
        .order_by("life_cycle_state", "number")
        .values_list("number", "smartcard_id")[: room * 2]
    )
    chosen: list[int] = []
    seen = set(cards)
    for number, card in rows:
        if card in seen:  # the later of a card waits for its own message
            continue
        if card:
            seen.add(card)
        chosen.append(number)
        if len(chosen) == room:
            break
    return chosen


def _save_claims(claims: list[_Claim], now: datetime, process_id: str | None, until: datetime) -> None:
    """One UPDATE: each token up by one, the lease, ``sent_at`` of those to send; and the CA id they are addressed
    to (``request``), written at their first send (in the same UPDATE for a batch of one)."""
    same = {"attempts": F("attempts") + 1, "claimed_until": until, "process_id": process_id}
    if len(claims) == 1:
        one = claims[0].request
        ProvisioningRequest.objects.filter(pk=one.pk).update(**same, sent_at=one.sent_at, request=one.request)
        return
    sending = [claim.request.pk for claim in claims if isinstance(claim.command, CasCommand)]
    ProvisioningRequest.objects.filter(pk__in=[claim.request.pk for claim in claims]).update(
        **same, sent_at=Case(When(pk__in=sending, then=Value(now)), default=F("sent_at"))
    )
    first = [c.request for c in claims if isinstance(c.command, CasCommand) and not c.sent_before and c.request.request]
    ProvisioningRequest.objects.bulk_update(first, ["request"])


def _queue_unblocked(refused: list[int]) -> None:
    """Those refused whose earlier request has ended since: its worker looked for the card's next one when it
    committed, and if that was before this refusal committed it saw the request still queued and left it. Whichever
    of the two looks last queues it (both may: the second message finds it taken, and returns)."""
    if not refused:
        return
    now = timezone.now()
    free = ProvisioningRequest.objects.filter(
        _due_and_free(now), ~_earlier_of_same_card(now), pk__in=refused, enqueued_at__isnull=True
    )
    _enqueue(list(free.order_by(_rank(), "sequence_number", "number").values_list("number", "priority")))


def _claim(request: ProvisioningRequest, now: datetime, process_id: str | None, until: datetime) -> _Claim:
    """The claim on the row (saved by the caller, in bulk): the next token, the lease, and ``sent_at`` when there
    is something to send."""
    sent_before = request.sent_at is not None
    request.attempts += 1
    request.claimed_until, request.process_id = until, process_id
    try:
        params = command_params(request)
    except PinUnreadable:
        return _Claim(request, Refused("CA_PIN_UNREADABLE", "the PIN cannot be decrypted"), sent_before)
    request.sent_at, request.request = now, _addressed(request)
    return _Claim(request, CasCommand(idempotency_key=request.uid, type=request.type, params=params), sent_before)


def command_params(request: ProvisioningRequest) -> dict:
    """The head-end's parameters, from parameters_set (and the decrypted PIN; never stored in clear)."""
    params: dict = {}
    for entry in request.parameters_set:
        for name, value in entry.items():
            if name in ("id", "ca_pin"):
                continue
            if request.type in LIST_TYPES and name in LISTS:
                params.setdefault(LISTS[name], []).append(value)
            elif not (name.endswith("distribution_id") or name.endswith("distributor_id")):
                params[name] = value
    if request.type == RequestType.UPDATE_CA_PIN_TO_GIVEN_VALUE:
        params["pin"] = pin_decrypt(request.ca_pin_encrypted)
    return params


def _addressed(request: ProvisioningRequest) -> str | None:
    """What the seed's ``request`` field shows: the CA id the request is addressed to."""
    for entry in request.parameters_set:
        for name in ("smartcard_ca_id", "existing_smartcard_ca_id", "stb_ca_id"):
            if entry.get(name):
                return str(entry[name])
    return None


# --- the calls (no database access from here to _record) -----------------------------------------------------------


@cache
def _senders(priority: str) -> concurrent.futures.ThreadPoolExecutor:
    """The threads that make a batch's head-end calls: one pool per worker process and priority (made after the
    fork), so that EXPRESS calls never queue behind REGULAR ones."""
    name = f"cas-{priority.lower()}"
    return concurrent.futures.ThreadPoolExecutor(settings.CAS_BATCH_THREADS, thread_name_prefix=name)


os.register_at_fork(after_in_child=_senders.cache_clear)  # a forked child has none of its parent's threads


def _call(gateway: Gateway, claim: _Claim) -> Result | None:
    """Ask the head-end (a sender thread: the gateway only). None when the call was not made: the batch's lease
    ran out while it waited for a thread, and another worker may hold the request by now."""
    request, command = claim.request, claim.command
    if not isinstance(command, CasCommand) or request.claimed_until is None or timezone.now() >= request.claimed_until:
        return None
    try:
        outcome = gateway.lookup(request.uid) if claim.sent_before else None
        return outcome if outcome is not None else gateway.send(command)
    except GatewayUnavailable as exc:
        return Unavailable(str(exc))


def _call_all(claims: list[_Claim]) -> list[tuple[_Claim, Result]]:
    """The batch's calls, concurrently (a batch of one in this thread); a call that was not made, or failed with a
    defect, is left out (its claim runs out and the request is sent again, asking the head-end first)."""
    if not claims:
        return []
    gateway = gateway_from_settings()
    if len(claims) == 1:
        result = _call(gateway, claims[0])
        return [] if result is None else [(claims[0], result)]
    futures = [(claim, _senders(str(claim.request.priority)).submit(_call, gateway, claim)) for claim in claims]
    results = []
    for claim, future in futures:
        try:
            result = future.result()
        except Exception:  # a defect, not the head-end's answer: the others are recorded all the same
            log.exception("CAS call failed unexpectedly", extra={"number": claim.request.pk})
            continue
        if result is not None:
            results.append((claim, result))
    return results


# --- recording -----------------------------------------------------------------------------------------------------


def _record(results: list[tuple[_Claim, Result]]) -> dict[int, str]:
    """One transaction: lock the rows still PENDING under this batch's claim tokens, write the final outcomes and
    the retries in bulk, apply the effects, record the webhook events; after the commit, queue the retries and each
    card's next request, count the metrics, publish one live batch. A request whose claim was taken over (its lease
    ran out and another worker claimed it) records nothing: the other worker's outcome is the one kept."""
    if not results:
        return {}
    now = timezone.now()
    with transaction.atomic():
        held = dict(
            ProvisioningRequest.objects.select_for_update(of=("self",))
            .filter(pk__in=[claim.request.pk for claim, _ in results], life_cycle_state=PENDING)
            .order_by("pk")
            .values_list("pk", "attempts")
        )
        finished: list[ProvisioningRequest] = []
        retries: dict[int, list[ProvisioningRequest]] = {}  # whole seconds to wait (rounded up) -> requests
        for claim, result in results:
            request = claim.request
            if held.get(request.pk) != request.attempts:
                continue
            if isinstance(result, Unavailable) and request.attempts < MAX_ATTEMPTS:
                delay = math.ceil(_backoff(request.attempts))
                request.claimed_until = now + timedelta(seconds=delay)
                retries.setdefault(delay, []).append(request)
                continue
            if isinstance(result, Unavailable):
                result = Refused("GATEWAY_UNAVAILABLE", result.reason[:500])
            _finished(request, result, now)
            finished.append(request)
        _save_finished(finished, now)
        ProvisioningRequest.objects.bulk_update([r for group in retries.values() for r in group], ["claimed_until"])
        _apply_effects([request for request in finished if request.life_cycle_state == COMPLETED], now)
        webhook_events.conax_requests_finished(
            {
                "number": request.pk,
                "uid": request.uid,
                "type": request.type,
                "state": request.life_cycle_state,
                "smartcard_id": request.smartcard_id,
                "error": request.error_code,
            }
            for request in finished
        )
        transaction.on_commit(lambda: _after_record(finished, retries))
    states = {request.pk: str(request.life_cycle_state) for request in finished}
    states |= {request.pk: str(PENDING) for group in retries.values() for request in group}
    return states


def _save_finished(finished: list[ProvisioningRequest], now: datetime) -> None:
    """Per state: one UPDATE of what every request of it gets (its state, the date, no lease, the PIN wiped), one
    bulk update of what the head-end answered each."""
    for state, fields in ANSWERED.items():
        rows = [request for request in finished if request.life_cycle_state == state]
        same = {"life_cycle_state": state, "executed_date": now, "claimed_until": None, "ca_pin_encrypted": ""}
        if len(rows) == 1:  # one statement, no CASE
            ProvisioningRequest.objects.filter(pk=rows[0].pk).update(**same, **{f: getattr(rows[0], f) for f in fields})
        elif rows:
            ProvisioningRequest.objects.filter(pk__in=[request.pk for request in rows]).update(**same)
            ProvisioningRequest.objects.bulk_update(rows, fields)


def _backoff(attempts: int) -> float:
    return random.uniform(BACKOFF_BASE / 2, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempts - 1)))  # noqa: S311


def _finished(request: ProvisioningRequest, result: Completed | Rejected | Refused, now: datetime) -> None:
    """The final outcome on the row (saved by the caller, in bulk), the PIN wiped."""
    request.life_cycle_state = COMPLETED if isinstance(result, Completed) else REJECTED
    request.executed_date, request.claimed_until, request.ca_pin_encrypted = now, None, ""
    if isinstance(result, Completed):
        request.reference_number, request.response = result.reference_number, result.response
    elif isinstance(result, Refused):
        request.error_code, request.error_description = result.code, result.description
    else:
        request.error_code, request.error_description = "PROVIDER_REJECTED", "the head-end refused the request"
        request.provider_error_code, request.provider_error_description = result.code, result.description


def _after_record(finished: list[ProvisioningRequest], retries: dict[int, list[ProvisioningRequest]]) -> None:
    if retries:
        ProvisioningRequest.objects.filter(
            pk__in=[request.pk for group in retries.values() for request in group]
        ).update(enqueued_at=timezone.now())
        for delay, group in sorted(retries.items()):
            _send([(request.pk, request.priority) for request in group], countdown=delay)
    if not finished:
        return
    _dispatch_next_of_cards({request.smartcard_id for request in finished if request.smartcard_id})
    for request in finished:
        due = max(filter(None, (request.created_date, request.scheduled_date)), default=None)
        metrics.cas_request_finished(type=request.type, outcome=request.life_cycle_state, due_at=due)
    _publish(finished)


def _dispatch_next_of_cards(card_ids: Iterable[str]) -> None:
    """Queue each card's next due request (one query for all the cards), unless its own message is still on its way
    (queued recently)."""
    card_ids = list(card_ids)
    if not card_ids:
        return
    now = timezone.now()
    grace = now - timedelta(seconds=settings.CAS_DISPATCH_GRACE_SECONDS)
    place = Window(
        RowNumber(),
        partition_by=[F("smartcard_id")],
        order_by=[_rank().asc(), F("sequence_number").asc(), F("number").asc()],
    )
    heads = (
        ProvisioningRequest.objects.filter(_due_and_free(now), smartcard_id__in=card_ids)
        .annotate(place=place)
        .filter(place=1)
        .order_by(_rank(), "sequence_number", "number")
        .values_list("number", "priority", "enqueued_at")
    )
    _enqueue([(number, priority) for number, priority, queued in heads if queued is None or queued < grace])


def _publish(finished: list[ProvisioningRequest]) -> None:
    """Each box's device gets its request's ``cas.request``; staff get one ``cas.requests`` for the batch."""
    box_ids = {request.set_top_box_id for request in finished if request.set_top_box_id}
    devices = dict(SetTopBox.objects.filter(pk__in=box_ids).values_list("pk", "device_id")) if box_ids else {}
    states = [
        CasRequestState(
            device_id=devices.get(request.set_top_box_id),
            number=request.pk,
            request_type=request.type,
            state=request.life_cycle_state,
        )
        for request in finished
    ]
    per_device: list[LiveEvent] = [
        CasRequest(type="cas.request", **state) for state in states if state["device_id"] is not None
    ]
    publish_batch(per_device, CasRequests(type="cas.requests", requests=states))


# --- effects of COMPLETED requests ---------------------------------------------------------------------------------


def _apply_effects(completed: list[ProvisioningRequest], now: datetime) -> None:
    """Entitlements in one upsert (one row per card and service: the last request wins, as sent); pairings one by
    one, in order (each reads what the one before changed)."""
    entitlements = {
        (request.smartcard_id, request.service_id): Entitlement(
            smartcard_id=request.smartcard_id,
            service_id=request.service_id,
            active=request.type == RequestType.ADD_SUBSCRIPTIONS,
            changed_at=now,
            subscription_id=request.subscription_id,
        )
        for request in sorted(completed, key=lambda r: r.pk)
        if request.type in SUBSCRIPTION_TYPES and request.smartcard_id and request.service_id
    }
    if entitlements:
        Entitlement.objects.bulk_create(
            [entitlements[key] for key in sorted(entitlements)],
            update_conflicts=True,
            unique_fields=["smartcard", "service"],
            update_fields=["active", "changed_at", "subscription"],
        )
    for request in sorted(completed, key=lambda r: r.pk):
        if request.type in LIST_TYPES:
            _pairing_effect(request)


def _pairing_effect(request: ProvisioningRequest) -> None:
    params = command_params(request)
    if request.type == RequestType.CREATE_PAIRING:
        cards = Smartcard.objects.filter(ca_id__in=params.get("smartcard_ca_ids", []))
        boxes = SetTopBox.objects.filter(ca_id__in=params.get("stb_ca_ids", []))
        pairings = set(cards.values_list("pairing_id", flat=True)) | set(boxes.values_list("pairing_id", flat=True))
        if len(pairings) != 1 or None in pairings:  # all in one pairing already: the head-end changed nothing
            _pair(Pairing.objects.create(subscription_id=request.subscription_id), params)
    elif request.type == RequestType.ADD_TO_EXISTING_PAIRING:
        # The head-end refuses NOT_PAIRED for a card without a pairing, so a COMPLETED one always has one.
        pairing_id = (
            Smartcard.objects.filter(ca_id=params["existing_smartcard_ca_id"])
            .values_list("pairing_id", flat=True)
            .first()
        )
        if pairing_id is not None:
            _pair(Pairing(pk=pairing_id), params)


def _pair(pairing: Pairing, params: dict) -> None:
    Smartcard.objects.filter(ca_id__in=params.get("smartcard_ca_ids", [])).update(pairing=pairing)
    SetTopBox.objects.filter(ca_id__in=params.get("stb_ca_ids", [])).update(pairing=pairing)
