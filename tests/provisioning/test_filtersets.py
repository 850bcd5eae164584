"""The command FilterSet (one test module per FilterSet): each filter narrows; each invalid value is a 400 with the
REST error body, and a ValidationError from the selector, never a filter silently left out."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from provisioning import selectors
from provisioning.models import Command, SetTopBox
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/commands/"
NO_CHOICE = "Select a valid choice. {} is not one of the available choices."


@pytest.fixture
def commands():
    one, two = DeviceFactory(serial_number="STB-ONE"), DeviceFactory(serial_number="STB-TWO")
    box_one = SetTopBox.objects.create(device=one, thunder_host="127.0.0.1")
    box_two = SetTopBox.objects.create(device=two, thunder_host="127.0.0.1")
    refresh = Command.objects.create(box=box_one, kind="refresh", state="SUCCEEDED")
    provision = Command.objects.create(box=box_two, kind="provision", state="QUEUED")
    return {"one": one, "box_one": box_one, "refresh": refresh, "provision": provision}


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"device_id": "one"}, ["refresh"]),
        ({"box_id": "box_one"}, ["refresh"]),
        ({"state": "QUEUED"}, ["provision"]),
        ({"kind": "refresh"}, ["refresh"]),
        ({"q": "two"}, ["provision"]),
        ({}, ["provision", "refresh"]),
    ],
    ids=["device_id", "box_id", "state", "kind", "q", "none"],
)
def test_the_command_filterset_narrows(staff_api, commands, query, expected):
    query = {name: commands[value].pk if name.endswith("_id") else value for name, value in query.items()}

    assert ids(staff_api.get(URL, query)) == [commands[name].pk for name in expected]
    assert [c.pk for c in selectors.command_list(filters=query)] == [commands[name].pk for name in expected]


@pytest.mark.parametrize(
    ("name", "value", "messages"),
    [
        ("device_id", "abc", ["Enter a number."]),
        ("device_id", "999999", [NO_CHOICE.format(999999)]),
        ("box_id", "999999", [NO_CHOICE.format(999999)]),
        ("state", "DONE", [NO_CHOICE.format("DONE")]),
        ("kind", "reboot", [NO_CHOICE.format("reboot")]),
    ],
    ids=["device_id-not-a-number", "device_id-unknown", "box_id-unknown", "state-bad-choice", "kind-bad-choice"],
)
def test_an_invalid_filter_value_is_a_400_never_ignored(staff_api, commands, name, value, messages):
    response = staff_api.get(URL, {name: value})

    assert (response.status_code, response.json()) == (400, {name: messages})
    with pytest.raises(ValidationError) as raised:
        list(selectors.command_list(filters={name: value}))
    assert raised.value.message_dict == {name: messages}
