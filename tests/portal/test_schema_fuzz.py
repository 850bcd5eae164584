"""The OpenAPI schema and the answers agree (issue 12.15): schemathesis over every operation of ``/api/schema/``,
against the production HTTP server (gunicorn) on PostgreSQL with the demo data, as staff, as nobody and as a staff
user outside the support group.

For every generated request (positive and negative data, ``SCHEMA_FUZZ_EXAMPLES`` of each per operation, default
10; ``bench/schema_fuzz.py`` runs many more): no 5xx, the status code is documented, the content type, the headers
and the body conform to the documented response, and an error answer (a 4xx, or the CRM envelope with a code other
than OK) writes nothing. "Nothing" is checked per request: a fingerprint of every row of the domain tables (count
and a hash of each row's text, so updates count too) before and after. Left out, because an error answer is meant
to write them: API tokens (each authenticated request records its last use) and django-axes' failed logins.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter, defaultdict

import jsonschema
import pytest
import requests
import schemathesis
from django.apps import apps
from django.conf import settings as django_settings
from django.db import connection
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from portal.kernel import dialects
from tests.conftest import start_gunicorn

EXAMPLES = int(os.environ.get("SCHEMA_FUZZ_EXAMPLES", "10"))
REPORT = os.environ.get("SCHEMA_FUZZ_REPORT")  # bench/schema_fuzz.py reads the counts from here
# The suite's run is the same every time (hypothesis derandomized); bench/schema_fuzz.py explores at random.
RANDOM = bool(os.environ.get("SCHEMA_FUZZ_RANDOM"))
ONLY = re.compile(os.environ.get("SCHEMA_FUZZ_ONLY", ""))  # bench/schema_fuzz.py --only: operations by label
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# gunicorn answers a request line longer than this itself, in HTML, before the portal sees it (see the xfail below).
GUNICORN_REQUEST_LINE = 8190
FINGERPRINTED_APPS = ("devices", "provisioning", "conax", "components", "auditlog", "auth")
# Whom each request is sent as: mostly support staff (the operations' own answers), sometimes nobody (401) and a
# staff user outside the support group (403).
AS = ("support", "support", "support", "nobody", "outsider")
REVOKING = {("DELETE", "/api/v1/auth/token/"), ("POST", "/crmapi/rest/v2/authentication/token/release")}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "TRACE")

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


# --- the server and its data --------------------------------------------------------------------------------------


class Portal:
    """gunicorn on the test database with the demo data, the tokens to send, and the ids that exist."""

    def __init__(self, tmp_path) -> None:
        from django.contrib.auth import get_user_model

        from portal.demo import demo_load
        from tests.factories import UserFactory

        demo_load()
        self.support = get_user_model().objects.get(username="support")
        self.outsider = UserFactory(username="outsider", is_staff=True)
        # The same key as this process: tokens issued here carry a credentials stamp keyed with it.
        self.base, self.process = start_gunicorn(tmp_path, SECRET_KEY=django_settings.SECRET_KEY)
        self.rest = {"support": self.token("support"), "outsider": self.token("outsider")}
        self.crm = {"support": self.token("support", crm=True), "outsider": self.token("outsider", crm=True)}
        self._ids: dict[str, list[int]] = {}

    def token(self, who: str, *, crm: bool = False) -> str:
        from portal.kernel import services
        from portal.kernel.choices import TokenPurpose

        user = self.support if who == "support" else self.outsider
        return services.token_issue(user=user, purpose=TokenPurpose.CRM if crm else TokenPurpose.STAFF_API).raw

    def ids(self, collection: str) -> list[int]:
        """Ids of the objects a collection lists (the first page), to aim path parameters at real objects."""
        if collection not in self._ids:
            answer = requests.get(f"{self.base}{collection}?limit=50", headers=self.auth("support"), timeout=30)
            assert answer.status_code == 200, answer.text
            rows = answer.json()["results"]
            self._ids[collection] = [row.get("id", row.get("provisioning_id")) for row in rows] or [1]
        return self._ids[collection]

    def auth(self, who: str, token: str | None = None) -> dict[str, str]:
        if who == "nobody":
            return {}
        return {"Authorization": f"Token {token or self.rest[who]}"}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


@pytest.fixture
def portal(tmp_path):
    server = Portal(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def schema(portal):
    return schemathesis.openapi.from_url(f"{portal.base}/api/schema/?format=json", timeout=30)


def fingerprint() -> dict[str, tuple[int, int]]:
    """Rows and a hash of their text, per domain table: changes on any insert, update or delete."""
    tables = sorted(
        {model._meta.db_table for label in FINGERPRINTED_APPS for model in apps.get_app_config(label).get_models()}
    )
    # Table names from the models, not from input.
    query = " UNION ALL ".join(
        f"SELECT '{table}', count(*), coalesce(sum(hashtext(t::text)::bigint), 0) "  # noqa: S608
        f"FROM {connection.ops.quote_name(table)} t"
        for table in tables
    )
    with connection.cursor() as cursor:
        cursor.execute(query)
        return {table: (rows, digest) for table, rows, digest in cursor.fetchall()}


# --- one generated request ----------------------------------------------------------------------------------------


def is_error(path: str, response: requests.Response) -> bool:
    if response.status_code >= 400:
        return True
    if path.startswith("/crmapi/") and response.headers.get("Content-Type", "").startswith("application/json"):
        status = response.json().get("status")
        return isinstance(status, dict) and status.get("code") != "OK"
    return False


class Run:
    """Counts of one schemathesis run: cases, statuses, failures by kind with a few redacted examples."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self.operations = 0
        self.cases: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.failures: Counter[str] = Counter()
        self.known: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = defaultdict(list)

    def fail(self, kind: str, case, detail: str, response: requests.Response | None = None) -> None:
        self.failures[kind] += 1
        if len(self.examples[kind]) < 3:
            sent = f"{response.request.method} {response.request.path_url[:500]}" if response is not None else ""
            body = response.request.body if response is not None else None
            body = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            sent += f"\nbody: {body[:500]}" if body else ""
            self.examples[kind].append(self.redact(f"{case.operation.label}: {detail[:1000]}\nsent: {sent}"))

    def redact(self, text: str) -> str:
        for token in [*self.portal.rest.values(), *self.portal.crm.values()]:
            text = text.replace(token, "[token]")
        return re.sub(r"[0-9a-f]{64}", "[token]", text)

    def prepare(self, case, who: str, real_id: int | None) -> dict[str, str]:
        """Aim the case at a real object and give it the caller's credentials (a fresh token where the operation
        revokes the one it is sent with)."""
        label = (case.operation.method.upper(), case.operation.path)
        if real_id is not None and "id" in (case.path_parameters or {}):
            case.path_parameters["id"] = real_id
        if label[1].startswith("/crmapi/"):
            if who != "nobody":
                token = self.portal.token(who, crm=True) if label in REVOKING else self.portal.crm[who]
                if isinstance(case.query, dict) and "token" in case.query:
                    case.query["token"] = token
                if isinstance(case.body, dict) and "token" in case.body:
                    case.body["token"] = token
            return {}
        return self.portal.auth(who, self.portal.token(who) if label in REVOKING and who != "nobody" else None)

    def send(self, case, who: str, real_id: int | None) -> None:
        headers = self.prepare(case, who, real_id)
        self.cases[case.operation.label] += 1
        before = fingerprint()
        try:
            response = case.call(base_url=self.portal.base, headers=headers, timeout=60, allow_redirects=False)
        except requests.RequestException as exc:
            return self.fail("transport error", case, repr(exc))
        after = fingerprint()
        self.statuses[response.status_code] += 1
        if response.status_code == 400 and len(response.request.path_url) > GUNICORN_REQUEST_LINE - 20:
            self.known["request line over gunicorn's limit (its own HTML 400)"] += 1
            return None
        self.validate(case, response, headers)
        if is_error(case.operation.path, response) and before != after:
            changed = sorted(table for table in after if before.get(table) != after[table])
            self.fail("error answer wrote", case, f"{response.status_code} {response.text[:300]} {changed}", response)
        return None

    def validate(self, case, response: requests.Response, headers: dict) -> None:
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                self.fail(f"{failure.code} {failure.kind_title}", case, f"{failure}\n{response.text[:300]}", response)
        except Failure as failure:
            self.fail(f"{failure.code} {failure.kind_title}", case, f"{failure}\n{response.text[:300]}", response)

    def summary(self) -> dict:
        return {
            "operations": self.operations,
            "cases": sum(self.cases.values()),
            "statuses": dict(sorted(self.statuses.items())),
            "failures": dict(self.failures),
            "known": dict(self.known),
            "examples": dict(self.examples),
        }


