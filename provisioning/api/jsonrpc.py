"""``POST /jsonrpc`` on the portal: set-top boxes (or their agents) push Thunder notifications, with their CIK.

The dialect is Thunder's: a JSON-RPC 2.0 notification ``{"jsonrpc": "2.0", "method":
"client.events.1.provisioningchange", "params": {"status": 200}}`` with header ``X-Exosite-CIK``. Errors are
JSON-RPC errors on HTTP 202, as Thunder answers them: -32700 unparseable, -32600 not a request, -32601 unknown
method, -32602 bad params; a missing or wrong CIK is error 401 on HTTP 401. Accepted: HTTP 200 with
``"result": null`` when the request had an id, 204 with no body and no Content-Type for a notification.

One sanitising layer (``_sanitised``) sees every parsed message before anything else does: a string (key or value,
anywhere) holding NUL or an unpaired surrogate (``"\\ud800"``: neither can be stored in PostgreSQL text), an integer
outside 64 bits, or nesting deeper than ``MAX_DEPTH`` makes the whole message -32600
``Invalid Request`` with HTTP 202, before the CIK is looked up and with nothing written.

Domain errors become JSON-RPC errors in one place, ``rpc_error``; the others are the dialect's own shape errors.
"""

from __future__ import annotations

import json
import re

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from devices.exceptions import CikInvalid
from portal.kernel.errors import Category
from portal.kernel.remote import client_ip
from provisioning import services
from provisioning.auth import device_from_request
from provisioning.thunder import INT32

MAX_BODY = 16 * 1024
MAX_DEPTH = 16  # a notification is two levels deep; JSON's own limit here is Python's recursion limit
INT64 = (-(2**63), 2**63 - 1)
# "<client events id>.<event>": the id is the one the box was registered with, e.g. client.events.1
EVENT_METHOD = re.compile(r"^(?P<client>[A-Za-z0-9_.-]{1,64})\.(?P<event>provisioningchange)$")
# Domain errors as (JSON-RPC code, message, HTTP status): a refused CIK is Thunder's 401 on HTTP 401.
DOMAIN_ERRORS = {Category.DENIED: (401, "Unauthorized", 401)}


def _error(code: int, message: str, request_id=None, status: int = 202) -> JsonResponse:
    body = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
    return JsonResponse(body, status=status)


def rpc_error(exc: CikInvalid, request_id=None) -> JsonResponse:
    """The dialect's one mapping of domain errors (only a refused CIK reaches it)."""
    code, message, status = DOMAIN_ERRORS[exc.category]
    return _error(code, message, request_id, status=status)


class Unacceptable(ValueError):
    """Well-formed JSON that no request of this dialect may carry."""


def _text_ok(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")  # what the database driver does; an unpaired surrogate cannot be encoded
    except UnicodeEncodeError:
        return False
    return True


def _sanitised(value, depth: int = 0):
    """The message itself, or Unacceptable: the dialect's one input check, run on every part of it."""
    if depth > MAX_DEPTH:
        raise Unacceptable("nested too deeply")
    if isinstance(value, str):
        if not _text_ok(value):
            raise Unacceptable("a string holds NUL or an unpaired surrogate")
    elif isinstance(value, int) and not isinstance(value, bool):
        if not INT64[0] <= value <= INT64[1]:
            raise Unacceptable("an integer beyond 64 bits")
    elif isinstance(value, list):
        for item in value:
            _sanitised(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            _sanitised(key, depth + 1)
            _sanitised(item, depth + 1)
    return value


def _parse(request: HttpRequest) -> dict | JsonResponse:
    body = request.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return _error(-32600, "Invalid Request: body too large")
    try:
        message = _sanitised(json.loads(body))
    except Unacceptable as exc:
        return _error(-32600, f"Invalid Request: {exc}")
    except (ValueError, RecursionError):  # bad JSON or UTF-8, absurd nesting or numbers
        return _error(-32700, "Parse error")
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0" or not isinstance(message.get("method"), str):
        return _error(-32600, "Invalid Request")
    request_id = message.get("id")
    if request_id is not None and (isinstance(request_id, bool) or not isinstance(request_id, int | str)):
        return _error(-32600, "Invalid Request: id")
    return message


def _no_content() -> HttpResponse:
    """Django gives every response ``Content-Type: text/html``; a 204 has no body, so it names no type."""
    response = HttpResponse(status=204)
    del response["Content-Type"]
    return response


@csrf_exempt
def endpoint(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponse("method not allowed", status=405, headers={"Allow": "POST"}, content_type="text/plain")
    message = _parse(request)
    if isinstance(message, JsonResponse):
        return message
    request_id = message.get("id")
    try:
        device = device_from_request(request)
    except CikInvalid as exc:
        return rpc_error(exc, request_id)
    match = EVENT_METHOD.match(message["method"])
    if match is None:
        return _error(-32601, "Unknown method.", request_id)
    params = message.get("params", {})
    status = params.get("status") if isinstance(params, dict) else None
    if isinstance(status, bool) or not isinstance(status, int) or not INT32[0] <= status <= INT32[1]:
        return _error(-32602, "Invalid params: status must be a 32-bit integer", request_id)
    services.event_push(device=device, host=client_ip(request), name=match["event"], status=status)
    if request_id is None:
        return _no_content()
    return JsonResponse({"jsonrpc": "2.0", "id": request_id, "result": None})
