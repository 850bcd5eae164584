"""Conax provisioning requests: creation (one transaction each, with their parameters) and the rules that apply
before anything reaches the head-end. Sending and recording outcomes is ``conax.pipeline``.

Each request gets ``sequence_number``: its place among the requests of its smartcard (1, 2, …), taken under a lock
on the smartcard row so two concurrent creations never share one. The worker sends a card's due requests in
priority order (EXPRESS first), then in that sequence.
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from auditlog.cid import get_cid
from auditlog.models import LogEntry
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Field, ProtectedError, Q
from django.db.models.signals import post_save, pre_save
from django.http import HttpRequest
from django.utils import timezone

from conax import selectors
from conax.cas_protocol import BARK_DEFAULT_SECONDS, BARK_MAX, MAIL_MAX
from conax.choices import LifeCycleState, Priority, RequestType
from conax.crypto import pin_encrypt
from conax.exceptions import (
    AccessDenied,
    Duplicate,
    IllegalState,
    InUse,
    InvalidCredentials,
    InvalidParameter,
    RuleViolation,
)
from conax.importing import BadRow
from conax.models import ProvisioningRequest, Service, SetTopBox, Smartcard, Subscription, Unit, new_id
from portal.kernel import services as portal_services
from portal.kernel.authentication import api_authenticate
from portal.kernel.choices import TokenPurpose
from portal.kernel.db import statements
from portal.kernel.models import ApiToken
from portal.kernel.permissions import is_support_staff

REPEAT_INTERVAL = range(10, 2551, 10)
REPETITIONS = range(1, 256)
PIN = re.compile(r"\d{4}")


@dataclass(frozen=True)
class Actor:
    user: User | None
    unit: Unit | None = None


@dataclass(frozen=True)
class Options:
    priority: Priority = Priority.REGULAR
    process_immediately: bool = False  # the seed's answers show 0 when it is not given
    start_date: datetime | None = None


@dataclass
class Draft:
    """What a request will hold: its type, the rows it is about and its parameters_set entries, in order."""

    type: RequestType
    params: list[tuple[str, Any]] = field(default_factory=list)
    subscription: Subscription | None = None
    smartcard: Smartcard | None = None
    service: Service | None = None
    set_top_box: SetTopBox | None = None
    ca_pin: str | None = None


# The sequence lock in SQL written once (``portal.kernel.db.statements``; the ORM's two queries cost more CPU than
# the creation's insert): the smartcard row locked (no-op on SQLite, whose transactions are IMMEDIATE), then, in a
# statement of its own so that its snapshot is taken once the lock is held, the sequence of the card's last request.
LOCK_SQL = "SELECT 1 FROM {table} WHERE {pk} = %s{for_update}"
LAST_SEQUENCE_SQL = "SELECT {sequence} FROM {table} WHERE {smartcard} = %s ORDER BY {number} DESC LIMIT 1"


def _next_sequence(smartcard: Smartcard | None) -> int | None:
    if smartcard is None:
        return None
    for_update = " FOR UPDATE" if connection.features.has_select_for_update else ""
    lock = LOCK_SQL.format(
        table=statements.table(Smartcard), pk=statements.column(Smartcard, "pk"), for_update=for_update
    )
    statements.fetch(lock, [smartcard.pk])
    last = LAST_SEQUENCE_SQL.format(
        sequence=statements.column(ProvisioningRequest, "sequence_number"),
        table=statements.table(ProvisioningRequest),
        smartcard=statements.column(ProvisioningRequest, "smartcard"),
        number=statements.column(ProvisioningRequest, "pk"),
    )
    rows = statements.fetch(last, [smartcard.pk])
    return ((rows[0][0] if rows else None) or 0) + 1


INSERT_SQL = "INSERT INTO {table} ({columns}) VALUES ({values}) RETURNING {pk}"


@functools.cache
def _insert_statement() -> tuple[str, tuple[Field, ...]]:
    fields = tuple(f for f in ProvisioningRequest._meta.concrete_fields if not f.primary_key)
    sql = INSERT_SQL.format(
        table=statements.table(ProvisioningRequest),
        columns=", ".join(statements.quote(f.column) for f in fields),
        values=statements.placeholders(len(fields)),
        pk=statements.column(ProvisioningRequest, "pk"),
    )
    return sql, fields


def _insert(request: ProvisioningRequest) -> None:
    """The request's row, in SQL written once: compiling the ORM's INSERT was a fifth of a creation's CPU. Each value
    is what the ORM would write (the field's ``pre_save`` and ``get_db_prep_save``: dates, JSON, foreign keys). The
    ORM's own ``save()`` is kept where it does more: a save signal with a receiver for requests (none today: they
    keep their own history), or a database that cannot return the new number."""
    if not connection.features.can_return_columns_from_insert or any(
        signal.has_listeners(ProvisioningRequest) for signal in (pre_save, post_save)
    ):
        request.save(force_insert=True)
        return
    sql, fields = _insert_statement()
    values = [f.get_db_prep_save(f.pre_save(request, add=True), connection) for f in fields]
    request.pk = statements.fetch(sql, values)[0][0]
    request._state.adding, request._state.db = False, connection.alias


def request_create(
    *, draft: Draft, actor: Actor, options: Options, retry_of: ProvisioningRequest | None = None
) -> ProvisioningRequest:
    """Create the request PENDING; with ``process_immediately`` (and due) it is queued for the worker after the
    commit, marked queued by its own INSERT (``enqueued_at``: no UPDATE of its own)."""
    from conax.pipeline import request_dispatch_on_commit  # the pipeline imports this module

    now = timezone.now()
    scheduled = options.start_date or now
    queued = options.process_immediately and scheduled <= now
    with transaction.atomic():
        request = ProvisioningRequest(
            type=draft.type,
            priority=options.priority,
            process_immediately=options.process_immediately,
            scheduled_date=scheduled,
            enqueued_at=now if queued else None,
            sequence_number=_next_sequence(draft.smartcard),
            parameters_set=[{name: value, "id": new_id()} for name, value in draft.params],
            ca_pin_encrypted=pin_encrypt(draft.ca_pin) if draft.ca_pin else "",
            subscription=draft.subscription,
            smartcard=draft.smartcard,
            service=draft.service,
            set_top_box=draft.set_top_box,
            created_by_user=actor.user,
            updated_by_user=actor.user,
            created_by_unit=actor.unit,
            updated_by_unit=actor.unit,
            retry_of=retry_of,
        )
        _insert(request)
        if queued:
            request_dispatch_on_commit(request)
    return request


# --- drafts, one per request type: the rules checked before a request exists ---------------------------------------


def _member(subscription: Subscription | None, smartcard: Smartcard) -> None:
    if subscription is not None and smartcard.subscription_id not in (None, subscription.pk):
        detail = f"smartcard {smartcard.serial_number} is not in subscription {subscription.number}"
        raise RuleViolation("smartcard does not belong to the subscription", description=detail)


def subscription_change(
    *, type: RequestType, subscription: Subscription, service: Service, smartcard: Smartcard
) -> Draft:
    """ADD_SUBSCRIPTIONS / CANCEL_SUBSCRIPTIONS: the service must be one of the subscription's."""
    if not selectors.subscription_has_service(subscription=subscription, service=service):
        detail = f"service {service.code} is not in subscription {subscription.number}"
        raise RuleViolation("service does not belong to the subscription", description=detail)
    _member(subscription, smartcard)
    params = [
        ("sub_provisioning_distribution_id", subscription.pk),
        ("service_ca_id", service.service_ca_id),
        ("smartcard_ca_id", smartcard.ca_id),
    ]
    return Draft(type, params, subscription=subscription, smartcard=smartcard, service=service)