def _strategy(operation):
    return st.one_of([operation.as_strategy(generation_mode=mode) for mode in GenerationMode])


def fuzz(run: Run, operation) -> None:
    collection = operation.path.split("{id}")[0] if "{id}" in operation.path else None

    @given(data=st.data())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        derandomize=not RANDOM,
        suppress_health_check=list(HealthCheck),
    )
    def one(data):
        case = data.draw(_strategy(operation), label="case")
        who = data.draw(st.sampled_from(AS), label="as")
        real = collection is not None and data.draw(st.booleans(), label="real id")
        run.send(case, who, data.draw(st.sampled_from(run.portal.ids(collection))) if real else None)

    one()


# --- the tests ------------------------------------------------------------------------------------------------------


def test_schemathesis_finds_no_5xx_no_undocumented_answer_and_no_write_on_an_error(portal, schema):
    run = Run(portal)
    for result in schema.get_all_operations():
        operation = result.ok()
        if ONLY.search(operation.label):
            run.operations += 1
            fuzz(run, operation)
    summary = run.summary()
    if REPORT:
        with open(REPORT, "w") as report:
            json.dump(summary, report, indent=2)

    if not ONLY.pattern:
        assert run.operations == sum(len(item) for item in schema.raw_schema["paths"].values())
    assert len(run.cases) == run.operations  # every operation got requests
    assert not [status for status in run.statuses if status >= 500]
    assert summary["failures"] == {}, json.dumps(summary["examples"], indent=2)


