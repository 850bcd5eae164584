"""Request parsing of the /v1/ components API: every parameter rule and error code of seed 004."""

from __future__ import annotations

import json

import pytest

from components.api.params import V1Error, parse
from components.choices import ComponentType


def error(body) -> dict:
    with pytest.raises(V1Error) as info:
        parse(body if isinstance(body, bytes) else json.dumps(body).encode())
    return info.value.body()


def test_the_seeds_select_example():
    request = parse(
        json.dumps(
            {"action": "select", "provisioning_id": 11, "component_type": "Sensor", "component_id": [1, 2, 4, 6]}
        ).encode()
    )

    assert request.action == "select"
    assert request.params == {
        "provisioning_id": 11,
        "component_type": ComponentType.SENSOR,
        "component_id": [1, 2, 4, 6],
        "limit": 1000,
    }


def test_the_seeds_insert_and_update_examples():
    insert = parse(
        json.dumps(
            {"action": "insert", "provisioning_id": 11, "component_type": "Parameter", "component_id": [2, 3, 4]}
        ).encode()
    )
    update = parse(
        json.dumps(
            {
                "action": "update",
                "provisioning_id": 11,
                "component_type": 0,
                "component_id": [1, 2, 4, 5],
                "active_status": 1,
            }
        ).encode()
    )

    assert insert.params["active_status"] == 0 and insert.params["component_type"] == ComponentType.PARAMETER
    assert update.params["component_type"] == ComponentType.SENSOR and update.params["active_status"] == 1


@pytest.mark.parametrize("name", ["sensor", "SENSOR", "Group Parameter", "group parameter", 2, 0])
def test_component_type_by_number_or_name_in_any_case(name):
    assert (
        parse(json.dumps({"action": "select", "component_type": name}).encode()).params["component_type"]
        in ComponentType
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b"{not json", {"error": "INVALID_REQUEST_PRAM"}, id="not-json"),
        pytest.param(b"[1]", {"error": "INVALID_REQUEST_PRAM"}, id="not-an-object"),
        pytest.param(b"[" * 5000, {"error": "INVALID_REQUEST_PRAM"}, id="deep-nesting"),
        pytest.param({"provisioning_id": 1}, {"error": "INVALID_REQUEST_PRAM"}, id="no-action"),
        pytest.param({"action": "delete"}, {"error": "INVALID_ACTION_PRAM"}, id="unknown-action"),
        pytest.param({"action": ["select"]}, {"error": "INVALID_ACTION_PRAM"}, id="action-array"),
        pytest.param(
            {"action": "select", "colour": 1, "size": 2},
            {"error": "INVALID_INPUT_PRAM", "error_detail": "INVALID_PRAM_colour"},
            id="unknown-key",
        ),
        pytest.param(
            {"action": "insert", "limit": 5},
            {"error": "INVALID_INPUT_PRAM", "error_detail": "INVALID_PRAM_limit"},
            id="select-only-key",
        ),
        pytest.param(
            {"action": "select", "provisioning_id": "11"}, {"error": "INVALID_PROVISIONING_ID_PRAM"}, id="string-id"
        ),
        pytest.param(
            {"action": "select", "provisioning_id": 1.5}, {"error": "INVALID_PROVISIONING_ID_PRAM"}, id="float-id"
        ),
        pytest.param(
            {"action": "select", "provisioning_id": True}, {"error": "INVALID_PROVISIONING_ID_PRAM"}, id="bool-id"
        ),
        pytest.param(
            {"action": "select", "provisioning_id": -1}, {"error": "INVALID_PROVISIONING_ID_PRAM"}, id="negative-id"
        ),
        pytest.param(
            {"action": "select", "provisioning_id": 10**20}, {"error": "INVALID_PROVISIONING_ID_PRAM"}, id="huge-id"
        ),
        pytest.param(
            {"action": "select", "component_id": []}, {"error": "INVALID_COMPONENT_ID_PRAM"}, id="empty-array"
        ),
        pytest.param(
            {"action": "select", "component_id": [[1]]}, {"error": "INVALID_COMPONENT_ID_PRAM"}, id="nested-array"
        ),
        pytest.param(
            {"action": "select", "component_id": list(range(10_001))},
            {"error": "INVALID_COMPONENT_ID_PRAM"},
            id="too-many-ids",
        ),
        pytest.param(
            {"action": "select", "provisioning_component_id": ["1"]},
            {"error": "INVALID_PROVISIONING_COMPONENT_ID_PRAM"},
            id="string-in-array",
        ),
        pytest.param({"action": "select", "component_type": 3}, {"error": "INVALID_COMPONENT_TYPE_PRAM"}, id="type-3"),
        pytest.param(
            {"action": "select", "component_type": "Thermometer"},
            {"error": "INVALID_COMPONENT_TYPE_PRAM"},
            id="type-name",
        ),
        pytest.param(
            {"action": "select", "component_type": "Group Parameter  x"},
            {"error": "INVALID_COMPONENT_TYPE_PRAM"},
            id="type-over-15",
        ),
        pytest.param({"action": "select", "active_status": 2}, {"error": "INVALID_ACTIVE_STATUS_PRAM"}, id="status-2"),
        pytest.param({"action": "select", "limit": -5}, {"error": "INVALID_LIMIT_PRAM"}, id="negative-limit"),
        pytest.param(
            {"action": "insert", "component_type": 0, "component_id": 1},
            {"error": "MISSING_PROVISIONING_ID_PRAM"},
            id="insert-no-provisioning",
        ),
        pytest.param(
            {"action": "insert", "provisioning_id": 1, "component_id": 1},
            {"error": "MISSING_COMPONENT_TYPE_PRAM"},
            id="insert-no-type",
        ),
        pytest.param(
            {"action": "insert", "provisioning_id": 1, "component_type": 0},
            {"error": "MISSING_COMPONENT_ID_PRAM"},
            id="insert-no-component",
        ),
        pytest.param({"action": "update"}, {"error": "NO_UPDATED_PRAMS"}, id="update-nothing"),
        pytest.param(
            {"action": "update", "provisioning_component_id": 3},
            {"error": "MISSING_ACTIVE_STATUS_PRAM"},
            id="update-no-status",
        ),
        pytest.param(
            {"action": "update", "provisioning_component_id": 3, "provisioning_id": 1, "active_status": 1},
            {"error": "INVALID_INCOMPATABLE_IDENTIFICATION_PARAMS_PRAM"},
            id="update-mixed",
        ),
        pytest.param(
            {"action": "update", "provisioning_component_id": "x", "active_status": 1},
            {"error": "PROVISIONING_COMPONENT_ID"},
            id="update-bad-id-as-seed",
        ),
    ],
)
def test_bad_requests_get_the_seeds_error(body, expected):
    assert error(body) == expected
