"""The CRM.COM dialect in the OpenAPI schema, generated from the same method tables the views parse with
(``conax.api.crmparams``), so the documentation cannot drift from the behaviour. A drf-spectacular post-processing
hook: the dialect's views are plain Django views (its envelope is not DRF's)."""

from __future__ import annotations

from conax.api.crmparams import METHODS, REQUEST_FIELDS, Method

BASE = "/crmapi/rest/v2/"
TAG = "CRM.COM Conax provisioning requests"
STATUS = {"type": "object", "required": ["code", "message", "description"], "properties": {
    "code": {"type": "string", "description": "OK, or the error: INVALID_TOKEN, MISSING_PARAMETER, "
             "UNKNOWN_PARAMETER, INVALID_PARAMETER, INVALID_IDENTIFIER, SEMI_OPTIONAL_PARAMETERS, NOT_FOUND, "
             "CONSTRAINT_VIOLATION, INVALID_FIELDS_SET, INVALID_REQUEST, INVALID_CREDENTIALS, ACCESS_DENIED, "
             "ACCOUNT_LOCKED, METHOD_NOT_ALLOWED, UNKNOWN_METHOD"},
    "message": {"type": "string", "nullable": True}, "description": {"type": "string", "nullable": True}}}  # fmt: skip
REQUEST = {"type": "object", "description": "A provisioning request; ca_pin is always null.",
           "properties": {name: {} for name in REQUEST_FIELDS}}  # fmt: skip


def _envelope(data: dict) -> dict:
    schema = {"type": "object", "required": ["status", "data"], "properties": {"status": STATUS, "data": data}}
    return {"200": {"description": "The envelope (errors too: HTTP 200 with a non-OK status.code)",
                    "content": {"application/json": {"schema": schema}}}}  # fmt: skip


def _schema(param) -> dict:
    schema = dict(getattr(param.parse, "openapi", {"type": "string"}))
    if param.doc:
        schema["description"] = param.doc
    if param.group:
        schema["description"] = f"{schema.get('description', '')} (semi-optional: exactly one of its group)".strip()
    return schema


def _operation(method: Method) -> dict:
    operation = {"operationId": f"crm_{method.name}", "summary": method.summary, "tags": [TAG]}
    data = {"type": "array", "items": REQUEST} if method.name == "list" else REQUEST
    operation["responses"] = _envelope(data)
    if method.http == "GET":
        operation["parameters"] = [{"name": "token", "in": "query", "required": True, "schema": {"type": "string"}}]
        operation["parameters"] += [{"name": p.name, "in": "query", "required": p.required, "schema": _schema(p)}
                                    for p in method.params]  # fmt: skip
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
    return {"post": {"operationId": "crm_token", "summary": "Log in: a token valid for 2 hours.", "tags": [TAG],
                     "security": [], "requestBody": {"content": {"application/json": {"schema": body}}},
                     "responses": _envelope(token)}}  # fmt: skip


def _release() -> dict:
    body = {"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}}
    return {"post": {"operationId": "crm_token_release", "summary": "End a token.", "tags": [TAG], "security": [],
                     "requestBody": {"content": {"application/json": {"schema": body}}},
                     "responses": _envelope({"type": "object", "nullable": True})}}  # fmt: skip


def crm_paths(result: dict, generator, request, public) -> dict:
    paths = result.setdefault("paths", {})
    paths[BASE + "authentication/token"] = _login()
    paths[BASE + "authentication/token/release"] = _release()
    for method in METHODS.values():
        path = f"{BASE}conax_web_services/provisioning_requests/{method.name}"
        paths[path] = {method.http.lower(): {**_operation(method), "security": []}}
    return result
