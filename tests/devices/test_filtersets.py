"""One test per FilterSet of the inventory (NetBox's habit): each filter narrows, and each invalid value (not a number,
not a choice, not a date, an id naming nothing) is a 400 with the REST error body on the staff API, and a
ValidationError from the selector, never a filter silently left out."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from devices import selectors
from devices.choices import ActivationOutcome
from devices.models import ActivationAttempt
from tests.factories import CustomerFactory, DeviceFactory, DeviceModelFactory, VendorFactory

pytestmark = pytest.mark.django_db
NO_CHOICE = "Select a valid choice. {} is not one of the available choices."


@pytest.fixture
def fleet():
    acme, globex = VendorFactory(name="acme"), VendorFactory(name="globex")
    box, gw = DeviceModelFactory(vendor=acme, name="box"), DeviceModelFactory(vendor=globex, name="gw")
    carol = CustomerFactory(username="carol")
    owned = DeviceFactory(model=box, serial_number="ACME-1", owner=carol)
    spare = DeviceFactory(model=gw, serial_number="GLX-2")
    ActivationAttempt.objects.create(device=owned, serial_number="ACME-1", outcome=ActivationOutcome.ACTIVATED)
    ActivationAttempt.objects.create(device=None, serial_number="NOPE", outcome=ActivationOutcome.UNKNOWN_SERIAL)
    return {"acme": acme, "globex": globex, "box": box, "gw": gw, "carol": carol, "owned": owned, "spare": spare}


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_vendor_filterset(staff_api, fleet):
    assert ids(staff_api.get("/api/v1/vendors/", {"q": "GLO"})) == [fleet["globex"].pk]


@pytest.mark.parametrize(
    ("query", "expected"),
    [({"vendor_id": "acme"}, ["box"]), ({"vendor": "globex"}, ["gw"]), ({"q": "G"}, ["gw"])],
    ids=["vendor_id", "vendor", "q"],
)
def test_device_model_filterset_narrows(staff_api, fleet, query, expected):
    query = {name: fleet[value].pk if name == "vendor_id" else value for name, value in query.items()}

    assert ids(staff_api.get("/api/v1/device-models/", query)) == [fleet[name].pk for name in expected]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"vendor_id": "globex"}, ["spare"]),
        ({"vendor": "acme"}, ["owned"]),
        ({"model_id": "box"}, ["owned"]),
        ({"model": "gw"}, ["spare"]),
        ({"state": "notadded"}, ["owned", "spare"]),
        ({"state": "activated"}, []),
        ({"owner_id": "carol"}, ["owned"]),
        ({"owner": "carol"}, ["owned"]),
        ({"has_owner": "false"}, ["spare"]),
        ({"q": "glx"}, ["spare"]),
        ({"stranded": "true"}, []),
        ({"stranded": "false"}, ["owned", "spare"]),
        ({"stranded_for": "60"}, []),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, dict) else None,
)
def test_device_filterset_narrows(staff_api, fleet, query, expected):
    query = {name: fleet[value].pk if name.endswith("_id") else value for name, value in query.items()}

    assert ids(staff_api.get("/api/v1/devices/", query)) == [fleet[name].pk for name in expected]
    assert [d.pk for d in selectors.device_list(filters=query)] == [fleet[name].pk for name in expected]


def test_attempt_filterset_narrows(staff_api, fleet):
    [attempt] = ActivationAttempt.objects.filter(device=fleet["owned"])

    assert ids(staff_api.get("/api/v1/activation-attempts/", {"device_id": fleet["owned"].pk})) == [attempt.pk]
    assert ids(staff_api.get("/api/v1/activation-attempts/", {"outcome": "activated", "q": "acme"})) == [attempt.pk]
    assert len(ids(staff_api.get("/api/v1/activation-attempts/", {"since": "2000-01-01T00:00:00Z"}))) == 2
    assert ids(staff_api.get("/api/v1/activation-attempts/", {"since": "2035-01-01T00:00:00Z"})) == []


INVALID = [
    pytest.param("/api/v1/device-models/", "vendor_id", "x", ["Enter a number."], id="models-vendor_id-not-a-number"),
    pytest.param(
        "/api/v1/device-models/", "vendor_id", "999999", [NO_CHOICE.format(999999)], id="models-vendor_id-unknown"
    ),
    pytest.param("/api/v1/devices/", "vendor_id", "1.5", ["Enter a number."], id="devices-vendor_id-not-whole"),
    pytest.param("/api/v1/devices/", "model_id", "999999", [NO_CHOICE.format(999999)], id="devices-model_id-unknown"),
    pytest.param("/api/v1/devices/", "state", "bogus", [NO_CHOICE.format("bogus")], id="devices-state-bad-choice"),
    pytest.param("/api/v1/devices/", "owner_id", "999999", None, id="devices-owner_id-unknown"),
    pytest.param("/api/v1/devices/", "has_owner", "maybe", None, id="devices-has_owner-not-boolean"),
    pytest.param("/api/v1/devices/", "stranded_for", "-1", None, id="devices-stranded_for-negative"),
    pytest.param("/api/v1/devices/", "stranded_for", "soon", None, id="devices-stranded_for-not-a-number"),
    pytest.param(
        "/api/v1/activation-attempts/",
        "device_id",
        "999999",
        [NO_CHOICE.format(999999)],
        id="attempts-device_id-unknown",
    ),
    pytest.param(
        "/api/v1/activation-attempts/", "outcome", "won", [NO_CHOICE.format("won")], id="attempts-bad-outcome"
    ),
    pytest.param("/api/v1/activation-attempts/", "since", "2014-02-30T09:00:00Z", None, id="attempts-impossible-date"),
    pytest.param("/api/v1/activation-attempts/", "since", "yesterday", None, id="attempts-since-not-a-date"),
]
SELECTORS = {
    "/api/v1/device-models/": selectors.device_model_list,
    "/api/v1/devices/": selectors.device_list,
    "/api/v1/activation-attempts/": selectors.attempt_list,
}


@pytest.mark.parametrize(("url", "name", "value", "messages"), INVALID)
def test_an_invalid_filter_value_is_a_400_never_ignored(staff_api, fleet, url, name, value, messages):
    response = staff_api.get(url, {name: value})

    assert response.status_code == 400
    body = response.json()
    assert list(body) == [name] and (messages is None or body[name] == messages)
    with pytest.raises(ValidationError) as raised:
        list(SELECTORS[url](filters={name: value}))
    assert raised.value.message_dict == body