def _distinct(items: list, what: str) -> list:
    if len({item.pk for item in items}) != len(items):
        raise InvalidParameter(f"{what} names an item twice")
    return items


def pairing_create(
    *, subscription: Subscription | None, smartcards: list[Smartcard], set_top_boxes: list[SetTopBox]
) -> Draft:
    for card in _distinct(smartcards, "smartcard_set"):
        _member(subscription, card)
    params = [("stb_ca_id", box.ca_id) for box in _distinct(set_top_boxes, "stb_set")]
    params += [("smartcard_ca_id", card.ca_id) for card in smartcards]
    distribution = subscription.pk if subscription else None
    params += [
        ("stb_sub_provisioning_distributor_id", distribution),
        ("smartcard_sub_provisioning_distribution_id", distribution),
    ]
    return Draft(
        RequestType.CREATE_PAIRING,
        params,
        subscription=subscription,
        smartcard=smartcards[0],
        set_top_box=set_top_boxes[0],
    )


def pairing_extend(
    *,
    subscription: Subscription | None,
    smartcard: Smartcard,
    smartcards: list[Smartcard],
    set_top_boxes: list[SetTopBox],
) -> Draft:
    """ADD_TO_EXISTING_PAIRING: ``smartcard`` names the pairing; exactly one of the two sets is non-empty."""
    _member(subscription, smartcard)
    params = [("existing_smartcard_ca_id", smartcard.ca_id)]
    params += [("stb_ca_id", box.ca_id) for box in _distinct(set_top_boxes, "stb_set")]
    params += [("smartcard_ca_id", card.ca_id) for card in _distinct(smartcards, "smartcard_set")]
    return Draft(
        RequestType.ADD_TO_EXISTING_PAIRING,
        params,
        subscription=subscription,
        smartcard=smartcard,
        set_top_box=set_top_boxes[0] if set_top_boxes else None,
    )


