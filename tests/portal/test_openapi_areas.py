"""The schema as an integrator's front door: an area tag on every operation, and the new areas (conditional access
on the staff API, webhooks) complete: a summary on each operation and the errors each can give."""

from __future__ import annotations

import pytest

from portal.kernel.api.openapi import TAGS

pytestmark = pytest.mark.django_db
METHODS = ("get", "post", "put", "patch", "delete")
COMPLETE = ("/api/v1/conax/", "/api/v1/webhooks/")


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker) -> dict:
    from django.test import Client

    with django_db_blocker.unblock():
        return Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def test_every_operation_has_exactly_one_declared_area(schema):
    names = [tag["name"] for tag in TAGS]

    untagged = [(m, p, op.get("tags")) for p, m, op in operations(schema) if op.get("tags", [None])[0] not in names]

    assert untagged == []
    assert [tag["name"] for tag in schema["tags"]] == names
    assert all(tag["description"] for tag in schema["tags"])


def test_conditional_access_and_webhook_operations_are_complete(schema):
    missing = []
    for path, method, op in operations(schema):
        if not path.startswith(COMPLETE):
            continue
        writes = ("post", "put", "patch", "delete") if path.startswith("/api/v1/conax/") else ("post", "put", "patch")
        wanted = {"400", "401", "403", "404"} | ({"409"} if method in writes and "{id}" in path else set())
        if not op.get("summary") or not wanted <= set(op["responses"]):
            missing.append((method, path, op.get("summary"), sorted(wanted - set(op["responses"]))))

    assert missing == []


def test_every_operation_has_a_summary_a_description_and_its_errors(schema):
    incomplete = []
    for path, method, op in operations(schema):
        errors = {status for status in op["responses"] if status[0] in "45"}
        if not op.get("summary") or not op.get("description") or not errors:
            incomplete.append((method, path, op.get("summary"), bool(op.get("description")), sorted(errors)))

    assert incomplete == []


def test_staff_api_errors_document_the_body_the_error_handler_writes(schema):
    import jsonschema
    from rest_framework.exceptions import NotFound

    from portal.kernel.api.errors import rest_exception_handler
    from portal.kernel.errors import Category, DomainError

    class Refused(DomainError):
        code, category = "SOMETHING_REFUSED", Category.CONFLICT

    error = schema["components"]["schemas"]["Error"]
    for exc in (Refused("no", ids=[3, 4]), NotFound()):
        answer = rest_exception_handler(exc, {})
        jsonschema.validate(answer.data, error)
    jsonschema.validate(error["example"], error)
    operation = schema["paths"]["/api/v1/devices/{id}/enable/"]["post"]
    assert operation["responses"]["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }


# The bounds come from the database's integer ranges (Django's integer_field_range): PostgreSQL's integer columns
# are 32-bit, SQLite's 64-bit (2**63 - 1, past what JSON clients read exactly) -- the schema of the production database.
@pytest.mark.postgres
def test_no_integer_bound_beyond_what_json_clients_read_exactly(schema):
    absurd = []

    def walk(node, where):
        if isinstance(node, dict):
            absurd.extend(
                (where, key, node[key])
                for key in ("minimum", "maximum")
                if isinstance(node.get(key), int | float) and abs(node[key]) > 2**53 - 1
            )
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    walk(schema, "")

    assert absurd == []
