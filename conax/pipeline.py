"""Sending Conax provisioning requests to the head-end and recording what it answered.

The database is the source of truth; the broker only carries "look at request N" (its number, nothing else):
- **Dispatch**: a request created with ``process_immediately`` is queued right after its transaction commits
  (``express`` or ``regular`` queue by priority). If the process dies between commit and publish, or the broker
  loses the message (this machine's Redis keeps nothing on disk), the periodic run ``requests_dispatch`` is the
  safety net: every ``CAS_DISPATCH_INTERVAL`` seconds it queues every due PENDING request that no worker holds and
  that has not been queued in the last ``CAS_DISPATCH_GRACE_SECONDS`` (EXPRESS first). Scheduled requests
  (not immediate, or ``start_date`` in the future) are first queued by that run once due.
- **Claim**: a conditional UPDATE takes a due PENDING request for one worker: ``attempts`` goes up by one and is the
  claim's token, ``claimed_until`` its lease. It also refuses a request while an earlier due request of the same
  smartcard is PENDING (EXPRESS before REGULAR, then ``sequence_number``); the earlier one queues it when it ends.
- **Exactly once at the head-end**: the request's ``uid`` is the idempotency key. ``sent_at`` is written (and
  committed) before the call; a later attempt that finds it set first asks the head-end (``lookup``) and takes the
  stored outcome instead of sending again. The head-end also answers a repeated key with its first outcome.
- **Outcome**: written only where the claim token still matches, with its effect (entitlement, pairing) in the same
  transaction. Transient failures retry with jittered exponential backoff; after ``MAX_ATTEMPTS`` the request is
  REJECTED with ``GATEWAY_UNAVAILABLE``.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Case, Exists, F, IntegerField, OuterRef, Q, Value, When
from django.utils import timezone

from conax.choices import LifeCycleState, Priority, RequestType
from conax.crypto import PinUnreadable, pin_decrypt
from conax.gateway import CasCommand, Completed, GatewayUnavailable, Rejected, gateway_from_settings
from conax.models import Entitlement, Pairing, ProvisioningRequest, SetTopBox, Smartcard
from portal.kernel import metrics, queues
from portal.kernel.live import publish
from webhooks import events as webhook_events

log = logging.getLogger(__name__)
TASK = "conax.tasks.process_request"
MAX_ATTEMPTS = 8
BACKOFF_BASE, BACKOFF_CAP = 2.0, 300.0
DISPATCH_BATCH = 5000
PENDING, COMPLETED, REJECTED = LifeCycleState.PENDING, LifeCycleState.COMPLETED, LifeCycleState.REJECTED
# Parameters that a request may carry several times: the head-end gets them as lists.
LISTS = {"stb_ca_id": "stb_ca_ids", "smartcard_ca_id": "smartcard_ca_ids"}
LIST_TYPES = (RequestType.CREATE_PAIRING, RequestType.ADD_TO_EXISTING_PAIRING)


def _lease() -> timedelta:
    """Longer than any gateway call can take: a request held past it has lost its worker."""
    return timedelta(seconds=max(30.0, settings.CAS_TIMEOUT * 3))


def _rank():
    return Case(When(priority=Priority.EXPRESS, then=Value(0)), default=Value(1), output_field=IntegerField())


# --- dispatch ------------------------------------------------------------------------------------------------------


def _enqueue(numbers_by_priority: list[tuple[int, str]], countdown: float | None = None) -> None:
    numbers = [number for number, _ in numbers_by_priority]
    ProvisioningRequest.objects.filter(pk__in=numbers).update(enqueued_at=timezone.now())
    for number, priority in numbers_by_priority:
        queue = queues.EXPRESS if priority == Priority.EXPRESS else queues.REGULAR
        try:
            current_app.send_task(TASK, args=[number], queue=queue, countdown=countdown)
        except Exception as exc:  # the broker is down: the periodic run will queue it again
            log.warning("request not queued", extra={"number": number, "error": type(exc).__name__})


def request_dispatch_on_commit(request: ProvisioningRequest) -> None:
    pair = [(request.pk, request.priority)]
    transaction.on_commit(lambda: _enqueue(pair))


def requests_due(limit: int = DISPATCH_BATCH) -> list[tuple[int, str]]:
    """Due PENDING requests that no worker holds and no queue has had for a while: EXPRESS first, then in order."""
    now = timezone.now()
    grace = now - timedelta(seconds=settings.CAS_DISPATCH_GRACE_SECONDS)
    due = ProvisioningRequest.objects.filter(
        Q(life_cycle_state=PENDING, scheduled_date__lte=now)
        & (Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        & (Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=grace))
    ).exclude(Q(smartcard__isnull=False) & _earlier_of_same_card(now))  # its predecessor queues it when it ends
    return list(due.order_by(_rank(), "sequence_number", "number").values_list("number", "priority")[:limit])


def requests_dispatch() -> int:
    """The periodic run (beat): queue what is due; the safety net for messages lost before or after publishing."""
    batch = requests_due()
    _enqueue(batch)
    return len(batch)


# --- one request ---------------------------------------------------------------------------------------------------


def _earlier_of_same_card(now) -> Exists:
    """A due PENDING request of the same smartcard that goes first: EXPRESS before REGULAR, then by sequence."""
    same = ProvisioningRequest.objects.filter(
        smartcard_id=OuterRef("smartcard_id"), life_cycle_state=PENDING, scheduled_date__lte=now
    ).exclude(pk=OuterRef("pk"))
    first = Q(priority=Priority.EXPRESS) & ~Q(priority=OuterRef("priority"))
    before = Q(priority=OuterRef("priority"), sequence_number__lt=OuterRef("sequence_number"))
    return Exists(same.filter(first | before))


def _claim(number: int, process_id: str | None) -> ProvisioningRequest | None:
    now = timezone.now()
    claimable = ProvisioningRequest.objects.filter(
        Q(pk=number, life_cycle_state=PENDING, scheduled_date__lte=now)
        & (Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
    ).exclude(Q(smartcard__isnull=False) & _earlier_of_same_card(now))
    claimed = claimable.update(attempts=F("attempts") + 1, claimed_until=now + _lease(), process_id=process_id)
    if not claimed:
        # Due and free but refused: an earlier request of its card goes first. Forget that it was queued, so
        # that the earlier one queues it when it ends (and only then).
        ProvisioningRequest.objects.filter(
            Q(pk=number, life_cycle_state=PENDING, scheduled_date__lte=now)
            & (Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        ).update(enqueued_at=None)
        return None
    return ProvisioningRequest.objects.select_related("smartcard").get(pk=number)


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


def request_process(*, number: int, process_id: str | None = None) -> str | None:
    """Send one request if it is due and free; record its outcome. Returns the new state, or None if not taken."""
    request = _claim(number, process_id)
    if request is None:
        return None
    try:
        command = CasCommand(idempotency_key=request.uid, type=request.type, params=command_params(request))
    except PinUnreadable:
        return _finish(request, Rejected("CA_PIN_UNREADABLE", "the PIN cannot be decrypted"), ours=True)
    gateway = gateway_from_settings()
    try:
        outcome = gateway.lookup(request.uid) if request.sent_at else None
        if outcome is None:
            if not _mark_sent(request):
                return None
            outcome = gateway.send(command)
    except GatewayUnavailable as exc:
        return _retry_later(request, str(exc))
    return _finish(request, outcome)


def _mark_sent(request: ProvisioningRequest) -> bool:
    """Written and committed before the call: from now on a retry asks the head-end before it sends again."""
    marked = ProvisioningRequest.objects.filter(pk=request.pk, attempts=request.attempts, life_cycle_state=PENDING)
    return bool(marked.update(sent_at=timezone.now(), request=_addressed(request)))


def _addressed(request: ProvisioningRequest) -> str | None:
    """What the seed's ``request`` field shows: the CA id the request is addressed to."""
    for entry in request.parameters_set:
        for name in ("smartcard_ca_id", "existing_smartcard_ca_id", "stb_ca_id"):
            if entry.get(name):
                return str(entry[name])
    return None


