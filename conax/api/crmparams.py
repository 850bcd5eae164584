"""Parameters of the CRM.COM dialect: one declarative table per method, used by the views to parse and by the
OpenAPI hook to document (so the two never drift apart).

A method's parameters are checked in this order, and the first failure is the answer: unknown names
(``UNKNOWN_PARAMETER``), then each parameter in table order: missing (``MISSING_PARAMETER``), malformed
(``INVALID_PARAMETER`` / ``INVALID_IDENTIFIER``), naming nothing (``NOT_FOUND``, the selectors' ``NotFound``); then
each semi-optional group (exactly one of it, ``SEMI_OPTIONAL_PARAMETERS``).

Shape errors are ``CrmError``s; domain errors reach the envelope through ``crm_error``, the dialect's one mapping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Model
from django.utils import timezone

from conax import selectors
from conax.cas_protocol import BARK_DEFAULT_SECONDS, BARK_MAX, MAIL_MAX
from conax.choices import LifeCycleState, Priority, RequestType
from conax.exceptions import ConaxError
from conax.models import Service, SetTopBox, Smartcard, Subscription
from portal.kernel.exceptions import TokenError
from portal.lib import dates

MAX_TEXT = 255
MAX_SET = 100


class CrmError(Exception):
    """The dialect's own wire error: a request of the wrong shape, answered before any rule is asked."""

    def __init__(self, code: str, message: str, description: str | None = None) -> None:
        super().__init__(code)
        self.code, self.message, self.description = code, message, description


# The domain errors a CRM view answers in the envelope, through ``crm_error``; anything else is a defect (500).
DOMAIN_ERRORS = (ConaxError, TokenError)
TOKEN_REFUSED = ("INVALID_TOKEN", "the token is missing, expired or released")


def crm_error(exc: ConaxError | TokenError) -> CrmError:
    """The one mapping of domain errors to the CRM.COM status. Conax errors answer their own code (the seed's status
    codes), message and description; the token store's refusals (expired, revoked, unknown) all answer
    INVALID_TOKEN, so the answer does not tell a guessed token from a released one."""
    if isinstance(exc, TokenError):
        return CrmError(*TOKEN_REFUSED)
    return CrmError(exc.code, exc.message, exc.description)


def _invalid(name: str, why: str) -> CrmError:
    return CrmError("INVALID_PARAMETER", f"{name} is not valid", why)


# --- value parsers: (name, raw value) → value, or CrmError ---------------------------------------------------------


def text(limit: int = MAX_TEXT) -> Callable[[str, Any], str]:
    def parse(name: str, value: Any) -> str:
        if not isinstance(value, str) or not value or len(value) > limit:
            raise _invalid(name, f"a string of 1 to {limit} characters is expected")
        return value

    parse.openapi = {"type": "string", "maxLength": limit}
    return parse


def flag(name: str, value: Any) -> bool:
    """process_immediately: the seed shows 0/1; true/false and "0"/"1" (query strings) are accepted too."""
    if value in (True, 1, "1", "true"):
        return True
    if value in (False, 0, "0", "false"):
        return False
    raise _invalid(name, "0, 1, true or false is expected")


flag.openapi = {"oneOf": [{"type": "integer", "enum": [0, 1]}, {"type": "boolean"}]}


def moment(name: str, value: Any) -> datetime:
    """ISO 8601 as the seed writes dates (``2014-11-30T09:00:00``); without an offset it is in the portal's zone.

    Strict, normalised to UTC and inside the accepted window (``portal.lib.dates``): impossible dates (30 February, hour
    25), offsets past ±14:00 and dates outside 2000-01-01 … now + 10 years are refused."""
    try:
        return dates.parse(value, now=timezone.now(), default_zone=timezone.get_current_timezone())
    except dates.DateError as exc:
        raise _invalid(name, str(exc)) from exc


moment.openapi = {
    "type": "string",
    "format": "date-time",
    "example": "2014-11-30T09:00:00",
    "description": "2000-01-01 to 10 years ahead; without an offset in the portal's time zone",
}


