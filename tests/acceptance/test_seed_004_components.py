"""Seed 004 (DeviceProvisioningComponents), replayed: each example request as the document writes it (the
document's provisioning id 11 stands for a device's id here), each success body field by field, and every error code
of the three tables. Numbers are JSON numbers (the document's examples quote some; its type tables say INT)."""

from __future__ import annotations

import contextlib
import json
import re
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from components.models import ProvisioningComponent
from tests.acceptance.seeds import differences, marked_examples
from tests.components.support import URL, V1, catalog_load, component, snapshot
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db
STAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
# The document's examples, in its order: select request, response_1, failure; insert …; update … (seeds/004_*).
(SELECT, SELECTED, SELECT_FAILED, INSERT_EXAMPLE, INSERTED, INSERT_FAILED, UPDATE_EXAMPLE, UPDATED, UPDATE_FAILED) = (
    marked_examples("004")
)
# Ids of this database and the time of now, checked for their shape; every other value must equal the document's.
SHAPES = {
    r"\.(provisioning_component_id|provisioning_id|last_modified_by)": lambda got, example: isinstance(got, int),
    r"\.last_modified_datetime": lambda got, example: bool(STAMP.fullmatch(got)),
}


def quoted(path: str, numbers: list[int]) -> list[str]:
    """The document quotes these numbers (its type tables say INT): the portal answers JSON numbers."""
    return [f"{path}[{n}]: {number!r}, the example has {str(number)!r}" for n, number in enumerate(numbers)]


def seed_request(example: dict, device) -> dict:
    """The document's request, its provisioning id 11 standing for the device's id."""
    assert example["provisioning_id"] == 11
    return {**example, "provisioning_id": device.pk}


@pytest.fixture
def device(staff_user):
    catalog_load()
    return DeviceFactory()


@pytest.fixture
def v1(client, staff_user) -> V1:
    return V1.for_user(client, staff_user)


# --- SELECT --------------------------------------------------------------------------------------------------------


def test_get_returns_all_components(client, v1, device, staff_user):
    ids = [component(device, 0, 1).pk, component(device, 1, 2).pk, component(DeviceFactory(), 2, 1).pk]

    response = client.get(URL, HTTP_TOKEN=v1.token)

    responses = response.json()["responses"]
    assert list(responses) == ["response_0", "response_1", "response_2"]
    assert [r["provisioning_component_id"] for r in responses.values()] == ids


def test_filtered_select_example(v1, device, staff_user):
    component(device, 0, 1, user=staff_user)
    co = component(device, 0, 2, status=1, user=staff_user)
    component(device, 0, 3, user=staff_user)  # not asked for
    component(device, 1, 2, user=staff_user)  # a parameter, not a sensor

    body = v1(seed_request(SELECT, device))

    assert list(body) == ["responses"] and list(body["responses"]) == ["response_0", "response_1"]
    example = body["responses"]["response_1"]
    assert differences(example, SELECTED, SHAPES) == []
    assert list(example) == [
        "provisioning_component_id",
        "provisioning_id",
        "component_type",
        "component_id",
        "name",
        "active_status",
        "last_modified_by",
        "last_modified_datetime",
    ]
    assert {**example, "last_modified_datetime": "*"} == {
        "provisioning_component_id": co.pk,
        "provisioning_id": device.pk,
        "component_type": "Sensor",
        "component_id": 2,
        "name": "Carbon Monoxide",
        "active_status": 1,
        "last_modified_by": staff_user.pk,
        "last_modified_datetime": "*",
    }
    assert STAMP.fullmatch(example["last_modified_datetime"])


def test_select_failure_example_no_data(v1, device):
    assert v1({"action": "select", "provisioning_id": device.pk}) == {"error": "NO_DATA"} == SELECT_FAILED