def pin_reset(*, subscription: Subscription, smartcard: Smartcard, pin: str | None) -> Draft:
    """UPDATE_CA_PIN_TO_DEFAULT_VALUE without ``pin``, UPDATE_CA_PIN_TO_GIVEN_VALUE with it (4 digits)."""
    _member(subscription, smartcard)
    params = [("smartcard_sub_provisioning_distribution_id", subscription.pk), ("smartcard_ca_id", smartcard.ca_id)]
    if pin is None:
        return Draft(RequestType.UPDATE_CA_PIN_TO_DEFAULT_VALUE, params, subscription=subscription, smartcard=smartcard)
    if not PIN.fullmatch(pin):
        raise InvalidParameter("pin must be 4 digits")
    return Draft(
        RequestType.UPDATE_CA_PIN_TO_GIVEN_VALUE,
        [*params, ("ca_pin", None)],
        subscription=subscription,
        smartcard=smartcard,
        ca_pin=pin,
    )


def card_query(*, type: RequestType, smartcard: Smartcard, subscription: Subscription | None = None) -> Draft:
    """GET_ACTIVE_SUBSCRIPTIONS / GET_PAIRING_STATUS_FOR_CARD: the answer comes back in ``response``."""
    _member(subscription, smartcard)
    return Draft(type, [("smartcard_ca_id", smartcard.ca_id)], subscription=subscription, smartcard=smartcard)


def pairing_module_query(*, set_top_box: SetTopBox) -> Draft:
    return Draft(
        RequestType.GET_PAIRING_STATUS_FOR_PAIRING_MODULE,
        [("stb_ca_id", set_top_box.ca_id)],
        set_top_box=set_top_box,
        subscription=set_top_box.subscription,
    )


FINGERPRINT_FIELDS = (
    "display_date_time",
    "position_y",
    "position_x",
    "smartcard_ca_id",
    "height",
    "display_duration",
    "fingerprint_slot",
)


def fingerprint(*, smartcard: Smartcard | None, display: dict[str, Any]) -> Draft:
    """DISPLAY_FINGERPRINT on one card, or on every card when ``smartcard`` is None (as in the seed's example)."""
    values = {**display, "smartcard_ca_id": smartcard.ca_id if smartcard else None}
    if isinstance(values.get("display_date_time"), datetime):
        values["display_date_time"] = timezone.localtime(values["display_date_time"]).strftime("%Y-%m-%dT%H:%M:%S")
    params = [(name, values.get(name)) for name in FINGERPRINT_FIELDS]
    return Draft(
        RequestType.DISPLAY_FINGERPRINT,
        params,
        smartcard=smartcard,
        subscription=smartcard.subscription if smartcard else None,
    )


def _message(message: str, limit: int) -> str:
    if not message or len(message) > limit:
        raise InvalidParameter(
            f"message must be 1 to {limit} characters", description=f"{len(message)} characters given"
        )
    return message


def mail(*, smartcard: Smartcard, message: str) -> Draft:
    params = [("smartcard_ca_id", smartcard.ca_id), ("message", _message(message, MAIL_MAX))]
    return Draft(
        RequestType.SEND_MAIL_MESSAGE_TO_CLIENT, params, smartcard=smartcard, subscription=smartcard.subscription
    )


def bark(*, smartcard: Smartcard, message: str, duration: int | None) -> Draft:
    duration = BARK_DEFAULT_SECONDS if duration is None else duration
    if not 1 <= duration <= 255:
        raise InvalidParameter("duration must be 1 to 255 seconds")
    params = [("smartcard_ca_id", smartcard.ca_id), ("message", _message(message, BARK_MAX)), ("duration", duration)]
    return Draft(
        RequestType.SEND_BARK_MESSAGE_TO_CLIENT, params, smartcard=smartcard, subscription=smartcard.subscription
    )