def choice(*values: str) -> Callable[[str, Any], str]:
    def parse(name: str, value: Any) -> str:
        if value not in values:
            raise _invalid(name, "one of " + ", ".join(values) + " is expected")
        return value

    parse.openapi = {"type": "string", "enum": list(values)}
    return parse


def integer(low: int, high: int) -> Callable[[str, Any], int]:
    def parse(name: str, value: Any) -> int:
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _invalid(name, f"an integer from {low} to {high} is expected")
        return value

    parse.openapi = {"type": "integer", "minimum": low, "maximum": high}
    return parse


def identifier(model: type[Model]) -> Callable[[str, Any], Model]:
    """An identifier object naming exactly one of the entity's identifier fields, resolved to its row."""
    fields = selectors.IDENTIFIERS[model]

    def parse(name: str, value: Any) -> Model:
        if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in fields:
            raise CrmError("INVALID_IDENTIFIER", f"{name} must name exactly one of: {', '.join(fields)}")
        ((key, raw),) = value.items()
        if isinstance(raw, int) and not isinstance(raw, bool) and key == "number":
            raw = str(raw)
        if not isinstance(raw, str) or not raw or len(raw) > MAX_TEXT:
            raise CrmError("INVALID_IDENTIFIER", f"{name}.{key} must be a non-empty string")
        return selectors.identified(model, key, raw)  # NotFound: answered through crm_error

    parse.openapi = {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "properties": {f: {"type": "string"} for f in fields},
    }
    return parse


def item_set(model: type[Smartcard | SetTopBox], ca_key: str) -> Callable[[str, Any], list]:
    """smartcard_set / stb_set: objects naming exactly one of the CA id or an identifier field, as in the seed."""
    fields = (ca_key, "id", "serial_number", "alternative_code")

    def parse(name: str, value: Any) -> list:
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_SET:
            raise _invalid(name, f"a list of 1 to {MAX_SET} objects is expected")
        items = []
        for entry in value:
            if not isinstance(entry, dict) or len(entry) != 1 or next(iter(entry)) not in fields:
                raise CrmError("INVALID_IDENTIFIER", f"each {name} entry must name exactly one of: {', '.join(fields)}")
            ((key, raw),) = entry.items()
            if not isinstance(raw, str) or not raw or len(raw) > MAX_TEXT:
                raise CrmError("INVALID_IDENTIFIER", f"{name}.{key} must be a non-empty string")
            items.append(selectors.identified(model, "ca_id" if key == ca_key else key, raw))
        return items

    parse.openapi = {
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_SET,
        "items": {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
            "properties": {f: {"type": "string"} for f in fields},
        },
    }
    return parse


# --- method tables -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str
    parse: Callable[[str, Any], Any]
    required: bool = False
    group: str | None = None  # semi-optional: exactly one parameter of each group must be given
    doc: str = ""


@dataclass(frozen=True)
class Method:
    name: str
    http: str  # GET (query string) or POST (JSON body)
    summary: str
    params: tuple[Param, ...]
    request_type: RequestType | None = None
    groups: tuple[str, ...] = field(default=())

    def parse(self, raw: dict[str, Any]) -> dict[str, Any]:
        known = {param.name for param in self.params}
        for name in raw:
            if name != "token" and name not in known:
                raise CrmError(
                    "UNKNOWN_PARAMETER",
                    f"unknown parameter {name}",
                    f"{self.name} takes: " + ", ".join(sorted(known | {"token"})),
                )
        values = {}
        for param in self.params:
            if param.name not in raw:
                if param.required:
                    raise CrmError("MISSING_PARAMETER", f"{param.name} is mandatory")
                continue
            values[param.name] = param.parse(param.name, raw[param.name])
        for group in self.groups:
            names = [p.name for p in self.params if p.group == group]
            if sum(name in values for name in names) != 1:
                raise CrmError("SEMI_OPTIONAL_PARAMETERS", f"exactly one of {', '.join(names)} must be given")
        return values


