"""Outbound webhooks: endpoints, the outbox (``emit``), sending (``delivery_send``), retries and redelivery.

- ``emit`` is called by an app's service inside the transaction of the change it reports: the delivery rows commit
  or roll back with the change (an outbox), and their tasks are queued after the commit.
- The unit of work is a batch (``deliveries_send_batch``, the ``deliver_batch`` task): one short transaction claims
  up to WEBHOOK_BATCH_SIZE due deliveries for a lease (``claimed_until``), they are POSTed concurrently outside any
  transaction (a thread pool, one keep-alive connection pool per endpoint), and one short transaction records the
  outcomes of those still under the same claim. Two live workers never send one delivery at once; a worker killed
  mid-send leaves its batch PENDING and the sweep sends it again once the lease ran out (a receiver may see an event
  twice, never lose one; it deduplicates by the event id). An endpoint gets the events of one object in order: only
  the oldest pending delivery of an (endpoint, object) can be claimed, so a batch holds one per object at most and
  the next is claimable only once the earlier one is no longer pending. ``delivery_send`` does the same for one
  delivery (the ``deliver`` task, for messages queued before batches).
- A failure (a status outside 2xx, a redirect, a timeout, a refused connection) is retried with exponential backoff
  until ``WEBHOOK_MAX_ATTEMPTS``, then the delivery is DEAD (the dead letter) until staff redeliver it.
"""

from __future__ import annotations

import concurrent.futures
import json
import secrets
import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.cache import cache as shared_cache
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from portal.kernel import metrics
from portal.kernel.live import WebhookDeliveryState, publish
from webhooks import signing
from webhooks.choices import DeliveryState, EventType
from webhooks.crypto import SecretUnreadable, secret_decrypt, secret_encrypt
from webhooks.exceptions import EndpointExists, InvalidEndpoint, NotRedeliverable
from webhooks.models import Delivery, Endpoint

MIN_SECRET = 16
SWEEP_BATCH = 1000
MAX_COUNTDOWN = 300  # retries further away than this are left to the sweep (under the broker's visibility timeout)


def secret_generate() -> str:
    return secrets.token_urlsafe(32)


def endpoint_save(
    *,
    endpoint: Endpoint | None = None,
    name: str,
    url: str,
    event_types: list[str],
    active: bool = True,
    secret: str | None = None,
) -> Endpoint:
    """Create or change an endpoint; ``secret`` None keeps the current one (a new endpoint needs one)."""
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise InvalidEndpoint("url must be an http or https URL", field="url")
    unknown = sorted(set(event_types) - set(EventType.values))
    if unknown or not event_types:
        raise InvalidEndpoint(f"unknown event type {unknown[0]}" if unknown else "name at least one event type")
    endpoint = endpoint or Endpoint()
    if secret is not None:
        if len(secret) < MIN_SECRET:
            raise InvalidEndpoint(f"the secret must be at least {MIN_SECRET} characters", field="secret")
        endpoint.secret_encrypted = secret_encrypt(secret)
    elif not endpoint.secret_encrypted:
        raise InvalidEndpoint("a new endpoint needs a secret", field="secret")
    endpoint.name, endpoint.url, endpoint.active = name, url, active
    endpoint.event_types = sorted(set(event_types))
    try:
        with transaction.atomic():
            endpoint.save()  # webhooks.apps: every process re-reads the endpoints after the commit
    except IntegrityError as exc:
        raise EndpointExists(f"an endpoint named {name} exists", field="name") from exc
    return endpoint


def endpoint_delete(*, endpoint: Endpoint) -> None:
    """Delete an endpoint with its delivery log."""
    endpoint.delete()


# --- which endpoints take an event: a per-process copy, checked against a version in the shared cache ------------

VERSION_KEY = "webhooks:endpoints:version"
_endpoints: dict[str, Any] = {"version": None, "by_type": {}}


