"""The components' FilterSets (one test per FilterSet): each filter narrows; each invalid value is a 400 with the
REST error body, and a ValidationError from the selector, never a filter silently left out."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from components import selectors
from components.models import DeviceProvisioning
from tests.components.support import catalog_load, component
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db
NO_CHOICE = "Select a valid choice. {} is not one of the available choices."


@pytest.fixture
def records():
    catalog_load()
    one, two = DeviceFactory(serial_number="REC-ONE"), DeviceFactory(serial_number="REC-TWO")
    sensor = component(one, component_type=0, component_id=1)
    parameter = component(two, component_type=1, component_id=2, status=1)
    DeviceProvisioning.objects.filter(device=two).update(is_active=False, name="spare")
    return {"one": one, "two": two, "sensor": sensor, "parameter": parameter}


def rows(response, key="id") -> list[int]:
    assert response.status_code == 200, response.content
    return [row[key] for row in response.json()["results"]]


@pytest.mark.parametrize(
    ("url", "q", "expected"),
    [("/api/v1/sensors/", "smo", [4]), ("/api/v1/parameters/", "ZONE", [4]), ("/api/v1/parameter-groups/", "sec", [2])],
)
def test_the_catalog_filtersets_narrow(staff_api, records, url, q, expected):
    assert rows(staff_api.get(url, {"q": q})) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"device_id": "two"}, ["two"]),
        ({"serial_number": "REC-ONE"}, ["one"]),
        ({"is_active": "false"}, ["two"]),
        ({"q": "spa"}, ["two"]),
    ],
    ids=["device_id", "serial_number", "is_active", "q"],
)
def test_the_provisioning_filterset_narrows(staff_api, records, query, expected):
    query = {name: records[value].pk if name == "device_id" else value for name, value in query.items()}

    got = rows(staff_api.get("/api/v1/provisioning-records/", query), key="provisioning_id")
    assert got == [records[name].pk for name in expected]
    assert [r.pk for r in selectors.provisioning_list(filters=query)] == got


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"provisioning_id": "one"}, ["sensor"]),
        ({"provisioning": "REC-TWO"}, ["parameter"]),
        ({"component_type": "1"}, ["parameter"]),
        ({"component_id": "1"}, ["sensor"]),
        ({"active_status": "1"}, ["parameter"]),
        ({"q": "temp"}, ["sensor"]),
    ],
    ids=["provisioning_id", "provisioning", "component_type", "component_id", "active_status", "q"],
)
def test_the_component_filterset_narrows(staff_api, records, query, expected):
    query = {name: records[value].pk if name == "provisioning_id" else value for name, value in query.items()}

    got = rows(staff_api.get("/api/v1/components/", query))
    assert got == [records[name].pk for name in expected]
    assert [c.pk for c in selectors.component_list(filters=query)] == got


INVALID = [
    pytest.param("/api/v1/provisioning-records/", "device_id", "abc", ["Enter a number."], id="records-not-a-number"),
    pytest.param(
        "/api/v1/provisioning-records/",
        "device_id",
        "999999",
        [NO_CHOICE.format(999999)],
        id="records-device_id-unknown",
    ),
    pytest.param(
        "/api/v1/provisioning-records/",
        "is_active",
        "perhaps",
        ["Enter true or false."],
        id="records-is_active-not-boolean",
    ),
    pytest.param(
        "/api/v1/components/",
        "provisioning_id",
        "999999",
        [NO_CHOICE.format(999999)],
        id="components-provisioning_id-unknown",
    ),
    pytest.param("/api/v1/components/", "component_type", "7", [NO_CHOICE.format(7)], id="components-bad-type"),
    pytest.param("/api/v1/components/", "active_status", "x", [NO_CHOICE.format("x")], id="components-bad-status"),
    pytest.param("/api/v1/components/", "component_id", "one", ["Enter a number."], id="components-id-not-a-number"),
]
SELECTORS = {
    "/api/v1/provisioning-records/": selectors.provisioning_list,
    "/api/v1/components/": selectors.component_list,
}


@pytest.mark.parametrize(("url", "name", "value", "messages"), INVALID)
def test_an_invalid_filter_value_is_a_400_never_ignored(staff_api, records, url, name, value, messages):
    response = staff_api.get(url, {name: value})

    assert (response.status_code, response.json()) == (400, {name: messages})
    with pytest.raises(ValidationError) as raised:
        list(SELECTORS[url](filters={name: value}))
    assert raised.value.message_dict == {name: messages}