SUBSCRIPTION = identifier(Subscription)
SERVICE = identifier(Service)
SMARTCARD = identifier(Smartcard)
STB = identifier(SetTopBox)
PRIORITY = Param("priority", choice(*Priority.values), doc="REGULAR (default) or EXPRESS")
IMMEDIATELY = Param("process_immediately", flag, doc="send at once instead of at the next scheduled run")
START = Param("start_date", moment, doc="when the request is due (default: now)")
CREATE_OPTIONS = (IMMEDIATELY, START, PRIORITY)
FIELDS_SET = Param("fields_set", text(2000), doc="comma-separated names of the fields to return")
RT = RequestType


def _create(
    name: str,
    summary: str,
    request_type: RequestType,
    *params: Param,
    options=CREATE_OPTIONS,
    groups: tuple[str, ...] = (),
) -> Method:
    return Method(name, "POST", summary, (*params, *options), request_type, groups)


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "show",
            "GET",
            "One provisioning request, by id or number.",
            (
                Param("id", text(32), group="identifier", doc="the request's 32-character id"),
                Param(
                    "number",
                    integer(1, 2**53 - 1),  # JSON's safe integers: numbers count up from 1, no client rounds them
                    group="identifier",
                    doc="the request's number",
                ),
                FIELDS_SET,
            ),
            groups=("identifier",),
        ),
        Method(
            "list",
            "GET",
            "Provisioning requests of one type, state or reference number, oldest first.",
            (
                Param("type", choice(*RequestType.values), group="filter"),
                Param("life_cycle_state", choice(*LifeCycleState.values), group="filter"),
                Param("reference_number", text(64), group="filter"),
                FIELDS_SET,
                Param("number_of_results", integer(1, 1000), doc="page size, default 50"),
                Param("offset", integer(0, 10**9), doc="rows to skip, default 0"),
            ),
            groups=("filter",),
        ),
        _create(
            "add_subscriptions",
            "Activate a service of a subscription on a smartcard.",
            RT.ADD_SUBSCRIPTIONS,
            Param("subscription_identifier", SUBSCRIPTION, True),
            Param("service_identifier", SERVICE, True),
            Param("smartcard_identifier", SMARTCARD, True),
        ),
        _create(
            "cancel_subscriptions",
            "Cancel a service of a subscription on a smartcard.",
            RT.CANCEL_SUBSCRIPTIONS,
            Param("subscription_identifier", SUBSCRIPTION, True),
            Param("service_identifier", SERVICE, True),
            Param("smartcard_identifier", SMARTCARD, True),
        ),
        _create(
            "create_pairing",
            "Pair smartcards with set-top boxes.",
            RT.CREATE_PAIRING,
            Param("subscription_identifier", SUBSCRIPTION),
            Param("smartcard_set", item_set(Smartcard, "smartcard_ca_id"), True),
            Param("stb_set", item_set(SetTopBox, "stb_ca_id"), True),
            options=(IMMEDIATELY, PRIORITY),
        ),
        _create(
            "add_to_existing_pairing",
            "Add smartcards or set-top boxes to a smartcard's pairing.",
            RT.ADD_TO_EXISTING_PAIRING,
            Param("subscription_identifier", SUBSCRIPTION),
            Param("smartcard_identifier", SMARTCARD, True),
            Param("smartcard_set", item_set(Smartcard, "smartcard_ca_id"), group="set"),
            Param("stb_set", item_set(SetTopBox, "stb_ca_id"), group="set"),
            options=(IMMEDIATELY, PRIORITY),
            groups=("set",),
        ),
        _create(
            "reset_pin_to_default_value",
            "Reset a smartcard's CA PIN to its default.",
            RT.UPDATE_CA_PIN_TO_DEFAULT_VALUE,
            Param("subscription_identifier", SUBSCRIPTION, True),
            Param("smartcard_identifier", SMARTCARD, True),
            options=(IMMEDIATELY, PRIORITY),
        ),
        _create(
            "reset_pin_to_given_value",
            "Set a smartcard's CA PIN (4 digits; never returned, wiped once sent).",
            RT.UPDATE_CA_PIN_TO_GIVEN_VALUE,
            Param("subscription_identifier", SUBSCRIPTION, True),
            Param("smartcard_identifier", SMARTCARD, True),
            Param("pin", text(4), True),
            options=(IMMEDIATELY, PRIORITY),
        ),
        _create(
            "get_active_subscriptions",
            "Ask the head-end which services are active on a smartcard.",
            RT.GET_ACTIVE_SUBSCRIPTIONS,
            Param("subscription_identifier", SUBSCRIPTION),
            Param("smartcard_identifier", SMARTCARD, True),
        ),
        _create(
            "get_pairing_status_for_card",
            "Ask the head-end for a smartcard's pairing.",
            RT.GET_PAIRING_STATUS_FOR_CARD,
            Param("subscription_identifier", SUBSCRIPTION),
            Param("smartcard_identifier", SMARTCARD, True),
        ),
        _create(
            "get_pairing_status_for_pairing_module",
            "Ask the head-end for a set-top box's pairing.",
            RT.GET_PAIRING_STATUS_FOR_PAIRING_MODULE,
            Param("stb_identifier", STB, True),
        ),
        _create(
            "display_fingerprint",
            "Show a fingerprint on one smartcard's screen, or on every card's.",
            RT.DISPLAY_FINGERPRINT,
            Param("smartcard_identifier", SMARTCARD),
            Param("display_date_time", moment),
            Param("display_duration", integer(1, 65535)),
            Param("position_x", integer(0, 65535)),
            Param("position_y", integer(0, 65535)),
            Param("height", integer(0, 65535)),
            Param("fingerprint_slot", text(8)),
        ),
        _create(
            "send_mail_message_to_client",
            f"Send a mail message (at most {MAIL_MAX} characters).",
            RT.SEND_MAIL_MESSAGE_TO_CLIENT,
            Param("smartcard_identifier", SMARTCARD, True),
            Param("message", text(MAIL_MAX), True),
        ),
        _create(
            "send_bark_message_to_client",
            f"Show a bark message (at most {BARK_MAX} characters, {BARK_DEFAULT_SECONDS} s by default).",
            RT.SEND_BARK_MESSAGE_TO_CLIENT,
            Param("smartcard_identifier", SMARTCARD, True),
            Param("message", text(BARK_MAX), True),
            Param("duration", integer(1, 255), doc=f"seconds, default {BARK_DEFAULT_SECONDS}"),
        ),
        _create(
            "send_repeating_bark_message_to_client",
            "Show a bark message repeatedly (interval 10 to 2550 s in steps of 10).",
            RT.SEND_REPEATING_BARK_MESSAGE_TO_CLIENT,
            Param("smartcard_identifier", SMARTCARD, True),
            Param("message", text(BARK_MAX), True),
            Param("interval", integer(10, 2550), True, doc="seconds, step 10"),
            Param("repetitions", integer(1, 255), doc="default 1"),
        ),
    )
}


