"""Property tests of the /v1/ dialect on PostgreSQL: any body, to either endpoint, gets HTTP 200 with a success
shape or an error code of the dialect, never a 500, and an error answer leaves no write behind. Inputs include NUL
characters, lone surrogates and huge integers. ``FUZZ_EXAMPLES`` cases each (tests.fuzzing)."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from portal.kernel.models import ApiToken
from tests.components.support import V1, catalog_load, component, snapshot
from tests.factories import PASSWORD, DeviceFactory
from tests.fuzzing import EXAMPLES, IMPOSSIBLE_DATES

pytestmark = [pytest.mark.django_db, pytest.mark.fuzz, pytest.mark.timeout(120 + EXAMPLES // 2)]
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CODES = {
    "INVALID_REQUEST_PRAM",
    "INVALID_ACTION_PRAM",
    "INVALID_INPUT_PRAM",
    "NO_DATA",
    "NO_UPDATED_PRAMS",
    "INVALID_INCOMPATABLE_IDENTIFICATION_PARAMS_PRAM",
    "PROVISIONING_COMPONENT_ID",
    "MISSING_PROVISIONING_ID_PRAM",
    "MISSING_COMPONENT_TYPE_PRAM",
    "MISSING_COMPONENT_ID_PRAM",
    "MISSING_ACTIVE_STATUS_PRAM",
    "INVALID_PROVISIONING_COMPONENT_ID_PRAM",
    "INVALID_PROVISIONING_ID_PRAM",
    "INVALID_COMPONENT_TYPE_PRAM",
    "INVALID_COMPONENT_ID_PRAM",
    "INVALID_ACTIVE_STATUS_PRAM",
    "INVALID_LIMIT_PRAM",
    "INVALID_COMPONENT_SENSOR_ID_PRAM",
    "INVALID_COMPONENT_PARAMETER_ID_PRAM",
    "INVALID_COMPONENT_GROUP_PARAMETER_ID_PRAM",
}
LOGIN_CODES = {
    "ACCOUNT_DOES_NOT_EXIST",
    "ACCOUNT_PASSWORD_INCORRECT",
    "MISSING_CONTENT_TYPE_HEADER",
    "INVALID_CONTENT_TYPE_HEADER",
}
LOGIN_FIELDS = {"token", "userid", "userrole", "status", "error", "username", "CONTENT_TYPE"}

# NUL, lone surrogates (json.dumps writes them as \u escapes, as a hostile client would) and a surrogate pair.
nasty_chars = st.sampled_from(["\x00", "\ud800", "\udfff", "\udbff", "\udc00"])
nasty = st.sampled_from(["\x00", "\ud800", "\udbff\udc00", "a\x00", "\x00Sensor", "Sensor\udfff", *IMPOSSIBLE_DATES])
# Mostly plain text, so that most bodies get past the sanitising layer into the parameter checks and the database.
plain = st.text(max_size=16)
texts = st.one_of(plain, plain, plain, st.text(alphabet=st.characters() | nasty_chars, max_size=16), nasty)
huge = (
    st.integers(min_value=2**31 - 2, max_value=2**70)
    | st.integers(min_value=-(2**70), max_value=-1)
    | st.sampled_from([2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**300, 10**4000])
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 12)
    | st.integers()
    | huge
    | st.floats(allow_nan=False)
    | st.sampled_from(["Sensor", "parameter", "GROUP PARAMETER", "", "1"])
    | texts
)
values = scalars | st.lists(scalars, max_size=6) | st.lists(st.lists(st.integers(0, 5) | huge, max_size=2), max_size=2)
names = st.sampled_from(
    [
        "provisioning_component_id",
        "provisioning_id",
        "component_type",
        "component_id",
        "active_status",
        "limit",
        "id",
        "",
    ]
)
keys = st.one_of(names, names, names, texts)
bodies = st.builds(
    lambda action, rest: {**({"action": action} if action is not None else {}), **rest},
    st.one_of(
        st.sampled_from(["select", "insert", "update"]),
        st.sampled_from(["select", "insert", "update", "Select", "", None, 1, "select\x00", "\ud800"]),
    ),
    st.dictionaries(keys, values, max_size=4),
)
raw_bodies = st.sampled_from([b'{"action": "select", "limit": ' + b"9" * 5000 + b"}", b'{"action": "select"' * 50])


@pytest.fixture
def world(client, staff_user):
    catalog_load()
    device = DeviceFactory(pk=3)
    for kind, pk in ((0, 1), (0, 2), (1, 1), (2, 1)):
        component(device, kind, pk)
    return V1.for_user(client, staff_user)


json_bodies = bodies.map(json.dumps).map(str.encode)


@FUZZ
@given(body=st.one_of(json_bodies, json_bodies, json_bodies, st.binary(max_size=100), raw_bodies))
def test_any_body_gets_a_documented_answer_and_errors_write_nothing(world, body):
    before = snapshot()

    response = world.post(body)

    assert response.status_code == 200
    answer = response.json()
    event(f"error {answer.get('error', 'none (select)')}")
    if "responses" in answer:
        assert snapshot() == before
    elif answer.get("error") == "NO_ERROR":
        assert set(answer) >= {"active_status", "error"}
    else:
        assert answer["error"] in CODES, answer
        assert set(answer) <= {"error", "error_detail"}
        assert snapshot() == before


# --- /v1/Login/ ----------------------------------------------------------------------------------------------------

known = st.sampled_from(["staff", PASSWORD, "carol", " staff", "x" * 300])
form_values = st.one_of(known, known, texts, huge.map(str))
form_fields = st.dictionaries(
    st.sampled_from(["username", "password", "username", "password", "token", "other"]), form_values, max_size=3
)
form = "application/x-www-form-urlencoded"
content_types = st.sampled_from(
    [
        form,
        form,
        form,
        f"{form}; charset=UTF-8",
        "multipart/form-data; boundary=x",
        "application/json",
        "",
        "text/plain\x00",
    ]
)


def _encode(fields: dict[str, str]) -> str:
    return "&".join(f"{quote(k)}={quote(v.encode('utf-8', 'surrogatepass'))}" for k, v in fields.items())


@FUZZ
@given(fields=form_fields, content_type=content_types)
def test_any_login_form_gets_a_documented_answer_and_errors_write_nothing(client, staff_user, fields, content_type):
    tokens_before = list(ApiToken.objects.order_by("pk").values_list("pk", "revoked_at"))

    response = client.generic("POST", "/v1/Login/", _encode(fields), content_type=content_type)

    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    answer = response.json()
    event(f"{answer.get('status', '-')} {answer.get('error')}")
    if answer.get("status") in ("SUCCESS", "LOGGED_OUT"):
        return
    tokens_after = list(ApiToken.objects.order_by("pk").values_list("pk", "revoked_at"))
    assert tokens_after == tokens_before
    if answer.get("error") == "ACCOUNT_LOCKED" or answer == {"error": "INVALID_TOKEN1"}:
        return
    assert set(answer) == LOGIN_FIELDS and answer["error"] in LOGIN_CODES, answer
    assert (answer["token"], answer["userid"], answer["status"]) == ("ERROR", "", "FAILURE")