def repeating_bark(*, smartcard: Smartcard, message: str, interval: int, repetitions: int | None) -> Draft:
    if interval not in REPEAT_INTERVAL:
        raise InvalidParameter("interval must be 10 to 2550 seconds in steps of 10", description=f"{interval} given")
    repetitions = 1 if repetitions is None else repetitions
    if repetitions not in REPETITIONS:
        raise InvalidParameter("repetitions must be 1 to 255")
    params = [
        ("smartcard_ca_id", smartcard.ca_id),
        ("message", _message(message, BARK_MAX)),
        ("interval", interval),
        ("repetitions", repetitions),
    ]
    return Draft(
        RequestType.SEND_REPEATING_BARK_MESSAGE_TO_CLIENT,
        params,
        smartcard=smartcard,
        subscription=smartcard.subscription,
    )


def request_retry(*, request: ProvisioningRequest, actor: Actor) -> ProvisioningRequest:
    """A REJECTED request sent again: a new PENDING request with the same parameters, linked to the old one.

    A PIN is never kept after delivery or rejection, so a rejected PIN change cannot be retried: send a new one.
    """
    if request.life_cycle_state != LifeCycleState.REJECTED:
        raise IllegalState("only a rejected request can be retried")
    if request.type == RequestType.UPDATE_CA_PIN_TO_GIVEN_VALUE:
        raise IllegalState("a rejected PIN change cannot be retried: its PIN is gone; create a new request")
    draft = Draft(
        RequestType(request.type),
        [(k, v) for entry in request.parameters_set for k, v in entry.items() if k != "id"],
        subscription=request.subscription,
        smartcard=request.smartcard,
        service=request.service,
        set_top_box=request.set_top_box,
    )
    options = Options(priority=Priority(request.priority), process_immediately=True)
    return request_create(draft=draft, actor=actor, options=options, retry_of=request)


def requests_process_now(*, numbers: list[int], actor: Actor) -> int:
    """Staff "process now": PENDING requests become due at once and are queued (EXPRESS first) after the commit,
    marked queued by the same UPDATE.

    A request a worker holds right now is left alone (it is being processed already).
    """
    from conax.pipeline import request_dispatch_on_commit

    now = timezone.now()
    with transaction.atomic():
        free = ProvisioningRequest.objects.filter(pk__in=numbers, life_cycle_state=LifeCycleState.PENDING).exclude(
            claimed_until__gt=now
        )
        taken = list(free.select_for_update(of=("self",)).order_by("number"))
        ProvisioningRequest.objects.filter(pk__in=[r.pk for r in taken]).update(
            scheduled_date=now, process_name="MANUAL", updated_by_user=actor.user, claimed_until=None, enqueued_at=now
        )
        for request in sorted(taken, key=lambda r: (r.priority != Priority.EXPRESS, r.number)):
            request.enqueued_at = now  # written by the UPDATE above
            request_dispatch_on_commit(request)
    return len(taken)


# --- the catalog: units, services, subscriptions, smartcards, CAS set-top boxes ------------------------------------

Catalog = Unit | Service | Subscription | Smartcard | SetTopBox
REFERS = {Subscription: "subscription", Smartcard: "smartcard", Service: "service", SetTopBox: "set_top_box"}


def catalog_save(*, instance: Catalog, values: dict[str, Any], services: list[Service] | None = None) -> Catalog:
    """Create or change a catalog record (``values`` by field name; a subscription's ``services`` replace its
    current ones). Identifiers the head-end needs unique are refused as ``Duplicate``; other invalid values as
    ``InvalidParameter``. Audited by the trail's save hooks (``conax.apps``)."""
    for name, value in values.items():
        setattr(instance, name, value)
    try:
        instance.full_clean()
    except ValidationError as exc:
        errors = exc.message_dict
        taken = [name for name, messages in errors.items() if any("already exists" in m for m in messages)]
        text = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items())
        raise (Duplicate if taken else InvalidParameter)(text, fields=sorted(errors)) from exc
    try:
        with transaction.atomic():
            instance.save()
            if services is not None and isinstance(instance, Subscription):
                instance.services.set(services)
    except IntegrityError as exc:  # taken between the check and the write
        raise Duplicate(f"{instance._meta.verbose_name} {instance}: an identifier is already taken") from exc
    return instance