def endpoints_changed() -> None:
    """Every process re-reads the endpoints on its next event (called after an endpoint's change commits, so a
    process that re-reads at once sees the change)."""
    shared_cache.set(VERSION_KEY, uuid.uuid4().hex, timeout=None)


def endpoints_forget() -> None:
    """This process re-reads the endpoints on its next event (tests: rows rolled back under a kept version)."""
    _endpoints["version"] = None


def _version() -> str:
    version = shared_cache.get(VERSION_KEY)
    if version is None:  # never set, or evicted: a fresh one makes every process re-read
        shared_cache.add(VERSION_KEY, uuid.uuid4().hex, timeout=None)
        version = shared_cache.get(VERSION_KEY)
    return version


def endpoints_for(event_type: str) -> list[int]:
    """The active endpoints that take ``event_type``: one cache read (Redis in production, local memory embedded)
    and no query while no endpoint changed. The version is read before the endpoints, so a change committed after
    the read is picked up by the next call."""
    version = _version()
    if _endpoints["version"] != version:
        by_type: dict[str, list[int]] = {}
        for pk, types in Endpoint.objects.filter(active=True).order_by("pk").values_list("pk", "event_types"):
            for name in types:
                by_type.setdefault(name, []).append(pk)
        _endpoints.update(version=version, by_type=by_type)
    return list(_endpoints["by_type"].get(str(event_type), ()))


def takes(event_type: str) -> bool:
    """Whether an event of this type would be recorded: a hot path opens its transaction only then."""
    return bool(endpoints_for(event_type))


# --- the outbox ----------------------------------------------------------------------------------------------------


def emit(*, event_type: EventType, events: list[tuple[str, dict[str, Any]]]) -> list[int]:
    """Record events of one type, ``(object_key, data)`` each, for every active endpoint that takes the type, in the
    caller's transaction; their sending is queued after the commit. ``data`` is the object as the event shows it:
    never a secret (CIK, token, PIN). No query when no endpoint takes the type (``endpoints_for``), one insert when
    some do, whatever the number of events."""
    if not events:
        return []
    endpoints = endpoints_for(event_type)
    if not endpoints:
        return []
    now = timezone.now()
    rows = []
    for object_key, data in events:
        event_id = uuid.uuid4()
        payload = {"id": str(event_id), "type": str(event_type), "occurred_at": now.isoformat(), "data": data}
        rows += [
            Delivery(
                event_id=event_id,
                event_type=event_type,
                object_key=object_key,
                payload=payload,
                endpoint_id=endpoint,
                next_attempt_at=now,
            )
            for endpoint in endpoints
        ]
    ids = [row.pk for row in Delivery.objects.bulk_create(rows)]
    transaction.on_commit(lambda: _queue(ids))
    return ids


def _queue(ids: list[int], countdown: float = 0) -> None:
    """Ask for the sending of ``ids``: one batch message per WEBHOOK_BATCH_SIZE of them (a batch claims whatever is
    due, these among it; the outbox, not the message, says what to send)."""
    if ids:
        _queue_batches(-(-len(ids) // settings.WEBHOOK_BATCH_SIZE), countdown)


def _queue_batches(count: int, countdown: float = 0) -> None:
    from webhooks.tasks import deliver_batch  # the tasks module imports this one

    for _ in range(count):
        deliver_batch.apply_async(countdown=countdown)


# --- sending -------------------------------------------------------------------------------------------------------


@cache
def _client(endpoint_id: int) -> httpx.Client:
    """One keep-alive connection pool per endpoint and worker process, as wide as the sending threads (httpx's client
    is thread-safe); redirects are never followed (a 3xx is a failure)."""
    width = settings.WEBHOOK_BATCH_THREADS
    limits = httpx.Limits(max_connections=width, max_keepalive_connections=width)
    return httpx.Client(follow_redirects=False, trust_env=False, limits=limits)


@cache
def _senders() -> concurrent.futures.ThreadPoolExecutor:
    """The threads that POST a batch concurrently (one pool per worker process, made after the fork)."""
    return concurrent.futures.ThreadPoolExecutor(settings.WEBHOOK_BATCH_THREADS, thread_name_prefix="webhook")


def body_of(delivery: Delivery) -> bytes:
    """The bytes sent and signed: the payload as compact JSON with sorted keys (the same bytes on every attempt)."""
    return json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def backoff(attempts: int) -> timedelta:
    """Seconds before attempt ``attempts + 1``: base * 2^(attempts - 1), at most WEBHOOK_RETRY_MAX_SECONDS."""
    seconds = settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.WEBHOOK_RETRY_MAX_SECONDS))