@pytest.mark.parametrize(
    ("body", "error"),
    [
        pytest.param(b'{"action": "select", ', {"error": "INVALID_REQUEST_PRAM"}, id="incorrect-json"),
        pytest.param({"limit": 3}, {"error": "INVALID_REQUEST_PRAM"}, id="action-missing"),
        pytest.param({"action": "delete"}, {"error": "INVALID_ACTION_PRAM"}, id="action"),
        pytest.param(
            {"action": "select", "provisioning_idd": 1},
            {"error": "INVALID_INPUT_PRAM", "error_detail": "INVALID_PRAM_provisioning_idd"},
            id="input",
        ),
        pytest.param(
            {"action": "select", "provisioning_component_id": "1"},
            {"error": "INVALID_PROVISIONING_COMPONENT_ID_PRAM"},
            id="provisioning-component-id",
        ),
        pytest.param(
            {"action": "select", "provisioning_id": -1}, {"error": "INVALID_PROVISIONING_ID_PRAM"}, id="provisioning-id"
        ),
        pytest.param(
            {"action": "select", "component_type": "Actuator"},
            {"error": "INVALID_COMPONENT_TYPE_PRAM"},
            id="component-type",
        ),
        pytest.param(
            {"action": "select", "component_id": [1, "2"]}, {"error": "INVALID_COMPONENT_ID_PRAM"}, id="component-id"
        ),
        pytest.param(
            {"action": "select", "active_status": 2}, {"error": "INVALID_ACTIVE_STATUS_PRAM"}, id="active-status"
        ),
        pytest.param({"action": "select", "limit": 1.5}, {"error": "INVALID_LIMIT_PRAM"}, id="limit"),
    ],
)
def test_select_error_codes(v1, device, body, error):
    component(device, 0, 1)

    assert v1(body) == error


# --- INSERT --------------------------------------------------------------------------------------------------------


def test_insert_example(v1, device, staff_user):
    body = v1(seed_request(INSERT_EXAMPLE, device))

    assert differences(body, INSERTED, SHAPES) == quoted(".component_id", [2, 3, 4])
    assert list(body) == [
        "provisioning_id",
        "component_type",
        "component_id",
        "active_status",
        "last_modified_by",
        "last_modified_datetime",
        "error",
    ]
    assert {**body, "last_modified_datetime": "*"} == {
        "provisioning_id": device.pk,
        "component_type": "Parameter",
        "component_id": [2, 3, 4],
        "active_status": 0,
        "last_modified_by": staff_user.pk,
        "last_modified_datetime": "*",
        "error": "NO_ERROR",
    }
    assert STAMP.fullmatch(body["last_modified_datetime"])
    rows = ProvisioningComponent.objects.filter(provisioning_id=device.pk).order_by("component_id")
    assert list(rows.values_list("component_type", "component_id", "active_status", "last_modified_by")) == [
        (1, 2, 0, staff_user.pk),
        (1, 3, 0, staff_user.pk),
        (1, 4, 0, staff_user.pk),
    ]


INSERT = {"action": "insert", "provisioning_id": "<device>", "component_type": 0, "component_id": [1]}


@pytest.mark.parametrize(
    ("change", "error"),
    [
        pytest.param({"action": None}, {"error": "INVALID_REQUEST_PRAM"}, id="action-missing"),
        pytest.param({"action": "upsert"}, {"error": "INVALID_ACTION_PRAM"}, id="action"),
        pytest.param(
            {"component": 1}, {"error": "INVALID_INPUT_PRAM", "error_detail": "INVALID_PRAM_component"}, id="input"
        ),
        pytest.param({"provisioning_id": None}, {"error": "MISSING_PROVISIONING_ID_PRAM"}, id="missing-provisioning"),
        pytest.param({"component_type": None}, {"error": "MISSING_COMPONENT_TYPE_PRAM"}, id="missing-type"),
        pytest.param({"component_id": None}, {"error": "MISSING_COMPONENT_ID_PRAM"}, id="missing-component"),
        pytest.param({"provisioning_id": "11"}, {"error": "INVALID_PROVISIONING_ID_PRAM"}, id="provisioning-value"),
        pytest.param({"provisioning_id": 999_999}, {"error": "INVALID_PROVISIONING_ID_PRAM"}, id="provisioning-gone"),
        pytest.param({"component_type": 3}, {"error": "INVALID_COMPONENT_TYPE_PRAM"}, id="component-type"),
        pytest.param({"active_status": -1}, {"error": "INVALID_ACTIVE_STATUS_PRAM"}, id="active-status"),
        pytest.param({"component_id": []}, {"error": "INVALID_COMPONENT_ID_PRAM"}, id="component-id"),
        pytest.param(
            {"component_type": "Sensor", "component_id": [1, 7, 9]},
            {"error": "INVALID_COMPONENT_SENSOR_ID_PRAM", "error_detail": "INVALID_IDS_7,9"},
            id="sensor-ids",
        ),
        pytest.param(
            {"component_type": "Sensor", "component_id": 7},
            {"error": "INVALID_COMPONENT_SENSOR_ID_PRAM"},
            id="sensor-id-single",
        ),
        pytest.param(
            {"component_type": "parameter", "component_id": [5, 1]},
            {"error": "INVALID_COMPONENT_PARAMETER_ID_PRAM", "error_detail": "INVALID_IDS_5"},
            id="parameter-ids",
        ),
        pytest.param(
            {"component_type": "Group Parameter", "component_id": [3]},
            {"error": "INVALID_COMPONENT_GROUP_PARAMETER_ID_PRAM", "error_detail": "INVALID_IDS_3"},
            id="group-parameter-ids",
        ),
    ],
)
def test_insert_error_codes_write_nothing(v1, device, change, error):
    body = {k: v for k, v in {**INSERT, "provisioning_id": device.pk, **change}.items() if v is not None}
    before = snapshot()

    assert v1(body) == error
    assert snapshot() == before