def _retry_later(request: ProvisioningRequest, error: str) -> str:
    if request.attempts >= MAX_ATTEMPTS:
        return _finish(request, Rejected("GATEWAY_UNAVAILABLE", error[:500]), ours=True)
    delay = random.uniform(BACKOFF_BASE / 2, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (request.attempts - 1)))  # noqa: S311
    released = ProvisioningRequest.objects.filter(pk=request.pk, attempts=request.attempts, life_cycle_state=PENDING)
    if released.update(claimed_until=timezone.now() + timedelta(seconds=delay)):
        _enqueue([(request.pk, request.priority)], countdown=delay)
    return PENDING


def _finish(request: ProvisioningRequest, outcome: Completed | Rejected, *, ours: bool = False) -> str:
    """Record the outcome where the claim still holds, apply its effect, wipe the PIN; then free the card's next."""
    now = timezone.now()
    state = COMPLETED if isinstance(outcome, Completed) else REJECTED
    fields = {"life_cycle_state": state, "executed_date": now, "claimed_until": None, "ca_pin_encrypted": ""}
    if isinstance(outcome, Completed):
        fields |= {"reference_number": outcome.reference_number, "response": outcome.response}
    elif ours:
        fields |= {"error_code": outcome.code, "error_description": outcome.description}
    else:
        fields |= {
            "error_code": "PROVIDER_REJECTED",
            "error_description": "the head-end refused the request",
            "provider_error_code": outcome.code,
            "provider_error_description": outcome.description,
        }
    with transaction.atomic():
        mine = ProvisioningRequest.objects.filter(pk=request.pk, attempts=request.attempts, life_cycle_state=PENDING)
        if not mine.update(**fields):
            return request.life_cycle_state
        if state == COMPLETED:
            apply_effect(request, now)
        webhook_events.conax_request_finished(
            number=request.pk,
            uid=request.uid,
            type=request.type,
            state=state,
            smartcard_id=request.smartcard_id,
            error=fields.get("error_code"),
        )
        if request.smartcard_id:
            transaction.on_commit(lambda: _dispatch_next_of_card(request.smartcard_id))
    due = max(filter(None, (request.created_date, request.scheduled_date)), default=None)
    metrics.cas_request_finished(type=request.type, outcome=state, due_at=due)
    _publish(request, state)
    return state


