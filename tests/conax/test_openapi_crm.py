"""The CRM.COM dialect's OpenAPI schema agrees with its answers (12.15): every status code a CRM view answers is
documented, and real answers (successes, errors with ``data: null``, 405, 503) validate against their schema."""

from __future__ import annotations

import json

import jsonschema
import pytest

from conax.api.crmparams import METHODS
from portal.kernel import dialects
from tests.conax.support import ADD, BASE, REQUESTS

pytestmark = pytest.mark.django_db
STATUSES = {"200", "400", "404", "405", "503"}


def json_schema(node):
    """OpenAPI 3.0 → JSON Schema for what these schemas use: ``nullable`` becomes a ``null`` type (and enum value)."""
    if isinstance(node, list):
        return [json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
        if "enum" in converted and None not in converted["enum"]:
            converted["enum"] = [*converted["enum"], None]
    return converted


@pytest.fixture
def schema(client) -> dict:
    return client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def crm_operations(schema: dict):
    for path, item in schema["paths"].items():
        if path.startswith(BASE):
            for http, operation in item.items():
                yield path, http, operation


def check(schema: dict, path: str, http: str, response) -> None:
    documented = schema["paths"][path][http]["responses"][str(response.status_code)]
    body = json_schema(documented["content"]["application/json"]["schema"])
    jsonschema.Draft7Validator(body).validate(json.loads(response.content))
    for header in documented.get("headers", {}):
        assert response.has_header(header), header


def test_every_crm_operation_documents_every_status_it_answers(schema):
    operations = list(crm_operations(schema))

    assert len(operations) == len(METHODS) + 2
    for path, http, operation in operations:
        expected = STATUSES | ({"413"} if http == "post" else set())
        assert set(operation["responses"]) == expected, path
        for status in expected - {"200"}:
            data = operation["responses"][status]["content"]["application/json"]["schema"]["properties"]["data"]
            assert (data["nullable"], data["enum"]) == (True, [None]), (path, status)
    assert schema["paths"][REQUESTS + "show"]["get"]["responses"]["405"]["headers"]["Allow"]
    assert schema["paths"][REQUESTS + "show"]["get"]["responses"]["503"]["headers"]["Retry-After"]


def test_successes_and_errors_validate_against_the_schema(schema, crm):
    created = crm.client.generic(
        "POST", REQUESTS + "add_subscriptions", json.dumps({"token": crm.token, **ADD}), content_type="application/json"
    )
    number = created.json()["data"]["number"]
    answers = [
        (REQUESTS + "add_subscriptions", "post", created),
        (
            REQUESTS + "add_subscriptions",
            "post",
            crm.client.generic(
                "POST",
                REQUESTS + "add_subscriptions",
                json.dumps({"token": crm.token}),
                content_type="application/json",
            ),
        ),
        (REQUESTS + "show", "get", crm.client.get(REQUESTS + "show", {"token": crm.token, "number": number})),
        (REQUESTS + "show", "get", crm.client.get(REQUESTS + "show", {"token": crm.token, "number": "999"})),
        (
            REQUESTS + "list",
            "get",
            crm.client.get(
                REQUESTS + "list", {"token": crm.token, "type": "ADD_SUBSCRIPTIONS", "fields_set": "number"}
            ),
        ),
        (REQUESTS + "list", "get", crm.client.get(REQUESTS + "list", {"token": "\x00"})),
        (REQUESTS + "show", "get", crm.client.post(REQUESTS + "show")),
        (BASE + "authentication/token", "post", crm.client.get(BASE + "authentication/token")),
        (
            BASE + "authentication/token",
            "post",
            crm.client.post(BASE + "authentication/token", "[]", content_type="application/json"),
        ),
        (
            BASE + "authentication/token/release",
            "post",
            crm.client.post(
                BASE + "authentication/token/release", json.dumps({"token": crm.token}), content_type="application/json"
            ),
        ),
    ]

    assert [response.status_code for _, _, response in answers] == [200] * 6 + [405, 405, 200, 200]
    for path, http, response in answers:
        check(schema, path, http, response)


def test_the_unavailable_answer_validates_against_the_503_schema(schema):
    """The 503 the project renders for the dialect when the database does not answer (portal.kernel.dialects)."""
    response = dialects.dialect_for(REQUESTS + "show").render(dialects.UNAVAILABLE)

    assert response.status_code == 503
    check(schema, REQUESTS + "show", "get", response)
    assert json.loads(response.content)["status"]["code"] == "SERVICE_UNAVAILABLE"
