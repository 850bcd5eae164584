"""The error answers in the OpenAPI schema, documented once by path prefix instead of once per view.

Every operation can answer errors that no view writes: a refused Host or a bad ``Content-Length`` (400), a body
over the dialect's limit (413), a database that does not answer (503 + ``Retry-After``), DRF's authentication,
permission, routing and content negotiation answers. Each path's dialect (``portal.kernel.dialects``, by prefix) decides
their format; the edge's answers are rendered here by the same functions that answer them on the wire, so the
status codes and examples cannot drift from the behaviour. What only one view answers (a 409 on a state change, the
login's 429) stays on that view, with ``error_response``.

A drf-spectacular post-processing hook (``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``), run last so that it sees
every path. It never replaces a response that a view or an earlier hook documented. Pure wire formats: it imports
no app.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from drf_spectacular.utils import OpenApiResponse

from portal.kernel import dialects
from portal.kernel.api import examples

if TYPE_CHECKING:
    from drf_spectacular.generators import SchemaGenerator
    from rest_framework.request import Request

HTTP_METHODS = ("get", "put", "post", "patch", "delete")
EDGE_KINDS = (dialects.BAD_REQUEST, dialects.TOO_LARGE, dialects.UNAVAILABLE)
EDGE_DESCRIPTIONS = {
    dialects.BAD_REQUEST: "The request could not be read: a refused Host header or a malformed Content-Length.",
    dialects.TOO_LARGE: "The body is over the dialect's limit ({limit} bytes); it was refused unread.",
    dialects.UNAVAILABLE: "The database does not answer; nothing was done. Retry after Retry-After seconds.",
}

REF = "#/components/schemas/"
ERROR = "Error"
VALIDATION_ERROR = "ValidationError"
SCHEMAS = {
    ERROR: {
        "type": "object",
        "description": "DRF's error body; `code` names a domain error (a stable code) where there is one.",
        "required": ["detail"],
        "additionalProperties": False,
        "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
        "example": {"code": "ILLEGAL_TRANSITION", "detail": "the device's state does not allow this change"},
    },
    VALIDATION_ERROR: {
        "type": "object",
        "description": "DRF's validation error body: each field (or `non_field_errors`) with its messages, or the "
        "errors of its nested fields.",
        "minProperties": 1,
        "additionalProperties": {"anyOf": [{"type": "array"}, {"type": "object"}]},
        "example": {"serial_number": ["This field is required."]},
    },
}

RETRY_AFTER = {"schema": {"type": "integer", "minimum": 0}, "required": True, "description": "seconds"}
HEADERS = {
    "401": {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True, "description": "`Token`"}},
    "405": {"Allow": {"schema": {"type": "string"}, "required": True, "description": "the methods the path takes"}},
    "429": {"Retry-After": RETRY_AFTER},
    "503": {"Retry-After": RETRY_AFTER},
}


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def _ref(name: str) -> dict:
    return {"$ref": REF + name}


def _response(description: str, schema: dict, example: object = None) -> dict:
    content = _json(schema)
    if example is not None:
        content["application/json"]["example"] = example
    return {"description": description, "content": content}


def error_response(description: str) -> OpenApiResponse:
    """A view-specific error of the staff REST API in DRF's body, for ``extend_schema(responses={409: …})``; the
    hook adds the headers its status code carries (``Retry-After`` on a 429)."""
    return OpenApiResponse(response=_ref(ERROR), description=description)


def invalid_response(description: str) -> OpenApiResponse:
    """A view-specific 400: a domain refusal in DRF's error body, or DRF's validation body for a malformed field."""
    return OpenApiResponse(response={"anyOf": [_ref(VALIDATION_ERROR), _ref(ERROR)]}, description=description)


# --- what each dialect documents ---------------------------------------------------------------------------------


def _edge(dialect: dialects.Dialect, schema: dict) -> dict[str, dict]:
    """The answers the edge gives for any path of ``dialect``, rendered by the dialect itself."""
    responses = {}
    for kind in EDGE_KINDS:
        answer = dialect.render(kind)
        description = EDGE_DESCRIPTIONS[kind].format(limit=dialect.body_limit)
        responses[str(answer.status_code)] = _response(description, schema, json.loads(answer.content))
    return responses


def _needs_auth(operation: dict) -> bool:
    return any(requirement for requirement in operation.get("security", []))


def _rest(dialect: dialects.Dialect, operation: dict) -> dict[str, dict]:
    error = _ref(ERROR)
    responses = _edge(dialect, error)
    responses["400"] = _response(
        "Invalid input (DRF's validation body), or a request the edge could not read.",
        {"anyOf": [_ref(VALIDATION_ERROR), error]},
    )
    if _needs_auth(operation):
        responses["401"] = _response("No token, or one that is invalid, expired or revoked.", error)
        responses["403"] = _response("The caller is not support staff.", error)
    responses["404"] = _response("No such object.", error)
    responses["405"] = _response("The path does not take this method; Allow names the ones it takes.", error)
    responses["406"] = _response("The Accept header excludes application/json.", error)
    if "requestBody" in operation:
        responses["415"] = _response("A body that is neither JSON nor a form.", error)
    return responses


# The CRM.COM paths document their own edge answers for now (``conax.api.openapi``: 404, 405, 413, 503).
DOCUMENTED: dict[str, Callable[[dialects.Dialect, dict], dict[str, dict]]] = {"rest": _rest}


def dialect_of(path: str) -> dialects.Dialect | None:
    """The dialect whose errors the hook documents for ``path``; None when it documents none."""
    dialect = dialects.dialect_for(path)
    return dialect if dialect is not None and dialect.name in DOCUMENTED else None


def _add_headers(responses: dict) -> None:
    for status, headers in HEADERS.items():
        if status in responses and "$ref" not in responses[status]:
            responses[status].setdefault("headers", {})
            for name, header in headers.items():
                responses[status]["headers"].setdefault(name, header)


def error_responses(result: dict, generator: SchemaGenerator, request: Request | None, public: bool) -> dict:
    for path, item in result.get("paths", {}).items():
        dialect = dialect_of(path)
        if dialect is None:
            continue
        for method in HTTP_METHODS:
            if (operation := item.get(method)) is None:
                continue
            responses = operation.setdefault("responses", {})
            for status, response in DOCUMENTED[dialect.name](dialect, operation).items():
                responses.setdefault(status, response)
            _add_headers(responses)
            operation["responses"] = dict(sorted(responses.items()))
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in SCHEMAS.items():
        schemas.setdefault(name, schema)
    return result


# --- tags: one area per operation ----------------------------------------------------------------------------------

# (path pattern, tag), the first match wins: patterns are regular expressions on the schema's path. Pure data, so the
# kernel still imports no app; an operation no pattern names keeps the tag drf-spectacular gave it (a test fails).
AREAS: tuple[tuple[str, str], ...] = (
    (r"^/api/v1/auth/", "auth"),
    (r"^/api/v1/devices/\{id\}/(box|reprovision|refresh|provision|set-index)/", "set-top boxes"),
    (r"^/api/v1/commands/", "set-top boxes"),
    (r"^/api/v1/devices/\{id\}/(enable|reenable|disable|log)/", "activation"),
    (r"^/api/v1/activation-attempts/", "activation"),
    (r"^/api/v1/(vendors|device-models|devices|vendor-tokens)/", "inventory"),
    (r"^/api/v1/conax/", "conditional access"),
    (r"^/crmapi/", "conditional access (CRM.COM)"),
    (r"^/api/v1/(sensors|parameters|parameter-groups|provisioning-records|components)/", "components"),
    (r"^/api/v1/webhooks/", "webhooks"),
    (r"^/api/v1/campaigns/", "campaigns"),
    (r"^/api/v1/fleet/", "fleet"),
    (r"^/(healthz|readyz)$", "health"),
)
TAGS = [
    {"name": "auth", "description": "Staff API login: a token for `Authorization: Token …`, its info, logout."},
    {
        "name": "inventory",
        "description": "Vendors, device models, devices (serial numbers) and their bulk import; the vendor tokens of "
        "the Exosite management API.",
    },
    {"name": "activation", "description": "Enable, re-enable, disable a device; its activation attempts."},
    {"name": "set-top boxes", "description": "A box's Thunder address and plugin status; reprovision and commands."},
    {
        "name": "conditional access",
        "description": "The Conax catalog an integrator feeds (services, subscriptions, smartcards, CAS boxes, units), "
        "what the head-end made of it (pairings, entitlements), bulk upsert.",
    },
    {
        "name": "conditional access (CRM.COM)",
        "description": "Conax provisioning requests in the CRM.COM envelope (always HTTP 200, `status.code`).",
    },
    {"name": "components", "description": "Provisioning components: the catalog, records and components."},
    {"name": "webhooks", "description": "Outbound webhooks: endpoints and the delivery log (docs/webhooks.md)."},
    {
        "name": "campaigns",
        "description": "Fleet campaigns: a command or a Conax request over a filtered fleet, in waves, rate-limited, "
        "halting below a success threshold; their report, members and CSV export (docs/campaigns-console.md).",
    },
    {"name": "fleet", "description": "The fleet dashboard's counts."},
    {"name": "health", "description": "Liveness and readiness for load balancers and orchestrators (no token)."},
]


def area_tags(result: dict, generator: SchemaGenerator, request: Request | None, public: bool) -> dict:
    """Tag every operation with its area (AREAS) and list the areas, in their order, with a description each."""
    patterns = [(re.compile(pattern), tag) for pattern, tag in AREAS]
    for path, item in result.get("paths", {}).items():
        tag = next((tag for pattern, tag in patterns if pattern.search(path)), None)
        if tag is None:
            continue
        for method in HTTP_METHODS:
            if (operation := item.get(method)) is not None:
                operation["tags"] = [tag]
    result["tags"] = TAGS
    return result


# --- a summary and a description on every operation ----------------------------------------------------------------

# What a view says about itself (``extend_schema(summary=…)``, its docstring) wins; what is left is filled here. The
# custom actions by (method, path); the collections' plain reads and writes by one rule per method (``_crud``), in the
# words the conditional-access views already use. Pure data, like AREAS: the kernel still imports no app.
ACTIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("post", "/api/v1/auth/token/"): (
        "Log in: a token for the staff API",
        "Username and password of a support-staff user; the answer carries a token for `Authorization: Token …` and "
        "when it expires. Repeated failures are throttled (429 with Retry-After).",
    ),
    ("get", "/api/v1/auth/token/"): ("Read the caller's token", ""),
    ("delete", "/api/v1/auth/token/"): ("Log out: revoke the caller's token", ""),
    ("post", "/api/v1/devices/import/"): ("Import serial numbers into a model", ""),
    ("post", "/api/v1/devices/{id}/enable/"): (
        "Enable a device",
        "Opens the activation window of a serial that was never enabled (`window` seconds, 60 s to 90 days, else the "
        "default): the device may then activate at `/provision/activate` (see /docs/activation/). 409 when its "
        "state does not allow it.",
    ),
    ("post", "/api/v1/devices/{id}/reenable/"): (
        "Re-enable a device",
        "A new activation window for an activated, expired or disabled device; its CIK stops working at once, so the "
        "device must activate again (a `device.reenabled` webhook event). 409 when its state does not allow it.",
    ),
    ("post", "/api/v1/devices/{id}/disable/"): (
        "Disable a device",
        "A disabled device cannot activate, and its CIK stops working at once. 409 when its state does not allow it.",
    ),
    ("get", "/api/v1/devices/{id}/log/"): ("A device's activation attempts", ""),
    ("get", "/api/v1/devices/{id}/box/"): ("Read a device's set-top box", ""),
    ("put", "/api/v1/devices/{id}/box/"): ("Register or move a device's set-top box", ""),
    ("post", "/api/v1/devices/{id}/reprovision/"): (
        "Reprovision a set-top box",
        "Queues a command that makes the box fetch one provision type again over its Thunder connection. The answer "
        "(202) is the queued command; follow it at `/api/v1/commands/?device_id=…` or in the box's timeline.",
    ),
    ("post", "/api/v1/devices/{id}/refresh/"): (
        "Refresh a set-top box's status",
        "Queues a command that reads the box's plugin status again (202: the queued command).",
    ),
    ("post", "/api/v1/devices/{id}/provision/"): (
        "Run the platform provisioning on a set-top box",
        "Queues `Provisioning.1.provision` on the box (202: the queued command).",
    ),
    ("post", "/api/v1/devices/{id}/set-index/"): (
        "Set a key index on a set-top box",
        "Queues a command that sets one key index (`label`, `index`) on the box (202: the queued command).",
    ),
    ("post", "/api/v1/vendor-tokens/"): ("Create a vendor token", ""),
    ("post", "/api/v1/vendor-tokens/{id}/revoke/"): (
        "Revoke a vendor token",
        "The token stops authenticating at once; 409 when it was already revoked.",
    ),
    ("post", "/api/v1/components/"): ("Add or rewrite a record's components", ""),
    ("post", "/api/v1/components/set-status/"): (
        "Set the active status of components",
        "One status for every component listed in `ids`; the answer counts the ones that changed.",
    ),
    ("get", "/api/v1/fleet/summary/"): ("The fleet's counts", ""),
}

IRREGULAR = {"set-top-boxes": "set-top box", "CAS set-top boxes": "CAS set-top box"}
CRM_DESCRIPTION = (
    "CRM.COM dialect: always HTTP 200 with the outcome in `status.code` (`OK` or a named error, `data` null on an "
    "error); only the edge's refusals (unknown path, wrong method, body too large, database down) have other status "
    "codes, in the same envelope. See /docs/crm/."
)


def _noun(path: str) -> tuple[str, str]:
    """The collection a path names, singular with its article and plural: ``/api/v1/device-models/{id}/`` →
    ("a device model", "device models")."""
    segments = [s for s in path.strip("/").split("/") if s and not s.startswith("{")]
    plural = segments[-1].replace("-", " ")
    singular = IRREGULAR.get(segments[-1], plural[:-1] if plural.endswith("s") else plural)
    article = "an" if singular[0] in "aeiou" else "a"
    return f"{article} {singular}", plural


def _crud(method: str, path: str) -> tuple[str, str] | None:
    one, many = _noun(path)
    if path.endswith("/{id}/"):
        return {
            "get": (f"Read {one}", f"One of the {many} by id; 404 when there is none."),
            "put": (f"Change {one}", "The whole input; every field is checked, nothing is written on an error."),
            "patch": (
                f"Change {one} (the same whole input as PUT)",
                "Every field is checked as for PUT (no partial input); nothing is written on an error.",
            ),
            "delete": (f"Delete {one}", "Deleted at once (204); 409 where the operation lists a conflict."),
        }.get(method)
    if re.search(r"/api/v1/[a-z-]+(/[a-z-]+)?/$", path):
        return {
            "get": (
                f"List {many}",
                "One page (`limit`, at most 1000, and `offset`; `next`/`previous` links), filtered by the query "
                "parameters below; an unknown filter value is a 400.",
            ),
            "post": (f"Create {one}", "The whole input is checked; the answer (201) is the new object."),
        }.get(method)
    return None


def operation_texts(result: dict, generator: SchemaGenerator, request: Request | None, public: bool) -> dict:
    """Fill the summary and description an operation lacks (ACTIONS, else the rule per method, else the CRM.COM
    envelope's description). The test ``tests/portal/test_openapi_areas.py`` fails on any operation still without."""
    for path, item in result.get("paths", {}).items():
        for method in HTTP_METHODS:
            if (operation := item.get(method)) is None:
                continue
            summary, description = ACTIONS.get((method, path)) or _crud(method, path) or ("", "")
            if path.startswith("/crmapi/"):
                description = CRM_DESCRIPTION
            if not operation.get("summary") and summary:
                operation["summary"] = summary
            if not operation.get("description"):
                operation["description"] = description or operation.get("summary", "")
    return result


# --- request and response examples on every operation --------------------------------------------------------------

PAGINATED = re.compile(r"^Paginated(?P<item>\w+)List$")


def _component_example(schema: dict) -> object:
    """The example of the component ``schema`` names (a page of one for a paginated list, a list of one for an
    array); None when ``examples.RESPONSES`` has none."""
    if schema.get("type") == "array" and "$ref" in schema.get("items", {}):
        item = _component_example(schema["items"])
        return None if item is None else [item]
    name = schema.get("$ref", "").removeprefix(REF)
    if (page := PAGINATED.match(name)) is not None:
        item = examples.RESPONSES.get(page["item"])
        return None if item is None else {"count": 1, "next": None, "previous": None, "results": [item]}
    return examples.RESPONSES.get(name)


def _success(operation: dict) -> dict | None:
    """The JSON media type of the operation's success answer (the first 2xx with a body)."""
    for status, response in operation.get("responses", {}).items():
        if status.startswith("2") and "application/json" in response.get("content", {}):
            return response["content"]["application/json"]
    return None


def operation_examples(result: dict, generator: SchemaGenerator, request: Request | None, public: bool) -> dict:
    """Put ``portal.kernel.api.examples`` on each operation's JSON request body and success answer; an example a
    view wrote itself stays. ``tests/portal/test_openapi_examples.py`` fails on an operation still without, and
    replays them all against the real app."""
    for item in result.get("paths", {}).values():
        for method in HTTP_METHODS:
            if (operation := item.get(method)) is None:
                continue
            name = operation.get("operationId", "")
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and name in examples.REQUESTS:
                body.setdefault("example", examples.REQUESTS[name])
            success = _success(operation)
            if success is None or "example" in success or "examples" in success:
                continue
            example = examples.OPERATION_RESPONSES.get(name, _component_example(success.get("schema", {})))
            if example is not None:
                success["example"] = example
    return result