def _dispatch_next_of_card(smartcard_id: str) -> None:
    """Queue the card's next due request, unless its own message is still on its way (queued recently)."""
    now = timezone.now()
    grace = now - timedelta(seconds=settings.CAS_DISPATCH_GRACE_SECONDS)
    following = ProvisioningRequest.objects.filter(
        smartcard_id=smartcard_id, life_cycle_state=PENDING, scheduled_date__lte=now
    ).filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
    nxt = following.order_by(_rank(), "sequence_number", "number").values("number", "priority", "enqueued_at").first()
    if nxt and (nxt["enqueued_at"] is None or nxt["enqueued_at"] < grace):
        _enqueue([(nxt["number"], nxt["priority"])])


def _publish(request: ProvisioningRequest, state: str) -> None:
    device_id = SetTopBox.objects.filter(pk=request.set_top_box_id).values_list("device_id", flat=True).first()
    publish(
        {
            "type": "cas.request",
            "device_id": device_id,
            "number": request.pk,
            "request_type": request.type,
            "state": state,
        }
    )


# --- effects of a COMPLETED request --------------------------------------------------------------------------------


def apply_effect(request: ProvisioningRequest, now) -> None:
    params = command_params_without_pin(request)
    if request.type in (RequestType.ADD_SUBSCRIPTIONS, RequestType.CANCEL_SUBSCRIPTIONS):
        Entitlement.objects.update_or_create(
            smartcard_id=request.smartcard_id,
            service_id=request.service_id,
            defaults={
                "active": request.type == RequestType.ADD_SUBSCRIPTIONS,
                "changed_at": now,
                "subscription_id": request.subscription_id,
            },
        )
    elif request.type == RequestType.CREATE_PAIRING:
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


def command_params_without_pin(request: ProvisioningRequest) -> dict:
    if request.type == RequestType.UPDATE_CA_PIN_TO_GIVEN_VALUE:
        return {}
    return command_params(request)
