"""The admin filters the way the staff API does (portal/kernel/adminfilters.py): the app's FilterSet parameters narrow
a changelist, and an invalid value (of a FilterSet parameter or of the admin's own sidebar filters) is an error on
the page, a 400 with nothing listed, never a silently unfiltered list."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from devices import services
from tests.conax.factories import ProvisioningRequestFactory
from tests.factories import DeviceFactory, DeviceModelFactory

pytestmark = pytest.mark.django_db

DEVICES = "/admin/devices/device/"
REQUESTS = "/admin/conax/provisioningrequest/"


def listed(response) -> list[str]:
    return [str(obj) for obj in response.context["cl"].result_list]


def errors(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def fleet():
    model = DeviceModelFactory(name="gw-1")
    enabled = DeviceFactory(model=model, serial_number="ENABLED-1")
    services.device_enable(device=enabled)
    other = DeviceFactory(serial_number="OTHER-1")
    return model, enabled, other


def test_filterset_parameters_narrow_the_device_list(admin_client, fleet):
    model, enabled, other = fleet

    by_model = admin_client.get(DEVICES, {"model_id": model.pk})
    by_serial = admin_client.get(DEVICES, {"vendor": other.model.vendor.name})

    assert by_model.status_code == 200
    assert [d.pk for d in by_model.context["cl"].result_list] == [enabled.pk]
    assert [d.pk for d in by_serial.context["cl"].result_list] == [other.pk]


def test_the_filter_stays_in_the_links(admin_client, fleet):
    model, _, _ = fleet

    response = admin_client.get(DEVICES, {"model_id": model.pk, "o": "1"})

    assert response.status_code == 200
    assert f"model_id={model.pk}" in response.context["cl"].get_query_string({"p": 2})


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"model_id": "999999"}, "model_id"),
        ({"model_id": "abc"}, "model_id"),
        ({"has_owner": "maybe"}, "has_owner"),
        ({"stranded_for": "-5"}, "stranded_for"),
    ],
)
def test_an_invalid_filterset_value_is_an_error_with_nothing_listed(admin_client, fleet, params, named):
    response = admin_client.get(DEVICES, params)

    assert response.status_code == 400
    assert listed(response) == []
    assert any(message.startswith("Filter not applied") and f"({named}):" in message for message in errors(response))
    assert b"Filter not applied, nothing is listed." in response.content


@pytest.mark.parametrize("params", [{"state": "bogus"}, {"stranded": "maybe"}])
def test_a_sidebar_filter_refuses_a_value_it_does_not_offer(admin_client, fleet, params):
    response = admin_client.get(DEVICES, params)

    assert response.status_code == 400
    assert listed(response) == []
    assert any("is not one of the choices" in message for message in errors(response))


def test_a_sidebar_filter_value_it_offers_still_works(admin_client, fleet):
    _, enabled, _ = fleet

    response = admin_client.get(DEVICES, {"state": "notactivated"})

    assert response.status_code == 200
    assert [d.pk for d in response.context["cl"].result_list] == [enabled.pk]


def test_conax_requests_filter_by_their_filterset_and_refuse_a_bad_date(admin_client):
    completed = ProvisioningRequestFactory(life_cycle_state="COMPLETED", executed_date=timezone.now())
    ProvisioningRequestFactory(life_cycle_state="PENDING")

    narrowed = admin_client.get(REQUESTS, {"life_cycle_state": "COMPLETED", "priority": "REGULAR"})
    bad_date = admin_client.get(REQUESTS, {"created_after": "2026-02-30"})
    free_text = admin_client.get(REQUESTS, {"smartcard_ca_id": "no-such-card"})

    assert narrowed.status_code == 200
    assert [r.pk for r in narrowed.context["cl"].result_list] == [completed.pk]
    assert bad_date.status_code == 400
    assert listed(bad_date) == []
    assert any("(created_after):" in message for message in errors(bad_date))
    assert free_text.status_code == 200  # a free-text sidebar filter: any value is one to look for
    assert listed(free_text) == []


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/admin/provisioning/command/", {"state": "NOPE"}),
        ("/admin/components/provisioningcomponent/", {"component_type": "9"}),
        ("/admin/components/deviceprovisioning/", {"device_id": "0"}),
        ("/admin/devices/devicemodel/", {"vendor_id": "x"}),
    ],
)
def test_every_app_admin_refuses_an_invalid_filterset_value(admin_client, path, params):
    response = admin_client.get(path, params)

    assert response.status_code == 400
    assert any(message.startswith("Filter not applied") for message in errors(response))


@pytest.mark.parametrize(
    ("params", "status", "following"),
    [({"state": "FAILED"}, 200, True), ({"state": "NOPE"}, 400, False)],
    ids=["empty-follows", "refused-does-not"],
)
def test_a_live_list_follows_when_empty_but_not_when_its_filter_was_refused(admin_client, params, status, following):
    """livelist.js follows a list with no rows (its first rows bring the table in); a refused filter lists nothing
    whatever happens, so that page says live updates are off instead of following."""
    response = admin_client.get("/admin/provisioning/command/", params)
    html = response.content.decode()

    assert response.status_code == status
    assert listed(response) == []
    assert 'id="result_list"' not in html
    assert ('id="live-list"' in html) is following
    assert ("Live updates: off (the filter was not applied)" in html) is not following
    assert ("Live updates: connecting" in html) is following


def test_catalog_admins_name_each_models_filterset_and_q_stays_the_admin_search(admin_client):
    """The catalog FilterSets have only ``q``, which on an admin list is the admin's own search (the same match)."""
    from django.contrib import admin

    from components.filters import ParameterFilter, ParameterGroupFilter, SensorFilter
    from components.models import Parameter, ParameterGroup, Sensor

    expected = {Sensor: SensorFilter, Parameter: ParameterFilter, ParameterGroup: ParameterGroupFilter}
    assert {model: admin.site._registry[model].get_filterset_class() for model in expected} == expected
    temperature = Sensor.objects.create(id=1, name="Temperature")
    Sensor.objects.create(id=2, name="Humidity")

    sensors = admin_client.get("/admin/components/sensor/", {"q": "temp"})

    assert sensors.status_code == 200
    assert [s.pk for s in sensors.context["cl"].result_list] == [temperature.pk]


