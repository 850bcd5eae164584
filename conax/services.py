"""Conax provisioning requests: creation (one transaction each, with their parameters) and the rules that apply
before anything reaches the head-end. Sending and recording outcomes is ``conax.pipeline``.

Each request gets ``sequence_number``: its place among the requests of its smartcard (1, 2, …), taken under a lock
on the smartcard row so two concurrent creations never share one. The worker sends a card's due requests in
priority order (EXPRESS first), then in that sequence.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

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
from conax.models import ProvisioningRequest, Service, SetTopBox, Smartcard, Subscription, Unit, new_id
from portal.kernel import services as portal_services
from portal.kernel.authentication import api_authenticate
from portal.kernel.choices import TokenPurpose
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


def _next_sequence(smartcard: Smartcard | None) -> int | None:
    if smartcard is None:
        return None
    Smartcard.objects.select_for_update().filter(pk=smartcard.pk).exists()
    last = ProvisioningRequest.objects.filter(smartcard=smartcard).order_by("-number").values("sequence_number")[:1]
    previous = last[0]["sequence_number"] if last else None
    return (previous or 0) + 1


def request_create(
    *, draft: Draft, actor: Actor, options: Options, retry_of: ProvisioningRequest | None = None
) -> ProvisioningRequest:
    """Create the request PENDING; with ``process_immediately`` it is queued for the worker after the commit."""
    from conax.pipeline import request_dispatch_on_commit  # the pipeline imports this module

    now = timezone.now()
    with transaction.atomic():
        request = ProvisioningRequest.objects.create(
            type=draft.type,
            priority=options.priority,
            process_immediately=options.process_immediately,
            scheduled_date=options.start_date or now,
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
        if options.process_immediately and request.scheduled_date <= now:
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
    if not subscription.services.filter(pk=service.pk).exists():
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
    """Staff "process now": PENDING requests become due at once and are queued (EXPRESS first) after the commit.

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
            scheduled_date=now, process_name="MANUAL", updated_by_user=actor.user, claimed_until=None
        )
        for request in sorted(taken, key=lambda r: (r.priority != Priority.EXPRESS, r.number)):
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
    """Delete a catalog record, unless a PENDING request refers to it."""
    field_name = REFERS.get(type(instance))
    if field_name is not None:
        pending = ProvisioningRequest.objects.filter(
            Q(**{field_name: instance}), life_cycle_state=LifeCycleState.PENDING
        ).count()
        if pending:
            raise InUse(f"{pending} pending request(s) refer to {instance}; wait for them or have them rejected")
    instance.delete()


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