def catalog_delete(*, instance: Catalog) -> None:
    """Delete a catalog record, unless a PENDING request refers to it, or an entitlement to a service.

    The row is locked first: a request created meanwhile about it waits for this transaction and then fails its
    foreign key check, so no pending request is ever left about something deleted."""
    field_name = REFERS.get(type(instance))
    with transaction.atomic():
        type(instance).objects.select_for_update().filter(pk=instance.pk).exists()
        if field_name is not None:
            pending = ProvisioningRequest.objects.filter(
                Q(**{field_name: instance}), life_cycle_state=LifeCycleState.PENDING
            ).count()
            if pending:
                raise InUse(f"{pending} pending request(s) refer to {instance}; wait for them or have them rejected")
        try:
            with transaction.atomic():
                instance.delete()
        except ProtectedError as exc:
            raise InUse(f"{instance} is still referred to (entitlements on smartcards); cancel them first") from exc


# --- CRM.COM sessions ----------------------------------------------------------------------------------------------

CRM_TOKEN_TTL = timedelta(hours=2)  # CRM.COM tokens expire after 2 h (DESIGN.md)


def crm_login(
    *, request: HttpRequest, username: str, password: str, organisation: str, unit: Unit | None
) -> portal_services.IssuedToken:
    """A CRM token for support staff of the CRM organisation, or InvalidCredentials for everyone else, whatever
    the password.

    Whether the user may use the CRM API is decided before the password is checked: someone who may not (a
    customer, an inactive or non-support account, another organisation) goes down the wrong-password path itself,
    so the answer, the failure count and lock-out (django-axes) and the time spent hashing are those of a wrong
    password. Otherwise a right password would show: by another answer, or by a lock-out that a success resets."""
    allowed = organisation == settings.CRM_ORGANISATION and _may_use_crm(username)
    checked = password if allowed else secrets.token_urlsafe(32)
    user = api_authenticate(request, username=username, password=checked)
    if user is None or not allowed or not is_support_staff(user):
        raise InvalidCredentials("wrong username, password or organisation")
    return portal_services.token_issue(
        user=user,
        purpose=TokenPurpose.CRM,
        absolute_ttl=int(CRM_TOKEN_TTL.total_seconds()),
        metadata={"organisation": organisation, "unit": unit and unit.pk},
    )


def _may_use_crm(username: str) -> bool:
    model = get_user_model()
    user = model._default_manager.filter(**{model.USERNAME_FIELD: username}).first()
    return user is not None and is_support_staff(user)


def crm_session(*, raw: str) -> ApiToken:
    """The live CRM token ``raw`` names: TokenError if there is none, AccessDenied if its user has since lost
    support-staff rights."""
    token = portal_services.token_authenticate(raw=raw, purpose=TokenPurpose.CRM)
    if not is_support_staff(token.user):
        raise AccessDenied("this user may not use the CRM API")
    return token


# --- bulk upsert of smartcards and subscriptions (a migration from another CAS front-end, a CRM's nightly feed) ----

UPSERT_BATCH = 2000
MAX_CODE = 64  # CA ids, alternative codes, subscription numbers, service codes (the models' max_length)
MAX_SERIAL = 128


@dataclass
class UpsertResult:
    """What an upsert did (or, dry run, would do); ``invalid`` rows are reported with their line and left out."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: list[tuple[int, str, str]] = field(default_factory=list)  # (line, key, reason)

    def as_dict(self) -> dict:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "invalid": [{"line": line, "key": key, "reason": reason} for line, key, reason in self.invalid],
        }


def _text(row: dict, name: str, limit: int, *, required: bool) -> str | None:
    """The row's value for ``name``, or a ValueError saying what is wrong with it."""
    value = row.get(name)
    if value is None:
        if required:
            raise ValueError(f"{name} is missing")
        return None
    if not isinstance(value, str) or not value or value != value.strip() or not value.isprintable():
        raise ValueError(f"{name} must be a non-empty string without surrounding spaces or control characters")
    if len(value) > limit:
        raise ValueError(f"{name} is longer than {limit} characters")
    return value


