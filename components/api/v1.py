"""``GET|POST /v1/DeviceProvisioningComponents/``: the components API as its existing clients speak it.

The token from ``POST /v1/Login/`` goes in request header ``token``. Every answer is JSON with HTTP 200, errors
included (``{"error": CODE}``, plus ``error_detail`` where the seed gives one), as the original service answers.
Parsing lives in ``params``, rules in ``components.services``; domain errors become codes in one place,
``params.v1_error``.
"""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from components import selectors, services
from components.api.params import V1Error, V1Request, parse, v1_error
from components.api.sanitise import Unstorable, check_fields
from components.choices import ComponentType
from components.exceptions import ComponentError
from portal.kernel import services as portal_services
from portal.kernel.audit import set_audit_actor
from portal.kernel.choices import TokenPurpose
from portal.kernel.exceptions import TokenError, TokenInvalid

DATETIME = "%Y-%m-%d %H:%M:%S"


def _select(user, request: V1Request) -> dict:
    params = dict(request.params)
    limit = params.pop("limit")
    rows = selectors.component_select(user=user, filters=params, limit=limit)
    if not rows:
        raise V1Error("NO_DATA")
    return {"responses": {f"response_{n}": _row(row) for n, row in enumerate(rows)}}


def _row(row: dict) -> dict:
    return {
        "provisioning_component_id": row["pk"],
        "provisioning_id": row["provisioning_id"],
        "component_type": ComponentType(row["component_type"]).label,
        "component_id": row["component_id"],
        "name": row["name"],
        "active_status": row["active_status"],
        "last_modified_by": row["last_modified_by_id"],
        "last_modified_datetime": row["last_modified_datetime"].strftime(DATETIME),
    }


def _insert(user, request: V1Request) -> dict:
    p = request.params
    written = services.components_upsert(
        user=user,
        provisioning_id=p["provisioning_id"],
        component_type=p["component_type"],
        component_ids=p["component_id"],
        active_status=p["active_status"],
    )
    return {
        "provisioning_id": written.provisioning_id,
        "component_type": p["component_type"].label,
        "component_id": p["component_id"],
        "active_status": int(p["active_status"]),
        "last_modified_by": user.pk,
        "last_modified_datetime": written.at.strftime(DATETIME),
        "error": "NO_ERROR",
    }


def _update(user, request: V1Request) -> dict:
    p = request.params
    if "provisioning_component_id" in p:
        ids = p["provisioning_component_id"]
        written = services.components_update_by_ids(user=user, ids=ids, active_status=p["active_status"])
        echo = {"provisioning_component_id": ids, "provisioning_id": written.provisioning_id}
    else:
        services.components_update_by_triple(
            user=user,
            provisioning_id=p["provisioning_id"],
            component_type=p["component_type"],
            component_ids=p["component_id"],
            active_status=p["active_status"],
        )
        echo = {
            "provisioning_id": p["provisioning_id"],
            "component_type": p["component_type"].label,
            "component_id": p["component_id"],
        }
    return {**echo, "active_status": int(p["active_status"]), "error": "NO_ERROR"}


ACTIONS = {"select": _select, "insert": _insert, "update": _update}


def _user(request: HttpRequest):
    """The user of the ``token`` header; TokenError when the store refuses it (or it could not be one of its)."""
    raw = request.headers.get("token", "")
    try:
        check_fields({"token": raw})
    except Unstorable as exc:
        raise TokenInvalid from exc
    token = portal_services.token_authenticate(raw=raw, purpose=TokenPurpose.COMPONENTS)
    set_audit_actor(token.user)
    return token.user


def _body(request: HttpRequest) -> bytes | dict:
    if request.method == "GET":
        return {"action": "select"}  # the seed: a GET returns all components (up to the default limit)
    try:
        return request.body
    except RequestDataTooBig as exc:
        raise V1Error("INVALID_REQUEST_PRAM") from exc


@csrf_exempt
def device_provisioning_components(request: HttpRequest) -> JsonResponse:
    if request.method not in ("GET", "POST"):
        return JsonResponse({"error": "INVALID_REQUEST_METHOD"}, status=405, headers={"Allow": "GET, POST"})
    try:
        user = _user(request)
    except TokenError as exc:
        return JsonResponse(v1_error(exc).body())
    request_ = None
    try:
        request_ = parse(_body(request))
        return JsonResponse(ACTIONS[request_.action](user, request_))
    except V1Error as exc:
        return JsonResponse(exc.body())
    except ComponentError as exc:
        return JsonResponse(v1_error(exc, request_).body())
