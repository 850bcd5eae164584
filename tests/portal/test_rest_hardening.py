"""Staff REST API, hardened (issue 12 item 5): pagination bounds on every list endpoint, and NUL characters, lone
surrogates and huge numbers in query strings and bodies answered 400 in DRF's error body, with nothing written.

The endpoints are found by walking the URL resolver (every GET route of the ``api-v1`` namespace whose answer is a
page), so a list added later is covered without editing this file. On PostgreSQL, where these were 500s.
"""

from __future__ import annotations

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from rest_framework.generics import GenericAPIView

from components.models import DeviceProvisioning
from devices import vendor_tokens
from devices.models import ActivationAttempt
from portal.kernel.api.pagination import MAX_LIMIT
from provisioning import services as provisioning_services
from tests.components.support import catalog_load, component
from tests.factories import DeviceFactory
from tests.fuzzing import EXAMPLES, IMPOSSIBLE_DATES

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
HUGE = "9223372036854775808"  # 2**63: one past bigint
ROWS = 3  # of every list, so that each one really slices (an empty list never reaches the database's LIMIT)
WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


def _routes(patterns, prefix: str = "", namespace: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}:{pattern.namespace}" if pattern.namespace else namespace
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            yield namespace, prefix + str(pattern.pattern), pattern


def _path(route: str, pk: object) -> str:
    """A resolver route (path converters or router regexes) → a URL with ``pk`` for its argument."""
    route = re.sub(r"\(\?P<\w+>[^)]*\)", str(pk), route)
    route = re.sub(r"<(?:\w+:)?\w+>", str(pk), route)
    return "/" + route.replace("^", "").replace("$", "").replace("\\", "")


def _first_pk(view, device_pk: int) -> int:
    """An existing row for a detail route: the first of the view's queryset; the device for plain APIViews."""
    cls = getattr(view, "cls", None) or view.view_class
    if not issubclass(cls, GenericAPIView):
        return device_pk
    return cls().get_queryset().order_by("pk").values_list("pk", flat=True).first()


def api_routes() -> list[tuple[str, object]]:
    """(url route, view) of every route of the staff REST API."""
    return [(route, p.callback) for ns, route, p in _routes(get_resolver().url_patterns) if ns.endswith("api-v1")]


def _url(route: str, view, device_pk: int) -> str:
    return _path(route, _first_pk(view, device_pk)) if "<" in route else _path(route, "")


def _methods(view) -> set[str]:
    actions = getattr(view, "actions", None)
    if actions is not None:
        return {method.upper() for method in actions}
    return {m.upper() for m in view.view_class.http_method_names if hasattr(view.view_class, m)} - {"OPTIONS", "HEAD"}


def conax_rows() -> None:
    """One of each conditional-access record the staff API lists (a card with its subscription, box, pairing and
    entitlement)."""
    from tests.conax.factories import (
        EntitlementFactory,
        PairingFactory,
        ServiceFactory,
        SetTopBoxFactory,
        SmartcardFactory,
        SubscriptionFactory,
        UnitFactory,
    )

    UnitFactory()
    service = ServiceFactory()
    card = SmartcardFactory(subscription=SubscriptionFactory(services=[service]))
    SetTopBoxFactory(subscription=card.subscription)
    PairingFactory(subscription=card.subscription)
    EntitlementFactory(smartcard=card, service=service)


def webhook_rows() -> None:
    """A webhook endpoint (through its service: the secret is encrypted) and a delivery of it."""
    from django.utils import timezone

    from webhooks import services as webhook_services
    from webhooks.models import Delivery

    n = Delivery.objects.count()
    endpoint = webhook_services.endpoint_save(
        name=f"hardening-{n}", url="http://127.0.0.1:9/hook", event_types=["device.disabled"], secret="s" * 24
    )
    Delivery.objects.create(
        event_type="device.disabled",
        object_key=f"device:{n}",
        payload={},
        endpoint=endpoint,
        next_attempt_at=timezone.now(),
    )


def campaign_rows() -> None:
    """A draft campaign (through its service), so that its detail routes and writes have an object."""
    from campaigns import services as campaign_services
    from campaigns.models import Campaign

    definition = campaign_services.Definition(
        name=f"hardening-{Campaign.objects.count()}",
        target_kind="devices",
        target_filters={},
        action_kind="command",
        action="reprovision",
        params={"provision_type": "HARDWARE"},
        waves=["10%", "rest"],
        rate_per_second=50.0,
    )
    campaign_services.campaign_create(definition=definition)