def lease() -> timedelta:
    """How long a claim holds a delivery: past the longest a POST can take (httpx's timeout is per phase: connect,
    write, read), so a live sender keeps it and a dead one's is taken over soon after."""
    return timedelta(seconds=settings.WEBHOOK_TIMEOUT * 3 + 5)


def batch_lease(limit: int) -> timedelta:
    """A batch's claim: one lease per round of POSTs its threads make (a delivery may wait for a thread)."""
    return lease() * -(-limit // settings.WEBHOOK_BATCH_THREADS)


def delivery_send(*, delivery_id: int) -> str | None:
    """Send one delivery if it is pending, due, not claimed by a live sender and the first pending one of its object
    for its endpoint; record the outcome. Returns the state it ended in, or None when it was not this call's to send.

    No transaction or row lock is held while POSTing: a short transaction claims the delivery (``claimed_until``),
    the POST runs outside any, and a second short one records the outcome only under the same claim. A worker
    killed mid-send leaves the delivery PENDING and claimed until the lease runs out; the sweep sends it again."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return None
    code, error, latency = _post(delivery)
    with transaction.atomic():
        mine = (
            Delivery.objects.select_for_update(of=("self",))
            .filter(pk=delivery.pk, state=DeliveryState.PENDING, claimed_until=delivery.claimed_until)
            .exists()
        )
        if not mine:  # the lease ran out and another sender took it: its outcome is the one recorded
            return None
        _record(delivery, code, error, latency)
    if delivery.state == DeliveryState.PENDING:
        wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
        if wait <= MAX_COUNTDOWN:
            _queue([delivery.pk], countdown=max(wait, 0))
    else:
        _queue_next(delivery)
    return delivery.state


def _claim(delivery_id: int) -> Delivery | None:
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint")
            .filter(_unclaimed(now), pk=delivery_id, state=DeliveryState.PENDING, next_attempt_at__lte=now)
            .first()
        )
        if delivery is None or _waits_for_earlier(delivery):
            return None
        delivery.claimed_until = now + lease()
        delivery.save(update_fields=["claimed_until"])
    return delivery


def deliveries_send_batch(*, limit: int | None = None) -> dict[str, int]:
    """Claim up to ``limit`` (WEBHOOK_BATCH_SIZE) due deliveries, POST them concurrently, record their outcomes.
    Returns the count of each state they ended in ("lost": a claim another sender took over; nothing recorded).

    Outcomes are recorded (and published) in rounds: every WEBHOOK_TIMEOUT (+0.5 s) at most, the POSTs that ended
    since the last round, so one slow receiver never holds the others' outcomes past the timeout; what has not ended
    when the batch's lease runs out records nothing (the sweep sends it again). A full batch asks for another at once
    (other worker processes join in); any batch asks for one more after recording, for the deliveries its outcomes
    unblocked (each object's next one)."""
    limit = limit or settings.WEBHOOK_BATCH_SIZE
    batch = _claim_batch(limit)
    if not batch:
        return {}
    if len(batch) == limit:
        _queue_batches(1)
    futures = {_senders().submit(_post, delivery): delivery for delivery in batch}
    recorded: list[Delivery] = []
    pending, until = set(futures), batch[0].claimed_until or timezone.now()  # the batch's claim (all share it)
    while pending and timezone.now() < until:
        done, pending = concurrent.futures.wait(pending, timeout=settings.WEBHOOK_TIMEOUT + 0.5)
        recorded += _record_batch([(futures[f], f.result()) for f in done])
    _queue_batches(1)
    retries = [d.next_attempt_at for d in recorded if d.state == DeliveryState.PENDING]
    if retries and (wait := (min(retries) - timezone.now()).total_seconds()) <= MAX_COUNTDOWN:
        _queue_batches(1, countdown=max(wait, 0))
    counts = {"lost": len(batch) - len(recorded)} if len(recorded) < len(batch) else {}
    for delivery in recorded:
        counts[str(delivery.state)] = counts.get(str(delivery.state), 0) + 1
    return counts


def _claim_batch(limit: int) -> list[Delivery]:
    """One short transaction: the oldest due, unclaimed pending deliveries that have no earlier pending one for
    their (endpoint, object), locked (rows another sender is claiming are skipped, not waited for), claimed."""
    now = timezone.now()
    earlier = Delivery.objects.filter(
        endpoint_id=OuterRef("endpoint_id"),
        object_key=OuterRef("object_key"),
        state=DeliveryState.PENDING,
        pk__lt=OuterRef("pk"),
    )
    until = now + batch_lease(limit)
    with transaction.atomic():
        due = (
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint")
            .filter(_unclaimed(now), ~Exists(earlier), state=DeliveryState.PENDING, next_attempt_at__lte=now)
            .order_by("pk")
        )
        batch = list(due[:limit])
        Delivery.objects.filter(pk__in=[d.pk for d in batch]).update(claimed_until=until)
    for delivery in batch:
        delivery.claimed_until = until
    return batch


RECORDED = [
    "claimed_until",
    "attempts",
    "last_status_code",
    "last_error",
    "last_latency_ms",
    "state",
    "delivered_at",
    "next_attempt_at",
]


def _record_batch(sent: list[tuple[Delivery, tuple[int | None, str, int]]]) -> list[Delivery]:
    """One short transaction: lock the deliveries still PENDING under this batch's claim, record their outcomes in
    one UPDATE; one live event for all of them after the commit. A delivery whose claim was taken over records
    nothing (the sender that took it records its outcome)."""
    if not sent:
        return []
    claims = {delivery.pk: delivery.claimed_until for delivery, _ in sent}
    with transaction.atomic():
        held = Delivery.objects.select_for_update(of=("self",)).filter(pk__in=claims, state=DeliveryState.PENDING)
        mine = {pk for pk, until in held.values_list("pk", "claimed_until") if until == claims[pk]}
        recorded = []
        for delivery, outcome in sent:
            if delivery.pk in mine:
                _apply(delivery, *outcome)
                recorded.append(delivery)
        Delivery.objects.bulk_update(recorded, RECORDED)
        events = [(d.pk, str(d.state), d.attempts) for d in recorded]
        transaction.on_commit(lambda: _published_batch(events))
    return recorded


def _unclaimed(now: datetime) -> Q:
    return Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)


def _waits_for_earlier(delivery: Delivery) -> bool:
    earlier = Delivery.objects.filter(
        endpoint_id=delivery.endpoint_id,
        object_key=delivery.object_key,
        state=DeliveryState.PENDING,
        pk__lt=delivery.pk,
    )
    return earlier.exists()


def _queue_next(delivery: Delivery) -> None:
    following = Delivery.objects.filter(
        endpoint_id=delivery.endpoint_id, object_key=delivery.object_key, state=DeliveryState.PENDING
    ).order_by("pk")
    head = following.values_list("pk", flat=True).first()
    if head is not None:
        _queue([head])


def _post(delivery: Delivery) -> tuple[int | None, str, int]:
    """(status code or None, error text, latency ms). The response body is never read."""
    try:
        secret = secret_decrypt(delivery.endpoint.secret_encrypted)
    except SecretUnreadable:
        return None, "secret unreadable (SECRET_KEY changed): set a new secret", 0
    body = body_of(delivery)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "provisioning-portal-webhooks/1",
        "X-Portal-Event-Id": str(delivery.event_id),
        "X-Portal-Event-Type": delivery.event_type,
        "X-Portal-Delivery": str(delivery.pk),
        signing.HEADER: signing.sign(secret, int(time.time()), body),
    }
    started = time.monotonic()
    try:
        request = {"content": body, "headers": headers, "timeout": settings.WEBHOOK_TIMEOUT}
        with _client(delivery.endpoint_id).stream("POST", delivery.endpoint.url, **request) as response:
            code = response.status_code
    except httpx.TimeoutException:
        return None, "timed out", _ms(started)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:255], _ms(started)
    error = "" if 200 <= code < 300 else (f"redirect to {code} not followed" if 300 <= code < 400 else f"HTTP {code}")
    return code, error, _ms(started)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _record(delivery: Delivery, code: int | None, error: str, latency: int) -> None:
    _apply(delivery, code, error, latency)
    delivery.save(update_fields=RECORDED)
    transaction.on_commit(lambda: _published(delivery.pk, str(delivery.state), delivery.attempts))


