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
