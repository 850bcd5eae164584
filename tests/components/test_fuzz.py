"""Property test for /v1/DeviceProvisioningComponents/: any body gets HTTP 200 with either a success shape or an
error code of the seed, never a 500, and an answer that is an error never leaves a write behind."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.components.support import V1, catalog_load, component, snapshot
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CODES = {
    "INVALID_REQUEST_PRAM", "INVALID_ACTION_PRAM", "INVALID_INPUT_PRAM", "NO_DATA", "NO_UPDATED_PRAMS",
    "INVALID_INCOMPATABLE_IDENTIFICATION_PARAMS_PRAM", "PROVISIONING_COMPONENT_ID", "MISSING_PROVISIONING_ID_PRAM",
    "MISSING_COMPONENT_TYPE_PRAM", "MISSING_COMPONENT_ID_PRAM", "MISSING_ACTIVE_STATUS_PRAM",
    "INVALID_PROVISIONING_COMPONENT_ID_PRAM", "INVALID_PROVISIONING_ID_PRAM", "INVALID_COMPONENT_TYPE_PRAM",
    "INVALID_COMPONENT_ID_PRAM", "INVALID_ACTIVE_STATUS_PRAM", "INVALID_LIMIT_PRAM", "INVALID_COMPONENT_SENSOR_ID_PRAM",
    "INVALID_COMPONENT_PARAMETER_ID_PRAM", "INVALID_COMPONENT_GROUP_PARAMETER_ID_PRAM",
}  # fmt: skip

scalars = (st.none() | st.booleans() | st.integers(-3, 12) | st.integers() | st.floats(allow_nan=False)
           | st.sampled_from(["Sensor", "parameter", "GROUP PARAMETER", "", "1"]) | st.text(max_size=16))  # fmt: skip
values = scalars | st.lists(scalars, max_size=6) | st.lists(st.lists(st.integers(0, 5), max_size=2), max_size=2)
keys = st.sampled_from(["provisioning_component_id", "provisioning_id", "component_type", "component_id",
                        "active_status", "limit", "id", ""])  # fmt: skip
bodies = st.builds(
    lambda action, rest: {**({"action": action} if action is not None else {}), **rest},
    st.sampled_from(["select", "insert", "update", "Select", "", None, 1]),
    st.dictionaries(keys, values, max_size=5),
)


@pytest.fixture
def world(client, staff_user):
    catalog_load()
    device = DeviceFactory(pk=3)
    for kind, pk in ((0, 1), (0, 2), (1, 1), (2, 1)):
        component(device, kind, pk)
    return V1.for_user(client, staff_user)


@FUZZ
@given(body=bodies.map(json.dumps).map(str.encode) | st.binary(max_size=100))
def test_any_body_gets_a_documented_answer_and_errors_write_nothing(world, body):
    before = snapshot()

    response = world.post(body)

    assert response.status_code == 200
    answer = response.json()
    if "responses" in answer:
        assert snapshot() == before
    elif answer.get("error") == "NO_ERROR":
        assert set(answer) >= {"active_status", "error"}
    else:
        assert answer["error"] in CODES, answer
        assert set(answer) <= {"error", "error_detail"}
        assert snapshot() == before
