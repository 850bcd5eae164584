"""Staff REST API for the components: catalog, provisioning records, components; FilterSets and query counts."""

from __future__ import annotations

import pytest

from components.models import ProvisioningComponent, Sensor
from devices.models import Device
from portal.kernel import services as portal_services
from portal.kernel.choices import TokenPurpose
from tests.components.support import catalog_load, component
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db
LISTS = [
    "/api/v1/sensors/",
    "/api/v1/parameters/",
    "/api/v1/parameter-groups/",
    "/api/v1/provisioning-records/",
    "/api/v1/components/",
]


@pytest.fixture(autouse=True)
def catalog():
    catalog_load()


@pytest.mark.parametrize("url", LISTS)
def test_anonymous_gets_401_and_customers_get_403(api_client, customer_user, url):
    assert api_client.get(url).status_code == 401
    token = portal_services.token_issue(user=customer_user, purpose=TokenPurpose.STAFF_API).raw
    assert api_client.get(url, HTTP_AUTHORIZATION=f"Token {token}").status_code == 403


@pytest.mark.parametrize("url", LISTS)
def test_list_query_count_does_not_grow_with_page_size(staff_api, django_assert_num_queries, url):
    for n in range(30):
        component(DeviceFactory(), n % 3, 1 + n % 2)

    with django_assert_num_queries(3) as small:  # token (its user, support group), count, page
        assert len(staff_api.get(url, {"limit": 2}).json()["results"]) == 2
    with django_assert_num_queries(len(small.captured_queries)):
        page = staff_api.get(url, {"limit": 30}).json()
    assert len(page["results"]) == min(page["count"], 30)


def test_catalog_create_rename_and_filter(staff_api):
    created = staff_api.post("/api/v1/sensors/", {"id": 40, "name": "Water leak"}, format="json")
    renamed = staff_api.put("/api/v1/sensors/40/", {"name": "Water leak (kitchen)"}, format="json")
    found = staff_api.get("/api/v1/sensors/", {"q": "leak"})

    assert (created.status_code, created.json()) == (201, {"id": 40, "name": "Water leak"})
    assert renamed.json() == {"id": 40, "name": "Water leak (kitchen)"}
    assert [s["id"] for s in found.json()["results"]] == [40]
    assert Sensor.objects.get(pk=40).name == "Water leak (kitchen)"


def test_catalog_refuses_bad_ids(staff_api):
    response = staff_api.post("/api/v1/parameters/", {"id": -1, "name": "x"}, format="json")

    assert response.status_code == 400 and "id" in response.json()


def test_provisioning_record_created_then_deactivated(staff_api):
    device = DeviceFactory(serial_number="REC-1")

    created = staff_api.post("/api/v1/provisioning-records/", {"device_id": device.pk}, format="json")
    changed = staff_api.patch(f"/api/v1/provisioning-records/{device.pk}/", {"is_active": False}, format="json")
    inactive = staff_api.get("/api/v1/provisioning-records/", {"is_active": "false"})

    assert created.status_code == 201
    assert {k: created.json()[k] for k in ("provisioning_id", "device_id", "serial_number", "name", "is_active")} == {
        "provisioning_id": device.pk,
        "device_id": device.pk,
        "serial_number": "REC-1",
        "name": "REC-1",
        "is_active": True,
    }
    assert changed.json()["is_active"] is False
    assert [r["provisioning_id"] for r in inactive.json()["results"]] == [device.pk]


def test_components_insert_follows_the_v1_rules(staff_api, staff_user):
    device = DeviceFactory()

    created = staff_api.post(
        "/api/v1/components/",
        {"provisioning_id": device.pk, "component_type": 1, "component_ids": [1, 2]},
        format="json",
    )
    refused = staff_api.post(
        "/api/v1/components/",
        {"provisioning_id": device.pk, "component_type": 2, "component_ids": [1, 9]},
        format="json",
    )
    nowhere = staff_api.post(
        "/api/v1/components/", {"provisioning_id": 999_999, "component_type": 0, "component_ids": [1]}, format="json"
    )

    assert created.status_code == 201
    assert [(c["component_id"], c["name"], c["last_modified_by"]) for c in created.json()] == [
        (1, "Reporting interval", staff_user.pk),
        (2, "Alarm threshold", staff_user.pk),
    ]
    assert (refused.status_code, refused.json()["code"]) == (400, "INVALID_COMPONENT_GROUP_PARAMETER_ID_PRAM")
    assert "9" in refused.json()["detail"]
    assert (nowhere.status_code, nowhere.json()["code"]) == (404, "INVALID_PROVISIONING_ID_PRAM")
    assert ProvisioningComponent.objects.count() == 2
    assert Device.objects.get(pk=device.pk).configuration_version == 1


def test_components_filters_and_set_status(staff_api):
    device, other = DeviceFactory(serial_number="F-1"), DeviceFactory()
    a, b = component(device, 0, 1), component(device, 0, 2, status=1)
    component(other, 0, 1)

    by_serial = staff_api.get("/api/v1/components/", {"provisioning": "F-1", "active_status": 0})
    by_name = staff_api.get("/api/v1/components/", {"q": "monoxide"})
    changed = staff_api.post("/api/v1/components/set-status/", {"ids": [a.pk, b.pk], "active_status": 1}, format="json")

    assert [c["id"] for c in by_serial.json()["results"]] == [a.pk]
    assert [c["id"] for c in by_name.json()["results"]] == [b.pk]
    assert changed.json() == {"changed": 1}
    assert Device.objects.get(pk=device.pk).configuration_version == 1