def _concrete(portal: Portal, path: str) -> str:
    if "{id}" not in path:
        return path
    return path.replace("{id}", str(portal.ids(path.split("{id}")[0])[0]))


def test_every_method_a_path_does_not_document_answers_405_with_allow(portal, schema):
    """TRACE included: every 405 names the methods the path takes, and those include the documented ones."""
    answers = {}
    for path, item in schema.raw_schema["paths"].items():
        documented = {method.upper() for method in item}
        for method in sorted(set(METHODS) - documented):
            response = requests.request(
                method, portal.base + _concrete(portal, path), headers=portal.auth("support"), timeout=30
            )
            allow = {name.strip() for name in response.headers.get("Allow", "").split(",") if name.strip()}
            answers[f"{method} {path}"] = (response.status_code, documented <= allow)

    assert answers
    assert {key: value for key, value in answers.items() if value != (405, True)} == {}


def _dialect_routes_outside_the_schema(paths) -> list[str]:
    """The dialects' endpoints the schema does not describe (activation, /jsonrpc, /v1/, the schema and its docs),
    from the URL resolver."""
    from django.urls import URLPattern, get_resolver

    routes = ["/" + str(p.pattern) for p in get_resolver().url_patterns if isinstance(p, URLPattern)]
    return sorted(r for r in routes if dialects.dialect_for(r) and r not in paths and "<" not in r)


OUTSIDE = [
    "/api/docs/",
    "/api/redoc/",
    "/api/schema/",
    "/jsonrpc",
    "/provision/activate",
    "/v1/DeviceProvisioningComponents/",
]
V1_LOGIN = "/v1/Login/"


def _not_allowed(portal: Portal, routes: list[str]) -> dict[str, tuple[int, bool]]:
    answers = {}
    for route in routes:
        for method in ("TRACE", "PUT", "DELETE"):
            response = requests.request(method, portal.base + route, timeout=30)
            answers[f"{method} {route}"] = (response.status_code, bool(response.headers.get("Allow")))
    return answers


def test_the_dialects_endpoints_outside_the_schema_answer_405_with_allow(portal):
    answers = _not_allowed(portal, OUTSIDE)

    assert {key: answer for key, answer in answers.items() if answer != (405, True)} == {}


def test_the_v1_login_answers_405_with_allow(portal):
    answers = _not_allowed(portal, [V1_LOGIN])

    assert {key: answer for key, answer in answers.items() if answer != (405, True)} == {}


def test_those_are_all_the_dialects_endpoints_outside_the_schema(openapi):
    assert _dialect_routes_outside_the_schema(openapi["paths"]) == sorted([*OUTSIDE, V1_LOGIN])


def test_the_fingerprint_sees_inserts_updates_and_deletes():
    """The no-write check above can fail: any change to a domain row changes the fingerprint."""
    from tests.factories import DeviceFactory

    empty = fingerprint()
    device = DeviceFactory()
    inserted = fingerprint()
    device.extra = "changed"
    device.save(update_fields=["extra"])
    updated = fingerprint()
    device.delete()

    assert len({str(print_) for print_ in (empty, inserted, updated)}) == 3
    assert fingerprint()["devices_device"] == empty["devices_device"]


