"""The CRM.COM dialect in the OpenAPI schema, generated from the same method tables the views parse with
(``conax.api.crmparams``), so the documentation cannot drift from the behaviour. A drf-spectacular post-processing
hook: the dialect's views are plain Django views (its envelope is not DRF's)."""

from __future__ import annotations

from conax.api.crmparams import METHODS, REQUEST_FIELDS, Method

BASE = "/crmapi/rest/v2/"
TAG = "CRM.COM Conax provisioning requests"
CODES = (
    "OK, or the error: INVALID_TOKEN, ACCESS_DENIED, UNKNOWN_PARAMETER, MISSING_PARAMETER, INVALID_PARAMETER, "
    "INVALID_IDENTIFIER, NOT_FOUND, SEMI_OPTIONAL_PARAMETERS, CONSTRAINT_VIOLATION, INVALID_FIELDS_SET, "
    "INVALID_REQUEST, INVALID_CREDENTIALS, ACCOUNT_LOCKED, METHOD_NOT_ALLOWED, UNKNOWN_METHOD, "
    "SERVICE_UNAVAILABLE"
)
STATUS = {
    "type": "object",
    "required": ["code", "message", "description"],
    "additionalProperties": False,
    "properties": {
        "code": {"type": "string", "description": CODES},
        "message": {"type": "string", "nullable": True},
        "description": {"type": "string", "nullable": True},
    },
}
REQUEST = {
    "type": "object",
    "description": "A provisioning request; ca_pin is always null.",
    "properties": {name: {} for name in REQUEST_FIELDS},
}
NO_DATA = {"type": "object", "nullable": True, "enum": [None], "description": "always null on an error"}
ERRORS = {
    "400": (
        "INVALID_REQUEST: the request could not be read (a Host this portal does not serve, a malformed "
        "Content-Length)",
        {},
    ),
    "404": ("UNKNOWN_METHOD: no such method or resource (any other path under /crmapi/)", {}),
    "405": (
        "METHOD_NOT_ALLOWED: the wrong HTTP method; Allow names the right one",
        {"Allow": {"schema": {"type": "string"}, "description": "the method this path takes"}},
    ),
    "503": (
        "SERVICE_UNAVAILABLE: the database does not answer; retry after Retry-After seconds",
        {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    ),
}
TOO_LARGE = ("INVALID_REQUEST: the body is over the dialect's limit (1 MB)", {})


def _json(data: dict) -> dict:
    schema = {
        "type": "object",
        "required": ["status", "data"],
        "additionalProperties": False,
        "properties": {"status": STATUS, "data": data},
    }
    return {"application/json": {"schema": schema}}


def _envelope(data: dict, *, body: bool = False) -> dict:
    """Every status code a CRM view can answer: 200 (errors too, with data null), and the errors in the envelope
    that Django-level failures get (unknown path, wrong method, body too large, database down)."""
    success = {**data, "nullable": True}
    responses = {
        "200": {
            "description": "The envelope; an error is HTTP 200 with a non-OK status.code and data null",
            "content": _json(success),
        }
    }
    for status, (description, headers) in {**ERRORS, **({"413": TOO_LARGE} if body else {})}.items():
        responses[status] = {"description": description, "content": _json(NO_DATA)}
        if headers:
            responses[status]["headers"] = headers
    return dict(sorted(responses.items()))


def _schema(param) -> dict:
    schema = dict(getattr(param.parse, "openapi", {"type": "string"}))
    if param.doc:
        schema["description"] = "; ".join(filter(None, (param.doc, schema.get("description"))))
    if param.group:
        schema["description"] = f"{schema.get('description', '')} (semi-optional: exactly one of its group)".strip()
    return schema


def _operation(method: Method) -> dict:
    operation = {"operationId": f"crm_{method.name}", "summary": method.summary, "tags": [TAG]}
    data = {"type": "array", "items": REQUEST} if method.name == "list" else REQUEST
    operation["responses"] = _envelope(data, body=method.http == "POST")
    if method.http == "GET":
        operation["parameters"] = [{"name": "token", "in": "query", "required": True, "schema": {"type": "string"}}]
        operation["parameters"] += [
            {"name": p.name, "in": "query", "required": p.required, "schema": _schema(p)} for p in method.params
        ]
    else:
        properties = {"token": {"type": "string"}, **{p.name: _schema(p) for p in method.params}}
        required = ["token", *[p.name for p in method.params if p.required]]
        body = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return operation


def _login() -> dict:
    body = {
        "type": "object",
        "required": ["username", "password", "organisation"],
        "additionalProperties": False,
        "properties": {name: {"type": "string"} for name in ("username", "password", "organisation", "unit")},
    }
    token = {"type": "object", "properties": {"token": {"type": "string"}}}
    return {
        "post": {
            "operationId": "crm_token",
            "summary": "Log in: a token valid for 2 hours.",
            "tags": [TAG],
            "security": [],
            "requestBody": {"content": {"application/json": {"schema": body}}},
            "responses": _envelope(token, body=True),
        }
    }


def _release() -> dict:
    body = {"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}}
    return {
        "post": {
            "operationId": "crm_token_release",
            "summary": "End a token.",
            "tags": [TAG],
            "security": [],
            "requestBody": {"content": {"application/json": {"schema": body}}},
            "responses": _envelope(NO_DATA, body=True),
        }
    }


def crm_paths(result: dict, generator, request, public) -> dict:
    paths = result.setdefault("paths", {})
    paths[BASE + "authentication/token"] = _login()
    paths[BASE + "authentication/token/release"] = _release()
    for method in METHODS.values():
        path = f"{BASE}conax_web_services/provisioning_requests/{method.name}"
        paths[path] = {method.http.lower(): {**_operation(method), "security": []}}
    return result