@pytest.mark.parametrize(
    ("url", "params"),
    [
        (DEVICES, {"created_at__gt": "9999-12-31T23:59:59-14:00"}),
        (DEVICES, {"created_at": "0001-01-01T00:00:00+14:00"}),
        (DEVICES, {"created_at__in": "2020-01-01T00:00:00Z,9999-12-31T23:59:59-14:00"}),
        (DEVICES, {"created_at__range": "0001-01-01T00:00:00+14:00,2020-01-01T00:00:00Z"}),
        (DEVICES, {"created_at__year": "10000"}),
        (DEVICES, {"created_at__year__gte": "0"}),
        (REQUESTS, {"executed_date__lte": "0001-01-01T00:00:00+14:00"}),
        ("/admin/auth/user/", {"date_joined__gte": "9999-12-31T23:59:59-14:00"}),
        ("/admin/auditlog/logentry/", {"timestamp__lt": "0001-01-01T00:00:00+14:00"}),
    ],
    ids=["gt", "exact", "in", "range", "year", "year-gte", "request", "users", "audit"],
)
def test_a_date_the_database_cannot_hold_is_refused_on_every_admin_list(admin_client, fleet, url, params):
    """Django's own refusal ("?e=1"), on PostgreSQL and SQLite alike: SQLite's adapter converts the value to the
    connection's zone (UTC), where these moments leave years 1-9999, and answered a 500."""
    response = admin_client.get(url, params)

    assert (response.status_code, response.get("Location")) == (302, f"{url}?e=1")


@pytest.mark.parametrize(
    "params",
    [{"created_at__gt": "9999-12-31T23:59:59+14:00"}, {"created_at__year": "9999"}, {"created_at__lt": "0001-01-02"}],
    ids=["late-but-representable", "year-9999", "early-but-representable"],
)
def test_an_extreme_date_the_database_can_hold_still_filters(admin_client, fleet, params):
    response = admin_client.get(DEVICES, params)

    assert response.status_code == 200
    assert listed(response) == []