def test_a_malformed_id_in_a_device_log_path_is_not_found(portal):
    """Found by bench/schema_fuzz.py: GET /api/v1/devices/e/log/ answered 500."""
    response = requests.get(f"{portal.base}/api/v1/devices/e/log/", headers=portal.auth("support"), timeout=30)

    assert (response.status_code, response.json()) == (404, {"detail": "Not found."})


def test_a_date_filter_with_an_offset_postgresql_cannot_hold_is_a_400(staff_api):
    """Found by bench/schema_fuzz.py: ``since`` with a valid ISO offset of -21:39 answered 500."""
    response = staff_api.get("/api/v1/activation-attempts/", {"since": "2020-05-01T14:24:03-21:39"})

    assert (response.status_code, list(response.json())) == (400, ["since"])


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="portal/gunicorn_conf.py: gunicorn answers a request line over its limit (limit_request_line, raised to "
    "its maximum, 8190 bytes) with its own HTML 400 before the portal sees it, and without the path no dialect is "
    "known; a reverse proxy in front answers first (README)",
)
def test_a_request_line_over_the_servers_limit_gets_the_dialects_error(portal):
    url = f"{portal.base}/crmapi/rest/v2/conax_web_services/provisioning_requests/show?id={'x' * 9000}"

    response = requests.get(url, timeout=30)

    assert response.headers["Content-Type"] == "application/json"


# --- the schema itself (no server) ----------------------------------------------------------------------------------


def _json_schema(node, components):
    """An OpenAPI 3.0 schema as JSON Schema: references resolved, ``nullable`` a ``null`` type."""
    if isinstance(node, list):
        return [_json_schema(item, components) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _json_schema(components[node["$ref"].rsplit("/", 1)[1]], components)
    converted = {key: _json_schema(value, components) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") and "type" in converted:
        converted["type"] = [converted["type"], "null"]
    return converted


@pytest.fixture
def openapi(client) -> dict:
    return client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def _rest_operations(openapi: dict):
    for path, item in openapi["paths"].items():
        if path.startswith("/api/"):
            for method, operation in item.items():
                yield path, method, operation


@pytest.mark.parametrize("kind", [dialects.BAD_REQUEST, dialects.TOO_LARGE, dialects.UNAVAILABLE])
def test_every_rest_operation_documents_the_edges_answer_as_the_edge_renders_it(openapi, kind):
    answer = dialects.dialect_for("/api/v1/devices/").render(kind)

    for path, method, operation in _rest_operations(openapi):
        documented = operation["responses"][str(answer.status_code)]
        content = documented["content"]["application/json"]
        body = json.loads(answer.content)
        jsonschema.validate(body, _json_schema(content["schema"], openapi["components"]["schemas"]))
        if kind != dialects.BAD_REQUEST:  # the 400 example is DRF's validation body's, not the edge's
            assert content["example"] == body, (method, path)
        for header in documented.get("headers", {}):
            assert answer.has_header(header), (method, path, header)


def test_every_rest_operation_documents_drfs_answers_by_what_it_takes(openapi):
    missing = {}
    for path, method, operation in _rest_operations(openapi):
        expected = {"400", "404", "405", "406", "413", "503"}
        expected |= {"401", "403"} if any(operation.get("security", [])) else set()
        expected |= {"415"} if "requestBody" in operation else set()
        if gap := expected - set(operation["responses"]):
            missing[f"{method} {path}"] = sorted(gap)
        assert operation["responses"]["405"]["headers"]["Allow"]["required"]
        assert operation["responses"]["503"]["headers"]["Retry-After"]["required"]

    assert missing == {}
    login = openapi["paths"]["/api/v1/auth/token/"]["post"]["responses"]
    assert {"401", "403"}.isdisjoint(login) and login["429"]["headers"]["Retry-After"]
    for action in ("enable", "reenable", "disable"):
        assert "409" in openapi["paths"][f"/api/v1/devices/{{id}}/{action}/"]["post"]["responses"]
    assert "409" in openapi["paths"]["/api/v1/devices/"]["post"]["responses"]


def test_every_path_of_the_schema_has_its_errors_documented(openapi):
    """A dialect added to the schema gets its error answers documented too (or this fails)."""
    from portal.kernel.api.openapi import dialect_of

    own = ("/crmapi/", "/healthz", "/readyz")  # each documents its own answers (conax.api.openapi, portal.health)
    undocumented = [path for path in openapi["paths"] if dialect_of(path) is None and not path.startswith(own)]

    assert undocumented == []
