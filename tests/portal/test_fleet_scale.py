"""The dashboard at 100 000 devices (bench/dashboard.py builds the fleet, and times it): a fixed query budget."""

from __future__ import annotations

import pytest
from django.urls import reverse

from bench.dashboard import build_fleet
from tests.factories import StaffFactory

# bench/dashboard.py builds the fleet in PostgreSQL's SQL (generate_series, intervals): the production database.
pytestmark = [pytest.mark.django_db, pytest.mark.slow, pytest.mark.postgres]
DEVICES = 100_000
# The page's queries whatever the fleet's size: session and user, support group, the app list's permissions, recent
# actions, one aggregate per table (devices, boxes, provision types, commands, requests), the two failure lists, the
# three chart series, /readyz's database check and the workers' heartbeat (two).
QUERY_BUDGET = 25


@pytest.fixture
def big_fleet():
    build_fleet(DEVICES)


def test_the_dashboard_stays_under_its_query_budget_at_100k_devices(client, big_fleet, django_assert_max_num_queries):
    client.force_login(StaffFactory(username="support-1"))

    with django_assert_max_num_queries(QUERY_BUDGET):
        page = client.get(reverse("admin:index"))
    with django_assert_max_num_queries(QUERY_BUDGET):
        panel = client.get(reverse("admin-fleet-panel"), {"range": "7d"})

    assert page.status_code == panel.status_code == 200
    devices = {t.key: t.count for t in page.context["fleet"].devices}
    assert page.context["fleet"].devices_total.count == DEVICES
    assert devices["activated"] == DEVICES // 2
    assert devices["disabled"] == DEVICES // 10