def _batches(rows: Iterable[tuple[int, Any]]) -> Iterator[list[tuple[int, Any]]]:
    batch: list[tuple[int, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= UPSERT_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _audit_bulk(model: type[Catalog], written: Sequence[tuple[Catalog, dict | None]], action: str) -> None:
    """One audit entry per row written in bulk (no save signal fires), in one INSERT: a creation with its fields, or
    an update with the fields that changed (``[before, after]``). One entry gets the ``pre_save`` a save would send,
    so that auditlog's receiver fills in the actor, address and correlation id; the others are given the same."""
    if not written:
        return
    content_type, cid = ContentType.objects.get_for_model(model), get_cid()
    entries = [
        LogEntry(
            content_type=content_type,
            object_pk=str(instance.pk),
            object_repr=str(instance),
            action=LogEntry.Action.CREATE if changes is None else LogEntry.Action.UPDATE,
            changes=_created_fields(instance) if changes is None else changes,
            cid=cid,
            additional_data={"action": action},
        )
        for instance, changes in written
    ]
    before = dict(vars(entries[0]))
    pre_save.send(sender=LogEntry, instance=entries[0], raw=False, using="default", update_fields=None)
    context = {name: value for name, value in vars(entries[0]).items() if before.get(name) != value}
    for entry in entries[1:]:
        vars(entry).update(context)
    LogEntry.objects.bulk_create(entries, batch_size=UPSERT_BATCH)


def _created_fields(instance: Catalog) -> dict[str, list]:
    """What auditlog records of a creation (every concrete field, ``[None, value]``), without its per-field diff."""
    return {
        field.name: [None, value if isinstance(value, str | int) else str(value)]
        for field in instance._meta.concrete_fields
        if (value := field.value_from_object(instance)) not in (None, "")
    }


CARD_FIELDS = ("ca_id", "alternative_code", "subscription_id")


def smartcards_upsert(*, rows: Iterable[tuple[int, Any]], dry_run: bool = False) -> UpsertResult:
    """Create or change smartcards by serial number, from ``(line, {serial_number, ca_id, alternative_code?,
    subscription?})`` rows (``subscription`` is a number). Idempotent: a second run of the same rows changes nothing.
    A row whose CA id or alternative code another card holds, naming an unknown subscription, or repeating a serial
    or CA id of an earlier row is reported and left out. Runs in batches of ``UPSERT_BATCH`` rows, each a few
    queries and one transaction; each card written is audited, and the run once."""
    result, seen = UpsertResult(), _Seen()
    for batch in _batches(rows):
        _cards_batch(batch, result, seen, dry_run=dry_run)
    return result


@dataclass
class _Seen:
    """Keys of earlier rows of the same run (a repeat is reported with the line it first appeared on)."""

    keys: dict[str, int] = field(default_factory=dict)
    ca_ids: dict[str, int] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)


def _card_row(line: int, row: Any, seen: _Seen) -> dict:
    if not isinstance(row, dict):
        raise ValueError(row if isinstance(row, BadRow) else "a row must be an object")
    unknown = sorted(set(row) - {"serial_number", "ca_id", "alternative_code", "subscription"})
    if unknown:
        raise ValueError(f"unknown field {unknown[0]}")
    serial = _text(row, "serial_number", MAX_SERIAL, required=True)
    values = {"serial_number": serial, "ca_id": _text(row, "ca_id", MAX_CODE, required=True)}
    if "alternative_code" in row:
        values["alternative_code"] = _text(row, "alternative_code", MAX_CODE, required=False)
    if "subscription" in row:
        values["subscription"] = _text(row, "subscription", MAX_CODE, required=False)
    for kind, key in (("keys", serial), ("ca_ids", values["ca_id"]), ("codes", values.get("alternative_code"))):
        first = getattr(seen, kind).get(key) if key else None
        if first is not None:
            raise ValueError(f"repeats line {first}")
    for kind, key in (("keys", serial), ("ca_ids", values["ca_id"]), ("codes", values.get("alternative_code"))):
        if key:
            getattr(seen, kind)[key] = line
    return values


def _cards_batch(batch: list[tuple[int, Any]], result: UpsertResult, seen: _Seen, *, dry_run: bool) -> None:
    parsed: list[tuple[int, dict]] = []
    for line, row in batch:
        try:
            parsed.append((line, _card_row(line, row, seen)))
        except ValueError as exc:
            key = row.get("serial_number") if isinstance(row, dict) else None
            result.invalid.append((line, str(key or "")[:MAX_SERIAL], str(exc)))
    with transaction.atomic():
        existing = Smartcard.objects.select_for_update().in_bulk(
            [v["serial_number"] for _, v in parsed], field_name="serial_number"
        )
        holders = _holders(Smartcard, parsed)
        numbers = {v["subscription"] for _, v in parsed if v.get("subscription")}
        subscriptions = dict(Subscription.objects.filter(number__in=numbers).values_list("number", "pk"))
        new, changed = [], []
        for line, values in parsed:
            try:
                card, changes = _card_apply(values, existing.get(values["serial_number"]), holders, subscriptions)
            except ValueError as exc:
                result.invalid.append((line, values["serial_number"], str(exc)))
                continue
            if changes is None:
                new.append(card)
            elif changes:
                changed.append((card, changes))
            else:
                result.unchanged += 1
        result.created += len(new)
        result.updated += len(changed)
        if dry_run or not (new or changed):
            return
        with _taken_meanwhile():
            Smartcard.objects.bulk_create(new)
            Smartcard.objects.bulk_update([card for card, _ in changed], CARD_FIELDS)
        _audit_bulk(Smartcard, [*((card, None) for card in new), *changed], "upsert_smartcards")


@contextmanager
def _taken_meanwhile() -> Iterator[None]:
    """A concurrent writer took an identifier between this batch's reads and its writes: the batch is undone."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError as exc:
        raise Duplicate(
            "an identifier was taken by a concurrent change; this batch was not written: run again"
        ) from exc


def _holders(model: type[Smartcard], parsed: list[tuple[int, dict]]) -> dict[tuple[str, str], str]:
    """Which serial holds each CA id and alternative code the rows name: ``{("ca_id", value): serial}``."""
    ca_ids = [v["ca_id"] for _, v in parsed]
    codes = [v["alternative_code"] for _, v in parsed if v.get("alternative_code")]
    rows = model.objects.filter(Q(ca_id__in=ca_ids) | Q(alternative_code__in=codes))
    held = {}
    for serial, ca_id, code in rows.values_list("serial_number", "ca_id", "alternative_code"):
        held[("ca_id", ca_id)] = serial
        if code:
            held[("alternative_code", code)] = serial
    return held


def _card_apply(
    values: dict, card: Smartcard | None, holders: dict, subscriptions: dict[str, str]
) -> tuple[Smartcard, dict | None]:
    """The card with the row's values, and the audit changes (None: a new card; empty: nothing changed)."""
    serial = values["serial_number"]
    for name in ("ca_id", "alternative_code"):
        holder = holders.get((name, values.get(name)))
        if values.get(name) and holder not in (None, serial):
            raise ValueError(f"{name} {values[name]} is held by smartcard {holder}")
    wanted = {"ca_id": values["ca_id"]}
    if "alternative_code" in values:
        wanted["alternative_code"] = values["alternative_code"]
    if "subscription" in values:
        number = values["subscription"]
        if number is not None and number not in subscriptions:
            raise ValueError(f"no subscription with number {number}")
        wanted["subscription_id"] = subscriptions.get(number) if number else None
    if card is None:
        return Smartcard(serial_number=serial, **wanted), None
    changes = {name: [getattr(card, name), value] for name, value in wanted.items() if getattr(card, name) != value}
    for name, (_, value) in changes.items():
        setattr(card, name, value)
    return card, changes


def subscriptions_upsert(*, rows: Iterable[tuple[int, Any]], dry_run: bool = False) -> UpsertResult:
    """Create or change subscriptions by number, from ``(line, {number, customer?, services?})`` rows: ``customer``
    is a username, ``services`` a list of service codes that replaces the subscription's. Idempotent; bad rows
    (unknown service or customer, a repeated number) are reported and left out; batches as for smartcards."""
    result, seen = UpsertResult(), _Seen()
    for batch in _batches(rows):
        _subscriptions_batch(batch, result, seen, dry_run=dry_run)
    return result


def _subscription_row(line: int, row: Any, seen: _Seen) -> dict:
    if not isinstance(row, dict):
        raise ValueError(row if isinstance(row, BadRow) else "a row must be an object")
    unknown = sorted(set(row) - {"number", "customer", "services"})
    if unknown:
        raise ValueError(f"unknown field {unknown[0]}")
    values: dict[str, Any] = {"number": _text(row, "number", MAX_CODE, required=True)}
    if "customer" in row:
        values["customer"] = _text(row, "customer", 150, required=False)
    if "services" in row:
        codes = row["services"] if row["services"] is not None else []
        if not isinstance(codes, list) or not all(isinstance(code, str) and code for code in codes):
            raise ValueError("services must be a list of service codes")
        values["services"] = sorted(set(codes))
    if values["number"] in seen.keys:
        raise ValueError(f"repeats line {seen.keys[values['number']]}")
    seen.keys[values["number"]] = line
    return values


def _subscriptions_batch(batch: list[tuple[int, Any]], result: UpsertResult, seen: _Seen, *, dry_run: bool) -> None:
    parsed: list[tuple[int, dict]] = []
    for line, row in batch:
        try:
            parsed.append((line, _subscription_row(line, row, seen)))
        except ValueError as exc:
            key = row.get("number") if isinstance(row, dict) else None
            result.invalid.append((line, str(key or "")[:MAX_CODE], str(exc)))
    through = Subscription.services.through
    with transaction.atomic():
        existing = Subscription.objects.select_for_update().in_bulk(
            [v["number"] for _, v in parsed], field_name="number"
        )
        links: dict[str, set[str]] = {}
        for sub_id, service_id in through.objects.filter(subscription__in=existing.values()).values_list(
            "subscription_id", "service_id"
        ):
            links.setdefault(sub_id, set()).add(service_id)
        codes = {code for _, v in parsed for code in v.get("services", [])}
        services_ = dict(Service.objects.filter(code__in=codes).values_list("code", "pk"))
        usernames = {v["customer"] for _, v in parsed if v.get("customer")}
        model = get_user_model()
        customers = dict(model._default_manager.filter(username__in=usernames).values_list("username", "pk"))
        new, changed, wanted_links = [], [], {}
        for line, values in parsed:
            try:
                sub, changes, service_ids = _subscription_apply(
                    values, existing.get(values["number"]), links, services_, customers
                )
            except ValueError as exc:
                result.invalid.append((line, values["number"], str(exc)))
                continue
            if service_ids is not None:
                wanted_links[sub.pk] = service_ids
            if changes is None:
                new.append(sub)
            elif changes:
                changed.append((sub, changes))
            else:
                result.unchanged += 1
        result.created += len(new)
        result.updated += len(changed)
        if dry_run or not (new or changed):
            return
        with _taken_meanwhile():
            Subscription.objects.bulk_create(new)
            Subscription.objects.bulk_update([sub for sub, _ in changed], ["customer_id"])
        _links_replace(through, wanted_links, links)
        _audit_bulk(Subscription, [*((sub, None) for sub in new), *changed], "upsert_subscriptions")


def _subscription_apply(
    values: dict, sub: Subscription | None, links: dict, services_: dict[str, str], customers: dict[str, int]
) -> tuple[Subscription, dict | None, set[str] | None]:
    """The subscription with the row's values, the audit changes (None: new; empty: unchanged) and the service ids
    it must have (None: left as they are)."""
    missing = [code for code in values.get("services", []) if code not in services_]
    if missing:
        raise ValueError(f"no service with code {missing[0]}")
    username = values.get("customer")
    if username is not None and username not in customers:
        raise ValueError(f"no user {username}")
    service_ids = {services_[code] for code in values["services"]} if "services" in values else None
    if sub is None:
        sub = Subscription(number=values["number"], customer_id=customers.get(username) if username else None)
        return sub, None, service_ids
    changes: dict[str, list[Any]] = {}
    if "customer" in values:
        customer_id = customers.get(username) if username else None
        if sub.customer_id != customer_id:
            changes["customer"] = [sub.customer_id, customer_id]
            sub.customer_id = customer_id
    if service_ids is not None and service_ids != links.get(sub.pk, set()):
        changes["services"] = [sorted(links.get(sub.pk, set())), sorted(service_ids)]
    return sub, changes, service_ids


def _links_replace(through: Any, wanted: dict[str, set[str]], current: dict[str, set[str]]) -> None:
    """Each subscription in ``wanted`` ends with exactly those services: one DELETE and one INSERT for the batch."""
    stale = Q()
    for sub_id, service_ids in wanted.items():
        gone = current.get(sub_id, set()) - service_ids
        if gone:
            stale |= Q(subscription_id=sub_id, service_id__in=gone)
    if stale:
        through.objects.filter(stale).delete()
    add = [
        through(subscription_id=sub_id, service_id=service_id)
        for sub_id, service_ids in wanted.items()
        for service_id in service_ids - current.get(sub_id, set())
    ]
    through.objects.bulk_create(add, ignore_conflicts=True)
