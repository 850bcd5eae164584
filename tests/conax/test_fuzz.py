"""Property tests of the CRM.COM dialect (12.5): any body to login and to every creation method, any query string
to show/list, any path under /crmapi/, with NUL bytes, lone surrogates, huge integers and impossible or extreme
dates mixed in. Invariant: never a 5xx, always the envelope with a documented code and ``application/json``, and an
error answer writes nothing (on PostgreSQL when the suite runs on it).

``FUZZ_EXAMPLES`` (tests.fuzzing) sets the cases per test: ``FUZZ_EXAMPLES=2000 pytest -m fuzz tests/conax``.
"""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conax.api.crmparams import METHODS
from conax.models import Entitlement, Pairing, ProvisioningRequest
from portal.kernel.models import ApiToken
from tests.conax.support import ADD, BASE, CARD, REQUESTS, SUB, Crm, world_load
from tests.factories import PASSWORD
from tests.fuzzing import EXAMPLES

pytestmark = [pytest.mark.django_db, pytest.mark.fuzz]
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
CODES = {
    "OK",
    "INVALID_TOKEN",
    "ACCESS_DENIED",
    "UNKNOWN_PARAMETER",
    "MISSING_PARAMETER",
    "INVALID_PARAMETER",
    "INVALID_IDENTIFIER",
    "NOT_FOUND",
    "SEMI_OPTIONAL_PARAMETERS",
    "CONSTRAINT_VIOLATION",
    "INVALID_FIELDS_SET",
    "INVALID_REQUEST",
    "INVALID_CREDENTIALS",
    "ACCOUNT_LOCKED",
    "METHOD_NOT_ALLOWED",
    "UNKNOWN_METHOD",
}
CREATE = sorted(name for name, method in METHODS.items() if method.http == "POST")
NAMES = sorted({p.name for m in METHODS.values() for p in m.params} | {"token", "colour"})

# Text a client may send, with what PostgreSQL cannot store mixed in: NUL and lone surrogates.
nasty_text = st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfff", "\ud83d", "S6005\x008", "\ufffd", "\u202e"])
texts = (
    st.text(max_size=12) | nasty_text | st.text(alphabet=st.sampled_from("aZ09-:T \x00\ud800\U0001f600"), max_size=10)
)
# Integers past 64 bits and floats past float (1e999 arrives as inf).
numbers = (
    st.integers()
    | st.integers(-(2**70), 2**70)
    | st.sampled_from([2**63, -(2**63) - 1, 10**30, 10**400])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([float("inf"), float("nan")])
)


@st.composite
def dates(draw) -> str:
    """Dates around and beyond the calendar's edges: impossible days, hour 25, offsets up to ±99:99."""
    year = draw(st.sampled_from([0, 1, 1999, 2000, 2014, 2030, 2036, 2099, 2100, 9999]) | st.integers(0, 9999))
    parts = [
        draw(st.integers(0, 13)),
        draw(st.integers(0, 32)),
        draw(st.integers(0, 25)),
        draw(st.integers(0, 61)),
        draw(st.integers(0, 61)),
    ]
    offset = draw(
        st.sampled_from(["", "Z", "+14:00", "-14:00", "+14:01", "+99:00", "-12:30", "+05:75"])
        | st.builds(
            lambda s, h, m: f"{s}{h:02d}:{m:02d}", st.sampled_from("+-"), st.integers(0, 99), st.integers(0, 99)
        )
    )
    month, day, hour, minute, second = parts
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{offset}"


extremes = st.sampled_from(
    [
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
        "2014-02-30T09:00:00",
        "2014-11-30T25:00:00",
        "2014-11-30T09:00:00+99:00",
        "2030-01-01T00:00:00",
    ]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-5, 3000)
    | numbers
    | texts
    | dates()
    | extremes
    | st.sampled_from(["S60058", "P1", "0000-0000-0008", "1234", "EXPRESS", "THMOD001-10002", "sc20000010"])
)
keys = st.sampled_from(
    [
        "id",
        "number",
        "code",
        "serial_number",
        "alternative_code",
        "smartcard_ca_id",
        "stb_ca_id",
        "x",
        "id\x00",
        "\ud800",
    ]
)
identifiers = st.dictionaries(keys, scalars, max_size=2)
# What PostgreSQL and the calendar cannot hold comes up often, not once in a thousand draws.
hostile = nasty_text | dates() | extremes | numbers
values = hostile | scalars | identifiers | st.lists(identifiers | scalars | hostile, max_size=3)
bodies = st.dictionaries(st.sampled_from(NAMES) | texts, values, max_size=6)


# A body each method accepts (on the seed's entities); the fuzzer changes up to three of its fields, at any depth,
# so that bad values reach every parameter parser and the services behind them, not only the first check.
BASES = {
    "add_subscriptions": ADD,
    "cancel_subscriptions": ADD,
    "create_pairing": {
        "smartcard_set": [{"smartcard_ca_id": "sc20000010"}],
        "stb_set": [{"stb_ca_id": "THMOD001-10002"}],
    },
    "add_to_existing_pairing": {**CARD, "smartcard_set": [{"serial_number": "sc20000010"}]},
    "reset_pin_to_default_value": {**SUB, **CARD},
    "reset_pin_to_given_value": {**SUB, **CARD, "pin": "1234"},
    "get_active_subscriptions": CARD,
    "get_pairing_status_for_card": CARD,
    "get_pairing_status_for_pairing_module": {"stb_identifier": {"serial_number": "BOX-7"}},
    "display_fingerprint": {**CARD, "display_date_time": "2030-01-01T00:00:00", "height": 10},
    "send_mail_message_to_client": {**CARD, "message": "hello"},
    "send_bark_message_to_client": {**CARD, "message": "bark", "duration": 20},
    "send_repeating_bark_message_to_client": {**CARD, "message": "again", "interval": 10, "repetitions": 2},
}
assert set(BASES) == set(CREATE)
READS = {"show": {"number": "1"}, "list": {"type": "ADD_SUBSCRIPTIONS", "number_of_results": "5"}}
LOGIN = {"username": "staff", "password": PASSWORD, "organisation": "portal", "unit": "MG"}
OPTIONS = ["start_date", "process_immediately", "priority", "colour"]