# --- UPDATE --------------------------------------------------------------------------------------------------------


def test_update_example(v1, device, staff_user):
    for sensor in (1, 2, 4, 5, 6):
        component(device, 0, sensor)

    body = v1(seed_request(UPDATE_EXAMPLE, device))

    assert differences(body, UPDATED, SHAPES) == [
        *quoted(".component_id", [1, 2, 4, 5]),
        ".active_status: 1, the example has '1'",
    ]
    assert body == {
        "provisioning_id": device.pk,
        "component_type": "Sensor",
        "component_id": [1, 2, 4, 5],
        "active_status": 1,
        "error": "NO_ERROR",
    }
    statuses = ProvisioningComponent.objects.filter(provisioning_id=device.pk).order_by("component_id")
    assert list(statuses.values_list("component_id", "active_status", "last_modified_by")) == [
        (1, 1, staff_user.pk),
        (2, 1, staff_user.pk),
        (4, 1, staff_user.pk),
        (5, 1, staff_user.pk),
        (6, 0, None),
    ]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        pytest.param({"active_status": 1}, {"error": "INVALID_REQUEST_PRAM"}, id="action-missing"),
        pytest.param({"action": "Update", "active_status": 1}, {"error": "INVALID_ACTION_PRAM"}, id="action"),
        pytest.param(
            {"action": "update", "id": 1, "active_status": 1},
            {"error": "INVALID_INPUT_PRAM", "error_detail": "INVALID_PRAM_id"},
            id="input",
        ),
        pytest.param({"action": "update"}, {"error": "NO_UPDATED_PRAMS"}, id="no-updated"),
        pytest.param(
            {"action": "update", "provisioning_component_id": "<c1>"},
            {"error": "MISSING_ACTIVE_STATUS_PRAM"},
            id="missing-active-status",
        ),
        pytest.param(
            {"action": "update", "provisioning_component_id": True, "active_status": 1},
            {"error": "PROVISIONING_COMPONENT_ID"},
            id="provisioning-component-id",
        ),
        pytest.param(
            {"action": "update", "provisioning_id": [1], "component_type": 0, "component_id": 1, "active_status": 1},
            {"error": "INVALID_PROVISIONING_ID_PRAM"},
            id="provisioning-id",
        ),
        pytest.param(
            {
                "action": "update",
                "provisioning_id": "<device>",
                "component_type": "",
                "component_id": 1,
                "active_status": 1,
            },
            {"error": "INVALID_COMPONENT_TYPE_PRAM"},
            id="component-type",
        ),
        pytest.param(
            {
                "action": "update",
                "provisioning_id": "<device>",
                "component_type": 0,
                "component_id": [[1]],
                "active_status": 1,
            },
            {"error": "INVALID_COMPONENT_ID_PRAM"},
            id="component-id-value",
        ),
        pytest.param(
            {
                "action": "update",
                "provisioning_id": "<device>",
                "component_type": 0,
                "component_id": [1, 3],
                "active_status": 1,
            },
            {"error": "INVALID_COMPONENT_ID_PRAM", "error_detail": "INVALID_IDS_3"},
            id="component-id-not-there",
        ),
        pytest.param(
            {"action": "update", "provisioning_component_id": ["<c1>", 999_999], "active_status": 1},
            {"error": "INVALID_COMPONENT_ID_PRAM", "error_detail": "INVALID_IDS_999999"},
            id="id-not-there",
        ),
        pytest.param(
            {"action": "update", "provisioning_component_id": 999_999, "active_status": 1},
            {"error": "INVALID_COMPONENT_ID_PRAM"},
            id="id-not-there-single",
        ),
        pytest.param(
            {
                "action": "update",
                "provisioning_component_id": "<c1>",
                "provisioning_id": "<device>",
                "active_status": 1,
            },
            {"error": "INVALID_INCOMPATABLE_IDENTIFICATION_PARAMS_PRAM"},
            id="incompatible",
        ),
    ],
)
def test_update_error_codes_write_nothing(v1, device, body, error):
    c1 = component(device, 0, 1)
    names = {"<device>": device.pk, "<c1>": c1.pk}
    body = json.loads(re.sub(r'"(<\w+>)"', lambda m: str(names[m[1]]), json.dumps(body)))
    before = snapshot()

    assert v1(body) == error
    assert snapshot() == before