@pytest.fixture
def world(staff_user) -> int:
    """ROWS rows in every listable table, all hanging off devices whose first id is returned (used for ``{pk}``)."""
    catalog_load()
    devices = [DeviceFactory() for _ in range(ROWS)]
    for device in devices:
        component(device, 0, 1)
        ActivationAttempt.objects.create(device=devices[0], serial_number=device.serial_number, outcome="activated")
        box = provisioning_services.box_register(device=device, host="192.0.2.10")
        provisioning_services.command_create(box=box, kind="refresh")
        vendor_tokens.vendor_token_create(vendor=device.model.vendor, name="hardening")
        conax_rows()
        webhook_rows()
        campaign_rows()
    assert DeviceProvisioning.objects.count() == ROWS
    return devices[0].pk


@pytest.fixture
def list_urls(staff_api, world) -> list[str]:
    urls = []
    for route, view in api_routes():
        if "GET" not in _methods(view):
            continue
        url = _url(route, view, world)
        response = staff_api.get(url)
        if not response["Content-Type"].startswith("application/json"):
            continue  # a file (the campaigns' CSV export), not a list
        body = response.json()
        if isinstance(body, dict) and {"count", "next", "previous", "results"} <= set(body):
            urls.append(url)
    return urls


def test_the_resolver_walk_finds_every_list_endpoint(list_urls, world):
    assert {
        "/api/v1/vendors/",
        "/api/v1/device-models/",
        "/api/v1/devices/",
        "/api/v1/activation-attempts/",
        "/api/v1/commands/",
        "/api/v1/sensors/",
        "/api/v1/parameters/",
        "/api/v1/parameter-groups/",
        "/api/v1/provisioning-records/",
        "/api/v1/components/",
        f"/api/v1/devices/{world}/log/",
        "/api/v1/vendor-tokens/",
        "/api/v1/conax/units/",
        "/api/v1/conax/smartcards/",
        "/api/v1/conax/entitlements/",
        "/api/v1/webhooks/endpoints/",
        "/api/v1/webhooks/deliveries/",
        "/api/v1/campaigns/",
    } <= set(list_urls)


def _writes(queries) -> list[str]:
    return [q["sql"] for q in queries if WRITE.match(q["sql"])]


def _get(client, url: str, query: str):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"{url}?{query}")
    return response, _writes(queries.captured_queries)


# --- pagination ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "limit", "offset"),
    [
        pytest.param(f"limit={HUGE}", MAX_LIMIT, 0, id="limit-2**63"),
        pytest.param(f"limit={10**30}", MAX_LIMIT, 0, id="limit-10**30"),
        pytest.param(f"limit={'9' * 5000}", 50, 0, id="limit-5000-digits"),  # not an int Python reads: the default
        pytest.param(f"limit={HUGE}&offset=1", MAX_LIMIT, 1, id="limit-and-offset"),
        pytest.param(f"page_size={HUGE}", 50, 0, id="page_size"),  # not a parameter of this API
        pytest.param(f"page_size={HUGE}&limit=2", 2, 0, id="page_size-and-limit"),
    ],
)
def test_a_huge_limit_is_clamped_on_every_list(staff_api, list_urls, query, limit, offset):
    for url in list_urls:
        response, writes = _get(staff_api, url, query)

        assert response.status_code == 200, (url, response.content)
        body = response.json()
        assert len(body["results"]) == max(0, min(body["count"] - offset, limit)), url  # a list may be empty
        assert writes == []


@pytest.mark.parametrize("offset", [HUGE, str(10**30), "9" * 5000, "count", "count+1"])
def test_an_offset_past_the_end_is_an_empty_page_leading_back(staff_api, list_urls, offset):
    for url in list_urls:
        count = staff_api.get(url).json()["count"]
        value = {"count": str(count), "count+1": str(count + 1)}.get(offset, offset)
        response, _ = _get(staff_api, url, f"limit=2&offset={value}")

        assert response.status_code == 200, (url, response.content)
        body = response.json()
        if len(offset) > 4300:  # not an integer Python reads: DRF's rule, the first page
            assert (len(body["results"]), body["previous"]) == (min(2, body["count"]), None), url
            continue
        assert body["results"] == [] and body["next"] is None, url
        previous = re.search(r"offset=(\d+)", body["previous"] or "")
        assert previous is None or int(previous.group(1)) <= body["count"], (url, body["previous"])