def _field(target: dict):
    return st.sampled_from(sorted(target)) | st.sampled_from(sorted(target)) | keys if target else keys


def mutate(body: dict, data, value_strategy, names: list[str], hostile=None) -> dict:
    """Change up to three fields of ``body``: drop one, or set a top-level, nested or list-element value; half of
    the values come from ``hostile`` (what the database or the calendar cannot hold)."""
    if hostile is not None:
        value_strategy = st.booleans().flatmap(lambda nasty: hostile if nasty else value_strategy)
    body = copy.deepcopy(body)
    for _ in range(data.draw(st.integers(0, 3), label="changes")):
        known = st.sampled_from(sorted({*body, *names}))
        name = data.draw(texts if data.draw(st.integers(0, 6)) == 0 else known, label="name")  # mostly known names
        target = body.get(name)
        action = data.draw(st.sampled_from(["set", "drop", "deep"]), label="action")
        if action == "drop":
            body.pop(name, None)
        elif action == "deep" and isinstance(target, list) and target and isinstance(target[0], dict):
            target[0][data.draw(_field(target[0]))] = data.draw(value_strategy)
        elif action == "deep" and isinstance(target, dict):
            target[data.draw(_field(target))] = data.draw(value_strategy)
        else:
            body[name] = data.draw(value_strategy, label="value")
    return body


@pytest.fixture
def crm(client, staff_user) -> Crm:
    world_load()
    return Crm.login(client)


def written() -> tuple[int, int, int, int]:
    return (
        ProvisioningRequest.objects.count(),
        Entitlement.objects.count(),
        Pairing.objects.count(),
        ApiToken.objects.count(),
    )


def envelope(response) -> dict:
    """The answer of the dialect: never a 5xx, always JSON, always the envelope with a documented code."""
    assert response.status_code in (200, 404, 405), response.status_code
    assert response["Content-Type"] == "application/json"
    answer = json.loads(response.content)
    assert set(answer) == {"status", "data"} and answer["status"]["code"] in CODES, answer
    return answer


@FUZZ
@given(method=st.sampled_from(CREATE), data=st.data())
def test_creation_answers_every_body_in_the_envelope(crm, method, data):
    before = written()
    raw = data.draw(st.binary(max_size=60), label="raw") if data.draw(st.integers(0, 9)) == 0 else None
    names = [p.name for p in METHODS[method].params] + OPTIONS
    body = {"token": crm.token, **mutate(BASES[method], data, values, names, hostile)}
    payload = raw if raw is not None else json.dumps(body)  # lone surrogates travel escaped, as "\ud800"

    answer = envelope(crm.client.generic("POST", REQUESTS + method, payload, content_type="application/json"))
    event(answer["status"]["code"] + " " + str(answer["status"]["message"])[:30])

    if answer["status"]["code"] == "OK":
        assert written() == (before[0] + 1, *before[1:])
    else:
        assert answer["data"] is None and written() == before


query_values = (
    nasty_text
    | texts
    | dates()
    | extremes
    | st.sampled_from(["1", "ADD_SUBSCRIPTIONS", "PENDING", "id,type", "0", "-1", str(2**63), "9" * 30, "%00"])
)


@FUZZ
@given(method=st.sampled_from(["show", "list"]), data=st.data())
def test_reads_answer_every_query_in_the_envelope(crm, method, data):
    crm.post("add_subscriptions", ADD)
    before = written()
    names = [p.name for p in METHODS[method].params]
    query = mutate(READS[method], data, query_values, names, nasty_text | dates() | extremes)
    # A query string is bytes: it carries no lone surrogate (decoding replaces it); NUL arrives as %00.
    query = {
        str(k).encode("utf-8", "replace").decode(): str(v).encode("utf-8", "replace").decode() for k, v in query.items()
    }

    answer = envelope(crm.client.get(REQUESTS + method, {"token": crm.token, **query}))
    event(answer["status"]["code"] + " " + str(answer["status"]["message"])[:30])

    assert written() == before


@FUZZ
@given(data=st.data())
def test_login_answers_every_body_in_the_envelope(client, world, data):
    before = ApiToken.objects.count()
    body = mutate(LOGIN, data, texts | st.sampled_from(["staff", PASSWORD, "portal", "MG"]), [], nasty_text | numbers)

    answer = envelope(
        client.generic("POST", BASE + "authentication/token", json.dumps(body), content_type="application/json")
    )

    assert ApiToken.objects.count() == before + (answer["status"]["code"] == "OK")


@FUZZ
@given(
    path=st.text(alphabet=st.sampled_from("abz/_.%0-\x00"), max_size=30),
    http=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "HEAD"]),
)
def test_any_path_under_crmapi_answers_the_envelope(client, db, path, http):
    response = client.generic(http, "/crmapi/" + path, "{}", content_type="application/json")

    assert response.status_code < 500 and response["Content-Type"] == "application/json"
    if http != "HEAD":
        envelope(response)