# --- INVALID_TOKEN, every action --------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["select", "insert", "update"])
@pytest.mark.parametrize("token", ["timed-out", "invalid", "missing"])
def test_invalid_token(client, device, staff_user, action, token):
    v1 = V1.for_user(client, staff_user)
    component(device, 0, 1)
    raw = {"timed-out": v1.token, "invalid": "0" * 43, "missing": ""}[token]
    later = timezone.now() + timedelta(days=2) if token == "timed-out" else None
    before = snapshot()

    with time_machine.travel(later, tick=False) if later else contextlib.nullcontext():
        response = v1.post(
            {
                "action": action,
                "provisioning_id": device.pk,
                "component_type": 0,
                "component_id": 1,
                "active_status": 1,
            },
            token=raw,
        )

    assert (response.status_code, response.json()) == (200, {"error": "INVALID_TOKEN"})
    assert snapshot() == before


# --- the sibling login, over a raw socket to the production server ------------------------------------------------
# The bytes curl sends for the commands in docs/components.md (``curl -s -d username=… -d password=…`` and
# ``-H "token: …"``), to gunicorn on PostgreSQL: log in, select, log out (``-d token=…``, the original's logout),
# and the token no longer works. Answers are parsed as the original's clients read them: JSON bodies of HTTP 200.


def _exchange(base: str, request: bytes) -> tuple[str, dict]:
    import socket
    from urllib.parse import urlsplit

    address = urlsplit(base)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(request.replace(b"{host}", address.netloc.encode()))
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply.split(b"\r\n\r\n", 1)[1]) < _length(reply):
            chunk = sock.recv(65536)
            assert chunk, reply
            reply += chunk
    head, body = reply.split(b"\r\n\r\n", 1)
    assert re.search(rb"(?im)^Content-Type: application/json\r?$", head), head
    return head.split(b"\r\n", 1)[0].decode(), json.loads(body)


def _length(reply: bytes) -> int:
    found = re.search(rb"(?im)^content-length: *(\d+)", reply.split(b"\r\n\r\n", 1)[0])
    return int(found.group(1)) if found else 1 << 30


def _curl(path: str, form: str | None = None, token: str | None = None) -> bytes:
    lines = [
        f"{'POST' if form is not None else 'GET'} {path} HTTP/1.1",
        "Host: {host}",
        "User-Agent: curl/7.88.1",
        "Accept: */*",
    ]
    if token is not None:
        lines.append(f"token: {token}")
    if form is not None:
        lines += [f"Content-Length: {len(form)}", "Content-Type: application/x-www-form-urlencoded"]
    return ("\r\n".join(lines) + "\r\n\r\n" + (form or "")).encode()


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_login_select_logout_over_a_raw_socket(portal_server, settings):
    from django.conf import global_settings

    from tests.factories import PASSWORD, CustomerFactory

    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS  # the server's own hashers
    alice = CustomerFactory(username="alice")
    catalog_load()
    component(DeviceFactory(owner=alice), 0, 1)
    base = portal_server()

    status, login = _exchange(base, _curl("/v1/Login/", f"username=alice&password={PASSWORD}"))
    _, selected = _exchange(base, _curl(URL, token=login["token"]))
    _, logout = _exchange(base, _curl("/v1/Login/", f"token={login['token']}"))
    _, after = _exchange(base, _curl(URL, token=login["token"]))
    _, again = _exchange(base, _curl("/v1/Login/", f"token={login['token']}"))

    assert status == "HTTP/1.1 200 OK"
    assert list(login) == ["token", "userid", "userrole", "status", "error", "username", "CONTENT_TYPE"]
    assert (
        login["userid"],
        login["userrole"],
        login["status"],
        login["error"],
        login["username"],
        login["CONTENT_TYPE"],
    ) == (alice.pk, "customer", "SUCCESS", "NO_ERROR", "alice", "application/x-www-form-urlencoded")
    assert selected["responses"]["response_0"]["name"] == "Temperature"
    assert logout == {"status": "LOGGED_OUT", "error": "NO_ERROR"}
    assert after == {"error": "INVALID_TOKEN"}
    assert again == {"error": "INVALID_TOKEN1"}