def test_a_page_lists_at_most_the_maximum(staff_api, world):
    ActivationAttempt.objects.bulk_create(
        [ActivationAttempt(serial_number=f"X{n}", outcome="activated") for n in range(MAX_LIMIT + 1 - ROWS)]
    )

    body = staff_api.get(f"/api/v1/activation-attempts/?limit={HUGE}").json()

    assert (body["count"], len(body["results"])) == (MAX_LIMIT + 1, MAX_LIMIT)
    assert f"limit={MAX_LIMIT}&offset={MAX_LIMIT}" in body["next"]


# --- query strings -------------------------------------------------------------------------------------------------

NUL_QUERIES = [
    pytest.param("q=%00", "q", id="q"),
    pytest.param("q=abc%00def", "q", id="q-inside"),
    pytest.param("serial_number=%00", "serial_number", id="serial_number"),
    pytest.param("provisioning=%00", "provisioning", id="provisioning"),
    pytest.param("vendor=%00", "vendor", id="vendor"),
    pytest.param("limit=%00", "limit", id="limit"),
    pytest.param("not_a_filter=%00", "not_a_filter", id="unknown-parameter"),
]


@pytest.mark.parametrize(("query", "name"), NUL_QUERIES)
def test_a_nul_in_any_query_parameter_is_400_on_every_list(staff_api, list_urls, query, name):
    for url in list_urls:
        response, writes = _get(staff_api, url, query)

        assert (response.status_code, response.json()) == (400, {name: ["Null characters are not allowed."]}), url
        assert writes == []


def test_a_nul_in_a_query_parameter_name_is_400(staff_api, list_urls):
    for url in list_urls:
        response, _ = _get(staff_api, url, "q%00=1")

        assert response.status_code == 400 and "non_field_errors" in response.json(), url


@pytest.mark.parametrize("url", ["/api/v1/sensors/1/", "/api/v1/components/{pk}/", "/api/v1/devices/{pk}/"])
def test_a_detail_lookup_with_a_nul_in_its_query_is_400(staff_api, world, url):
    response = staff_api.get(url.format(pk=world) + "?q=%00")

    assert (response.status_code, response.json()) == (400, {"q": ["Null characters are not allowed."]})


def test_a_bad_filter_on_the_components_lists_is_400_not_ignored(staff_api, world):
    # The components lists filtered in their selector, which dropped an invalid filter and listed everything.
    response = staff_api.get("/api/v1/components/?provisioning_id=abc")
    records = staff_api.get("/api/v1/provisioning-records/?device_id=abc")

    assert (response.status_code, response.json()) == (400, {"provisioning_id": ["Enter a number."]})
    assert (records.status_code, records.json()) == (400, {"device_id": ["Enter a number."]})


# --- bodies --------------------------------------------------------------------------------------------------------


