"""The CRM.COM-compatible API (``/crmapi/rest/v2/``): login, and Conax provisioning requests as CRM.COM clients
call them (seed 003).

Every answer is the envelope ``{"status": {"code", "message", "description"}, "data"}`` with HTTP 200, errors
included (``code`` is ``"OK"`` on success), except any unknown path (404) and a wrong HTTP method (405, with
``Allow``), which still carry the envelope. GET takes its parameters from the query string, POST from a JSON object
body; both carry ``token``, and both pass one input layer first (``conax.api.crminput``). Parameter tables and their
checks: ``conax.api.crmparams``; rules: ``conax.services``. Domain errors become the envelope's status in one place,
``conax.api.crmparams.crm_error``.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from conax import selectors, services
from conax.api import crminput, crmlist
from conax.api.crmparams import (
    DOMAIN_ERRORS,
    METHODS,
    REQUEST_FIELDS,
    CrmError,
    Method,
    crm_error,
    fields_set,
    parameters_set,
)
from conax.choices import Priority, RequestType
from conax.exceptions import ConaxError
from conax.models import ProvisioningRequest, Unit
from portal.kernel import services as portal_services
from portal.kernel.audit import set_audit_actor
from portal.kernel.exceptions import TokenError

DATE = "%Y-%m-%dT%H:%M:%S"
DEFAULT_RESULTS = 50
REQUESTS_PATH = "conax_web_services/provisioning_requests/"


def envelope(
    data: Any = None, code: str = "OK", message: str | None = None, description: str | None = None, status: int = 200
) -> JsonResponse:
    body = {"status": {"message": message, "description": description, "code": code}, "data": data}
    return JsonResponse(body, status=status, safe=False)


def _failure(exc: CrmError | ConaxError | TokenError, status: int = 200) -> JsonResponse:
    error = exc if isinstance(exc, CrmError) else crm_error(exc)
    return envelope(None, error.code, error.message, error.description, status)


def _not_allowed(allowed: str) -> JsonResponse:
    response = _failure(CrmError("METHOD_NOT_ALLOWED", f"use {allowed}"), 405)
    response["Allow"] = allowed
    return response


# --- authentication ------------------------------------------------------------------------------------------------


@csrf_exempt
def token_login(request: HttpRequest) -> JsonResponse:
    """``POST authentication/token``: ``username``, ``password``, ``organisation``, optional ``unit``."""
    if request.method != "POST":
        return _not_allowed("POST")
    try:
        raw = crminput.body(request)
        for name in raw:
            if name not in ("username", "password", "organisation", "unit"):
                raise CrmError("UNKNOWN_PARAMETER", f"unknown parameter {name}")
        for name in ("username", "password", "organisation"):
            if not isinstance(raw.get(name), str) or not raw[name] or len(raw[name]) > 255:
                raise CrmError("MISSING_PARAMETER", f"{name} is mandatory")
        issued = services.crm_login(
            request=request,
            username=raw["username"],
            password=raw["password"],
            organisation=raw["organisation"],
            unit=_unit(raw.get("unit")),
        )
    except (CrmError, *DOMAIN_ERRORS) as exc:
        return _failure(exc)
    return envelope({"token": issued.raw})


def _unit(name: Any) -> Unit | None:
    if name is None:
        return None
    unit = selectors.unit_named(name=name) if isinstance(name, str) and name else None
    if unit is None:
        raise CrmError("INVALID_PARAMETER", "unit is not valid", "no unit with that name or alternative code")
    return unit


@csrf_exempt
def token_release(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        return _not_allowed("POST")
    try:
        token = _token(crminput.body(request))
    except (CrmError, *DOMAIN_ERRORS) as exc:
        return _failure(exc)
    portal_services.token_revoke(token=token)
    return envelope(None)


def _token(raw: dict):
    value = raw.get("token")
    token = services.crm_session(raw=value if isinstance(value, str) else "")
    set_audit_actor(token.user)
    return token


@csrf_exempt
def unknown(request: HttpRequest, path: str = "") -> JsonResponse:
    """Any other path under ``/crmapi/`` (unknown resource or method, a trailing slash): 404 in the envelope, so a
    client that JSON-decodes every answer never meets an HTML page."""
    known = "/crmapi/rest/v2/authentication/token[/release], /crmapi/rest/v2/" + REQUESTS_PATH + "<method>"
    return _failure(CrmError("UNKNOWN_METHOD", "no such resource or method", f"known paths: {known}"), 404)


# --- provisioning requests -----------------------------------------------------------------------------------------


@csrf_exempt
def provisioning_requests(request: HttpRequest, method: str) -> JsonResponse:
    spec = METHODS.get(method)
    if spec is None:
        return unknown(request)
    if request.method != spec.http:
        return _not_allowed(spec.http)
    try:
        raw = crminput.query(request) if spec.http == "GET" else crminput.body(request)
        token = _token(raw)
        values = spec.parse(raw)
        if spec.http == "GET":
            return _read(spec, values)
        created = _create(spec, values, token)
    except (CrmError, *DOMAIN_ERRORS) as exc:
        return _failure(exc)
    return envelope(request_data(created))


def _read(spec: Method, values: dict) -> JsonResponse:
    names = fields_set(values.pop("fields_set", None))
    if spec.name == "show":
        key, value = next(iter(values.items()))
        return envelope(request_data(selectors.identified(ProvisioningRequest, key, value), names))
    offset, count = values.pop("offset", 0), values.pop("number_of_results", DEFAULT_RESULTS)
    page = selectors.request_page(filters=values, offset=offset, count=count, fields=names)
    return envelope(crmlist.list_data(page, names))


def _create(spec: Method, values: dict, token) -> ProvisioningRequest:
    options = services.Options(
        priority=Priority(values.pop("priority", Priority.REGULAR)),
        process_immediately=values.pop("process_immediately", False),
        start_date=values.pop("start_date", None),
    )
    actor = services.Actor(token.user, selectors.unit_of_token(metadata=token.metadata))
    return services.request_create(draft=DRAFTS[spec.request_type](values), actor=actor, options=options)


RT = RequestType
DRAFTS = {
    RT.ADD_SUBSCRIPTIONS: lambda v: services.subscription_change(
        type=RT.ADD_SUBSCRIPTIONS,
        subscription=v["subscription_identifier"],
        service=v["service_identifier"],
        smartcard=v["smartcard_identifier"],
    ),
    RT.CANCEL_SUBSCRIPTIONS: lambda v: services.subscription_change(
        type=RT.CANCEL_SUBSCRIPTIONS,
        subscription=v["subscription_identifier"],
        service=v["service_identifier"],
        smartcard=v["smartcard_identifier"],
    ),
    RT.CREATE_PAIRING: lambda v: services.pairing_create(
        subscription=v.get("subscription_identifier"), smartcards=v["smartcard_set"], set_top_boxes=v["stb_set"]
    ),
    RT.ADD_TO_EXISTING_PAIRING: lambda v: services.pairing_extend(
        subscription=v.get("subscription_identifier"),
        smartcard=v["smartcard_identifier"],
        smartcards=v.get("smartcard_set", []),
        set_top_boxes=v.get("stb_set", []),
    ),
    RT.UPDATE_CA_PIN_TO_DEFAULT_VALUE: lambda v: services.pin_reset(
        subscription=v["subscription_identifier"], smartcard=v["smartcard_identifier"], pin=None
    ),
    RT.UPDATE_CA_PIN_TO_GIVEN_VALUE: lambda v: services.pin_reset(
        subscription=v["subscription_identifier"], smartcard=v["smartcard_identifier"], pin=v["pin"]
    ),
    RT.GET_ACTIVE_SUBSCRIPTIONS: lambda v: services.card_query(
        type=RT.GET_ACTIVE_SUBSCRIPTIONS,
        smartcard=v["smartcard_identifier"],
        subscription=v.get("subscription_identifier"),
    ),
    RT.GET_PAIRING_STATUS_FOR_CARD: lambda v: services.card_query(
        type=RT.GET_PAIRING_STATUS_FOR_CARD,
        smartcard=v["smartcard_identifier"],
        subscription=v.get("subscription_identifier"),
    ),
    RT.GET_PAIRING_STATUS_FOR_PAIRING_MODULE: lambda v: services.pairing_module_query(set_top_box=v["stb_identifier"]),
    RT.DISPLAY_FINGERPRINT: lambda v: services.fingerprint(smartcard=v.pop("smartcard_identifier", None), display=v),
    RT.SEND_MAIL_MESSAGE_TO_CLIENT: lambda v: services.mail(smartcard=v["smartcard_identifier"], message=v["message"]),
    RT.SEND_BARK_MESSAGE_TO_CLIENT: lambda v: services.bark(
        smartcard=v["smartcard_identifier"], message=v["message"], duration=v.get("duration")
    ),
    RT.SEND_REPEATING_BARK_MESSAGE_TO_CLIENT: lambda v: services.repeating_bark(
        smartcard=v["smartcard_identifier"],
        message=v["message"],
        interval=v["interval"],
        repetitions=v.get("repetitions"),
    ),
}


# --- rendering -----------------------------------------------------------------------------------------------------


def _date(value) -> str | None:
    return timezone.localtime(value).strftime(DATE) if value else None


def _user(user) -> dict | None:
    if user is None:
        return None
    return {
        "person_name": user.get_full_name() or user.username,
        "username": user.username,
        "id": str(user.pk),
        "email": user.email or None,
    }


def _unit_data(unit: Unit) -> dict:
    return {
        "community_name": unit.community_name or None,
        "group_name": unit.group_name or None,
        "name": unit.name,
        "id": unit.pk,
        "description": unit.description or None,
        "alternative_code": unit.alternative_code,
    }


def _log(request: ProvisioningRequest) -> dict:
    log: dict[str, Any] = {"updated_date": _date(request.updated_date)}
    if request.created_by_unit:
        log["created_by_unit"] = _unit_data(request.created_by_unit)
    log["created_date"] = _date(request.created_date)
    if request.updated_by_unit:
        log["updated_by_unit"] = _unit_data(request.updated_by_unit)
    log |= {"created_by_user": _user(request.created_by_user), "updated_by_user": _user(request.updated_by_user)}
    return log


def request_data(request: ProvisioningRequest, names: tuple[str, ...] = REQUEST_FIELDS) -> dict:
    """A request as the seed shows it; a CA PIN is never returned (``"ca_pin": null``)."""
    immediately = None if request.process_immediately is None else int(request.process_immediately)
    full = {
        "scheduled_date": _date(request.scheduled_date),
        "response": request.response,
        "error_code": request.error_code,
        "priority": request.priority,
        "error_description": request.error_description,
        "sequence_number": request.sequence_number,
        "number": str(request.number),
        "process_id": request.process_id,
        "name": request.name,
        "parameters_set": parameters_set(request.parameters_set),
        "process_immediately": immediately,
        "request": request.request,
        "log_information": None,
        "provider_error_code": request.provider_error_code,
        "life_cycle_state": request.life_cycle_state,
        "provider_error_description": request.provider_error_description,
        "type": request.type,
        "id": request.uid,
        "process_name": request.process_name,
        "reference_number": request.reference_number,
        "executed_date": _date(request.executed_date),
    }
    if "log_information" in names:
        full["log_information"] = _log(request)
    return {name: full[name] for name in names}
