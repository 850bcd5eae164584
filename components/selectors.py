"""Reads of the provisioning components. Who sees what is the inventory's one rule (``devices.selectors.
device_visibility``: support staff every device's records, an active user those of the devices they own); the /v1/
API, the staff REST API and the admin all read through here."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, Group, User
from django.db.models import Case, CharField, OuterRef, QuerySet, Subquery, When

from components.choices import ComponentType
from components.filters import (
    DeviceProvisioningFilter,
    ParameterFilter,
    ParameterGroupFilter,
    ProvisioningComponentFilter,
    SensorFilter,
)
from components.models import DeviceProvisioning, Parameter, ParameterGroup, ProvisioningComponent, Sensor
from devices.models import Device
from devices.selectors import device_visibility
from portal.kernel.db import statements
from portal.kernel.filters import filtered
from portal.kernel.permissions import SUPPORT_GROUP

CATALOG: dict[ComponentType, type[Sensor | Parameter | ParameterGroup]] = {
    ComponentType.SENSOR: Sensor,
    ComponentType.PARAMETER: Parameter,
    ComponentType.GROUP_PARAMETER: ParameterGroup,
}
SELECT_FIELDS = (
    "pk",
    "provisioning_id",
    "component_type",
    "component_id",
    "name",
    "active_status",
    "last_modified_by_id",
    "last_modified_datetime",
)


def components_visible(*, user: User | AnonymousUser) -> QuerySet[ProvisioningComponent]:
    return ProvisioningComponent.objects.filter(device_visibility(user=user, prefix="provisioning__device__"))


def with_catalog_name(components: QuerySet[ProvisioningComponent]) -> QuerySet[ProvisioningComponent]:
    """Each component's catalog name, in the same query (one indexed sub-select per row)."""
    names = [
        When(component_type=kind, then=Subquery(model.objects.filter(pk=OuterRef("component_id")).values("name")[:1]))
        for kind, model in CATALOG.items()
    ]
    return components.annotate(name=Case(*names, output_field=CharField()))


# The /v1/ select in SQL written once (``portal.kernel.db.statements``): its filters are a fixed set of exact matches,
# and building the ORM query (three catalog sub-selects in a CASE) took more CPU than everything else in the call.
# Portable SQL (SQLite, the embedded default, and PostgreSQL); only whitelisted column names are formatted in, every
# value is a parameter. The component's columns are read through the ORM's converters, so ``last_modified_datetime``
# is an aware UTC datetime on both (SQLite's cursor alone gives a naive one).
SELECT_SQL = (
    "SELECT {columns}, COALESCE(s.name, p.name, g.name) "
    "FROM {component} c "
    "LEFT JOIN {sensor} s ON c.component_type = 0 AND s.id = c.component_id "
    "LEFT JOIN {parameter} p ON c.component_type = 1 AND p.id = c.component_id "
    "LEFT JOIN {group} g ON c.component_type = 2 AND g.id = c.component_id "
    "WHERE {where} ORDER BY c.id LIMIT %s"
)
# Every field of the select but the catalog name is a column of the component (``pk`` is its ``id``).
COMPONENT_FIELDS = tuple(name for name in SELECT_FIELDS if name != "name")
COMPONENT_COLUMNS = ("id", *COMPONENT_FIELDS[1:])
SELECT_COLUMNS = {
    "provisioning_component_id": "c.id",
    "provisioning_id": "c.provisioning_id",
    "component_type": "c.component_type",
    "component_id": "c.component_id",
    "active_status": "c.active_status",
}
# device_visibility (devices.selectors) in the same statement instead of a query of its own first: support staff
# see every record, any other active user the records of the devices they own (a record's id is its device's).
SUPPORT_SQL = (
    "EXISTS (SELECT 1 FROM {membership} m JOIN {group_table} sg ON sg.id = m.group_id "
    "WHERE m.user_id = %s AND sg.name = %s)"
)
OWNED_SQL = "c.provisioning_id IN (SELECT d.id FROM {device} d WHERE d.owner_id = %s)"


def _visibility_sql(user: User | AnonymousUser) -> tuple[str, list] | None:
    """The condition of ``device_visibility`` for ``user`` as SQL, or None when they may see nothing."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_staff and user.is_superuser:
        return "1 = 1", []
    owned = OWNED_SQL.format(device=Device._meta.db_table)
    if not user.is_staff:
        return owned, [user.pk]
    support = SUPPORT_SQL.format(membership=User.groups.through._meta.db_table, group_table=Group._meta.db_table)
    return f"({support} OR {owned})", [user.pk, SUPPORT_GROUP, user.pk]


def component_select(*, user: User | AnonymousUser, filters: dict, limit: int) -> list[dict]:
    """The /v1/ select: exact-match filters (ids as lists), first ``limit`` rows by id, as plain dicts."""
    visible = _visibility_sql(user)
    if visible is None:
        return []
    where, params = [visible[0]], list(visible[1])
    for name, value in filters.items():
        if isinstance(value, list | tuple):
            if not value:
                return []
            where.append(f"{SELECT_COLUMNS[name]} IN ({', '.join(['%s'] * len(value))})")
            params += [int(item) for item in value]
        else:
            where.append(f"{SELECT_COLUMNS[name]} = %s")
            params.append(int(value))
    columns = statements.columns(ProvisioningComponent, COMPONENT_COLUMNS, "c")
    sql = SELECT_SQL.format(
        columns=columns.sql,
        component=statements.table(ProvisioningComponent),
        sensor=statements.table(Sensor),
        parameter=statements.table(Parameter),
        group=statements.table(ParameterGroup),
        where=" AND ".join(where),
    )
    rows = []
    for row in statements.fetch(sql, [*params, limit]):
        found = dict(zip(COMPONENT_FIELDS, columns.values(row), strict=True))
        found["name"] = row[-1]  # the one column that is no field of the component
        rows.append(found)
    return rows


def component_list(*, filters: dict | None = None) -> QuerySet[ProvisioningComponent]:
    components = with_catalog_name(ProvisioningComponent.objects.order_by("pk"))
    return filtered(ProvisioningComponentFilter, filters, components)


def components_written(
    *, provisioning_id: int, component_type: ComponentType, component_ids: list[int]
) -> QuerySet[ProvisioningComponent]:
    """The rows an insert wrote (the staff API answers them), by id, with their catalog names."""
    components = ProvisioningComponent.objects.filter(
        provisioning_id=provisioning_id, component_type=component_type, component_id__in=component_ids
    )
    return with_catalog_name(components.order_by("pk"))


def provisioning_list(*, filters: dict | None = None) -> QuerySet[DeviceProvisioning]:
    records = DeviceProvisioning.objects.select_related("device").order_by("pk")
    return filtered(DeviceProvisioningFilter, filters, records)


def sensor_list(*, filters: dict | None = None) -> QuerySet[Sensor]:
    return filtered(SensorFilter, filters, Sensor.objects.order_by("pk"))


def parameter_list(*, filters: dict | None = None) -> QuerySet[Parameter]:
    return filtered(ParameterFilter, filters, Parameter.objects.order_by("pk"))


def parameter_group_list(*, filters: dict | None = None) -> QuerySet[ParameterGroup]:
    return filtered(ParameterGroupFilter, filters, ParameterGroup.objects.order_by("pk"))
