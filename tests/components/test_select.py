"""The /v1/ select's SQL (``components.selectors.component_select``): the rows the ORM reading gives, for every kind
of user ``device_visibility`` tells apart and every filter, in one query, found through the provisioning index."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test.utils import CaptureQueriesContext

from components import selectors
from components.models import ProvisioningComponent
from tests.components.support import catalog_load, component
from tests.factories import CustomerFactory, DeviceFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db
FILTERS = [
    pytest.param({}, id="none"),
    pytest.param({"provisioning_id": "<mine>"}, id="provisioning"),
    pytest.param({"component_type": 1, "active_status": 1}, id="type-and-status"),
    pytest.param({"component_id": [1, 2, 999]}, id="component-ids"),
    pytest.param({"provisioning_component_id": "<ids>"}, id="component-pks"),
    pytest.param({"provisioning_id": "<mine>", "component_type": 0, "component_id": [1]}, id="triple"),
    pytest.param({"component_id": []}, id="empty-list"),
]
USERS = ["support", "superuser", "superuser-not-staff", "staff-not-support", "customer", "inactive", "anonymous"]


def _user(kind: str, owner):
    if kind == "anonymous":
        return AnonymousUser()
    if kind == "customer":
        return owner
    return {
        "support": lambda: StaffFactory(),  # staff of the support group
        "superuser": lambda: UserFactory(is_staff=True, is_superuser=True),
        "superuser-not-staff": lambda: UserFactory(is_superuser=True),
        "staff-not-support": lambda: UserFactory(is_staff=True),
        "inactive": lambda: CustomerFactory(is_active=False),
    }[kind]()


def _reference(user, filters: dict, limit: int) -> list[dict]:
    """The select as the ORM reads it (the code before the SQL: visibility, catalog names, order, limit)."""
    lookups = {"provisioning_component_id": "pk__in", "component_id": "component_id__in"}
    components = selectors.components_visible(user=user).filter(**{lookups.get(k, k): v for k, v in filters.items()})
    return list(selectors.with_catalog_name(components).order_by("pk").values(*selectors.SELECT_FIELDS)[:limit])


@pytest.mark.parametrize("filters", FILTERS)
@pytest.mark.parametrize("kind", USERS)
def test_the_sql_select_gives_the_rows_the_orm_gives(kind, filters):
    catalog_load()
    owner = CustomerFactory()
    mine, other = DeviceFactory(owner=owner), DeviceFactory(owner=CustomerFactory())
    rows = [component(mine, 0, 1), component(mine, 1, 2, status=1), component(mine, 2, 999), component(other, 1, 1)]
    user = _user(kind, owner)
    if kind == "staff-not-support":  # staff outside the support group see what they own, nothing more
        rows.append(component(DeviceFactory(owner=user), 1, 1, status=1))
    values = {"<mine>": mine.pk, "<ids>": [rows[0].pk, rows[3].pk]}
    filters = {k: values.get(v, v) if isinstance(v, str) else v for k, v in filters.items()}

    got = selectors.component_select(user=user, filters=filters, limit=1000)

    assert got == _reference(user, filters, 1000)
    if kind in ("inactive", "anonymous"):
        assert got == []


def test_a_catalog_entry_that_is_gone_reads_as_no_name_and_the_limit_keeps_the_first_by_id(staff_user):
    catalog_load()
    device = DeviceFactory()
    made = [component(device, 0, pk).pk for pk in (1, 2, 3)] + [component(device, 0, 424242).pk]

    first_two = selectors.component_select(user=staff_user, filters={"provisioning_id": device.pk}, limit=2)
    unknown = selectors.component_select(user=staff_user, filters={"component_id": [424242]}, limit=10)

    assert [row["pk"] for row in first_two] == made[:2]
    assert [(row["pk"], row["name"]) for row in unknown] == [(made[3], None)]


def test_the_select_is_one_query_with_visibility_inside(staff_user, customer_user):
    catalog_load()
    component(DeviceFactory(owner=customer_user), 0, 1)

    for user in (staff_user, customer_user):
        with CaptureQueriesContext(connection) as queries:
            rows = selectors.component_select(user=user, filters={}, limit=10)
        assert len(queries.captured_queries) == 1 and len(rows) == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the plan is PostgreSQL's")
def test_a_select_by_provisioning_id_is_an_index_lookup(staff_user):
    catalog_load()
    device = DeviceFactory()
    component(device, 0, 1)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO devices_device (model_id, serial_number, extra, state, configuration_version, created_at,"
            " updated_at) SELECT model_id, 'BULK-' || n, '', 'notadded', 0, now(), now()"
            " FROM devices_device, generate_series(1, 2000) n WHERE id = %s",
            [device.pk],
        )
        cursor.execute(
            "INSERT INTO components_deviceprovisioning (device_id, name, is_active, created_at)"
            " SELECT id, serial_number, true, now() FROM devices_device WHERE serial_number LIKE 'BULK-%%'"
        )
        cursor.execute(
            "INSERT INTO components_provisioningcomponent (provisioning_id, component_type, component_id,"
            " active_status, last_modified_datetime) SELECT device_id, 0, c, 0, now()"
            " FROM components_deviceprovisioning, generate_series(1, 10) c WHERE name LIKE 'BULK-%%'"
        )
        cursor.execute("ANALYZE components_provisioningcomponent")
    with CaptureQueriesContext(connection) as queries:
        rows = selectors.component_select(user=staff_user, filters={"provisioning_id": device.pk}, limit=1000)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + queries.captured_queries[0]["sql"])
        nodes = list(_nodes(cursor.fetchone()[0][0]["Plan"]))
    scans = [node for node in nodes if node.get("Relation Name") == "components_provisioningcomponent"]

    assert len(rows) == 1 and ProvisioningComponent.objects.count() == 20_001
    assert len(scans) == 1 and scans[0]["Node Type"] in ("Index Scan", "Bitmap Heap Scan")  # never a Seq Scan
    assert any("provisioning_id = " in node.get("Index Cond", "") for node in nodes)


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)