def parameters_set(entries: list[dict]) -> list[dict]:
    """A request's parameters_set as the document writes its entries, each name before its id, on every database
    (PostgreSQL's jsonb reads an entry's keys back shortest first, ``id`` first; SQLite keeps them as written)."""
    return [{**{key: value for key, value in entry.items() if key != "id"}, "id": entry.get("id")} for entry in entries]


# The fields of a provisioning request on the wire, in the seed's order; fields_set picks among them.
REQUEST_FIELDS = (
    "scheduled_date",
    "response",
    "error_code",
    "priority",
    "error_description",
    "sequence_number",
    "number",
    "process_id",
    "name",
    "parameters_set",
    "process_immediately",
    "request",
    "log_information",
    "provider_error_code",
    "life_cycle_state",
    "provider_error_description",
    "type",
    "id",
    "process_name",
    "reference_number",
    "executed_date",
)


def fields_set(raw: str | None) -> tuple[str, ...]:
    if raw is None:
        return REQUEST_FIELDS
    names = tuple(dict.fromkeys(name.strip() for name in raw.split(",") if name.strip()))
    unknown = [name for name in names if name not in REQUEST_FIELDS]
    if unknown or not names:
        raise CrmError(
            "INVALID_FIELDS_SET",
            f"unknown field {unknown[0]}" if unknown else "fields_set is empty",
            "fields: " + ", ".join(REQUEST_FIELDS),
        )
    return names