def _apply(delivery: Delivery, code: int | None, error: str, latency: int) -> None:
    """The outcome of one attempt on the row (not saved): delivered, dead, or pending again after the backoff."""
    delivery.attempts += 1
    delivery.last_status_code, delivery.last_error, delivery.last_latency_ms = code, error, latency
    now = timezone.now()
    if not error:
        delivery.state, delivery.delivered_at = DeliveryState.DELIVERED, now
    elif delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        delivery.state = DeliveryState.DEAD
    else:
        delivery.next_attempt_at = now + backoff(delivery.attempts)
    outcome = {"DELIVERED": "delivered", "DEAD": "dead"}.get(str(delivery.state), "retry")
    metrics.webhook_attempted(event_type=delivery.event_type, outcome=outcome, seconds=latency / 1000)
    delivery.claimed_until = None


def _published_all(ids: list[int]) -> None:
    _published_batch([(pk, DeliveryState.PENDING.value, 0) for pk in ids])


def _published(pk: int, state: str, attempts: int) -> None:
    publish({"type": "webhook.delivery", "delivery_id": pk, "state": state, "attempts": attempts})


def _published_batch(events: Iterable[tuple[int, str, int]]) -> None:
    """One live event for a batch (the delivery log re-reads itself once, not once per delivery)."""
    deliveries = [
        WebhookDeliveryState(delivery_id=pk, state=state, attempts=attempts) for pk, state, attempts in events
    ]
    if deliveries:
        publish({"type": "webhook.deliveries", "deliveries": deliveries})