def _takes_a_body() -> set[tuple[str, str]]:
    """(method, path template) of every operation whose OpenAPI description has a request body."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "requestBody" in operation
    }


def write_routes(device_pk: int) -> list[tuple[str, str]]:
    """(method, URL) of every route that reads a body (the schema says which), but the login (tested below)."""
    with_body, out = _takes_a_body(), []
    for route, view in api_routes():
        template = re.sub(r"\{\w+\}", "{id}", _path(route, "{x}"))
        for method in sorted(_methods(view) & {"POST", "PUT", "PATCH"}):
            if (method, template) in with_body and route != "api/v1/auth/token/":
                out.append((method, _url(route, view, device_pk)))
    return out


def test_the_write_routes_are_found(world):
    routes = write_routes(world)

    assert len(routes) >= 20
    assert ("POST", "/api/v1/components/set-status/") in routes and ("PUT", "/api/v1/sensors/1/") in routes


BAD_JSON = [
    pytest.param(b'{"name": "a\\u0000b"}', "name", "Null characters are not allowed.", id="nul"),
    pytest.param(b'{"name": "\\ud800"}', "name", "Surrogate characters are not allowed: U+D800.", id="surrogate"),
    pytest.param(
        b'{"serials": ["ok", {"x": ["\\u0000"]}]}', "serials", "Null characters are not allowed.", id="nul-nested"
    ),
    pytest.param(
        b'{"ids": [1, ' + str(2**63).encode() + b"]}",
        "ids",
        "Ensure this value is between -9223372036854775808 and 9223372036854775807.",
        id="huge-int",
    ),
    pytest.param(b'{"window": 1e400}', "window", "A valid number is required.", id="float-overflow"),
    pytest.param(
        b'{"a\\u0000": 1}', "non_field_errors", "Field names: Null characters are not allowed.", id="nul-in-key"
    ),
    pytest.param(
        b'["\\udfff"]', "non_field_errors", "Surrogate characters are not allowed: U+DFFF.", id="top-level-array"
    ),
]


@pytest.mark.parametrize(("body", "field", "message"), BAD_JSON)
def test_unstorable_json_bodies_are_400_on_every_write_route_and_write_nothing(staff_api, world, body, field, message):
    for method, url in write_routes(world):
        with CaptureQueriesContext(connection) as queries:
            response = staff_api.generic(method, url, body, content_type="application/json")

        assert (response.status_code, response.json()) == (400, {field: [message]}), (method, url)
        assert _writes(queries.captured_queries) == [], (method, url)


def test_deeply_nested_json_is_a_parse_error_not_a_500(staff_api, world):
    response = staff_api.generic("POST", "/api/v1/vendors/", b"[" * 100_000, content_type="application/json")

    assert (response.status_code, response.json()) == (400, {"detail": "JSON parse error - nested too deeply"})


@pytest.mark.parametrize("body", ["name=a%00b", "name%00=x", "name=ok&name=%00"])
def test_unstorable_form_bodies_are_400_on_every_write_route(staff_api, world, body):
    for method, url in write_routes(world):
        with CaptureQueriesContext(connection) as queries:
            response = staff_api.generic(method, url, body, content_type="application/x-www-form-urlencoded")

        assert response.status_code == 400, (method, url, response.content)
        assert _writes(queries.captured_queries) == [], (method, url)


def test_the_token_login_refuses_a_nul_username_without_a_query(api_client):
    response = api_client.post("/api/v1/auth/token/", {"username": "a\x00", "password": "x"}, format="json")

    assert (response.status_code, response.json()) == (400, {"username": ["Null characters are not allowed."]})


# --- property test -------------------------------------------------------------------------------------------------

nasty = st.sampled_from(
    ["\x00", "\ud800", "\udfff", "a\x00b", HUGE, "-" + HUGE, "9" * 5000, "1e400", "", "-1", "0", *IMPOSSIBLE_DATES]
)
texts = st.text(max_size=8) | nasty
param_names = (
    st.sampled_from(
        [
            "limit",
            "offset",
            "page_size",
            "q",
            "serial_number",
            "provisioning",
            "vendor_id",
            "device_id",
            "state",
            "is_active",
            "component_type",
            "since",
            "owner_id",
        ]
    )
    | texts
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=2**62, max_value=2**70) | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
json_bodies = st.dictionaries(
    st.sampled_from(
        ["name", "id", "ids", "serials", "window", "device_id", "model_id", "active_status", "component_ids"]
    )
    | texts,
    json_values,
    max_size=4,
)


def _query(params: list[tuple[str, str]]) -> str:
    from urllib.parse import quote

    return "&".join(
        f"{quote(k.encode('utf-8', 'surrogatepass'))}={quote(v.encode('utf-8', 'surrogatepass'))}" for k, v in params
    )


@pytest.mark.fuzz
@pytest.mark.timeout(120 + EXAMPLES // 2)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_query_or_body_gets_no_5xx_and_errors_write_nothing(staff_api, world, list_urls, data):
    if data.draw(st.booleans(), label="list"):
        url = data.draw(st.sampled_from(list_urls), label="url")
        params = data.draw(st.lists(st.tuples(param_names, texts), max_size=4), label="query")
        with CaptureQueriesContext(connection) as queries:
            response = staff_api.get(f"{url}?{_query(params)}")
    else:
        method, url = data.draw(st.sampled_from(write_routes(world)), label="route")
        body = json.dumps(data.draw(json_bodies, label="body")).encode()  # NaN and Infinity as JS literals too
        with CaptureQueriesContext(connection) as queries:
            response = staff_api.generic(method, url, body, content_type="application/json")

    event(f"HTTP {response.status_code}")
    assert response.status_code < 500, response.content
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    if response.status_code >= 400:
        # The token's idle clock may move (at most once a minute); nothing else may be written.
        assert [sql for sql in _writes(queries.captured_queries) if "portal_apitoken" not in sql] == []