def deliveries_sweep() -> int:
    """Queue the due pending deliveries (retries past the countdown, messages lost with a worker or a broker): the
    oldest first, each object's first one among them. Run by beat every WEBHOOK_SWEEP_INTERVAL seconds."""
    now = timezone.now()
    due = Delivery.objects.filter(_unclaimed(now), state=DeliveryState.PENDING, next_attempt_at__lte=now)
    ids = list(due.order_by("pk").values_list("pk", flat=True)[:SWEEP_BATCH])
    _queue(ids)  # one batch message per WEBHOOK_BATCH_SIZE
    return len(ids)


def deliveries_redeliver(*, ids: list[int]) -> int:
    """Staff "redeliver": DEAD or DELIVERED deliveries are sent again (same event id, so a receiver that had it
    ignores it), with a fresh attempt budget."""
    with transaction.atomic():
        rows = Delivery.objects.filter(pk__in=ids).exclude(state=DeliveryState.PENDING)
        taken = list(rows.select_for_update().values_list("pk", flat=True))
        if not taken:
            raise NotRedeliverable("only delivered or dead deliveries can be sent again", ids=ids)
        Delivery.objects.filter(pk__in=taken).update(
            state=DeliveryState.PENDING,
            attempts=0,
            next_attempt_at=timezone.now(),
            delivered_at=None,
            claimed_until=None,
        )
        transaction.on_commit(lambda: _queue(taken))
        transaction.on_commit(lambda: _published_all(taken))
    return len(taken)
