"""The fleet dashboard on the admin index (portal/fleet.py, templates/admin/index.html): every count is a link to the
admin list of exactly those rows, the staff API answers the same numbers, support staff see it, and the charts count
what happened per hour or per day."""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.urls import reverse
from django.utils import timezone

from conax.models import ProvisioningRequest
from devices import services as device_services
from devices.models import ActivationAttempt, Device
from portal import fleet
from provisioning.models import Command, SetTopBox, TypeStatus
from tests.conax.factories import ProvisioningRequestFactory
from tests.factories import DeviceFactory, DeviceModelFactory, StaffFactory

pytestmark = pytest.mark.django_db
INDEX = reverse("admin:index")
PANEL = reverse("admin-fleet-panel")
API = "/api/v1/fleet/summary/"


class Links(HTMLParser):
    """Every ``data-tally`` element of the panel: its link and the count it shows (the last number in it)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, dict] = {}
        self._open: list[str | None] = []  # the tally each open element belongs to
        self._current: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "data-tally" in attrs:
            self._current = attrs["data-tally"]
            self.found[self._current] = {"url": None, "text": ""}
        if tag == "a" and self._current and self.found[self._current]["url"] is None:
            self.found[self._current]["url"] = attrs["href"].replace("&amp;", "&")
        self._open.append(self._current if "data-tally" in attrs else None)

    def handle_endtag(self, tag):
        if self._open and self._open.pop() is not None:
            self._current = None

    def handle_data(self, data):
        if self._current:
            self.found[self._current]["text"] += data

    def counts(self) -> dict[str, tuple[str, int]]:
        return {key: (v["url"], int(v["text"].split()[-1])) for key, v in self.found.items()}


def shown(response) -> dict[str, tuple[str, int]]:
    parser = Links()
    parser.feed(response.content.decode())
    return parser.counts()


def _ago(**kwargs) -> timezone.datetime:
    return timezone.now() - timedelta(**kwargs)


@pytest.fixture
def support(client):
    client.force_login(StaffFactory(username="support-1"))
    return client


@pytest.fixture
def fleet_rows():
    """Some of everything, in every state and age bucket, with rows outside the 24 h window."""
    model = DeviceModelFactory(vendor__name="acme", name="stb-1")
    other = DeviceModelFactory(vendor__name="globex", name="gw-9")
    pending = device_services.device_enable(device=DeviceFactory(model=model, serial_number="PEND-1"))
    lapsed = device_services.device_enable(device=DeviceFactory(model=model, serial_number="LAPSED-1"))
    Device.objects.filter(pk=lapsed.pk).update(activation_expires_at=_ago(minutes=1))  # expired, not yet persisted
    DeviceFactory(model=other, serial_number="NEW-1")
    stranded = DeviceFactory(model=model, serial_number="STRAND-1", state="activated", activated_at=_ago(hours=2))
    used = DeviceFactory(
        model=other,
        serial_number="USED-1",
        state="activated",
        activated_at=_ago(days=2),
        cik_digest="d" * 64,
        cik_issued_at=_ago(days=2),
        cik_first_used_at=_ago(days=2),
    )
    DeviceFactory(model=other, serial_number="OFF-1", state="disabled", disabled_at=_ago(hours=1))
    boxes = [
        SetTopBox.objects.create(device=pending, thunder_host="10.0.0.1", last_event_at=_ago(minutes=5)),
        SetTopBox.objects.create(device=lapsed, thunder_host="10.0.0.2", last_event_at=_ago(hours=3)),
        SetTopBox.objects.create(device=stranded, thunder_host="10.0.0.3", last_event_at=_ago(days=3)),
        SetTopBox.objects.create(device=used, thunder_host="10.0.0.4"),
    ]
    now = timezone.now()
    TypeStatus.objects.create(box=boxes[0], provision_type="HARDWARE", state="PROVISIONED", refreshed_at=now)
    TypeStatus.objects.create(box=boxes[1], provision_type="HARDWARE", state="CORRUPTED", refreshed_at=now)
    TypeStatus.objects.create(box=boxes[0], provision_type="CRYPTANIUM", state="IN_PROGRESS", refreshed_at=now)
    box = boxes[0]
    Command.objects.create(box=box, kind="refresh", state="SUCCEEDED", finished_at=_ago(minutes=30))
    Command.objects.create(box=box, kind="refresh", state="FAILED", finished_at=_ago(minutes=20), last_error="timeout")
    Command.objects.create(box=box, kind="refresh", state="QUEUED", attempts=2)  # retrying
    Command.objects.create(box=box, kind="refresh", state="QUEUED")
    old = Command.objects.create(box=box, kind="refresh", state="FAILED", finished_at=_ago(days=2))
    Command.objects.filter(pk=old.pk).update(created_at=_ago(days=2))
    ProvisioningRequestFactory(life_cycle_state="COMPLETED", executed_date=_ago(minutes=10))
    rejected = {"executed_date": _ago(minutes=5), "error_code": "E_CARD", "error_description": "card unknown"}
    ProvisioningRequestFactory(life_cycle_state="REJECTED", **rejected)
    ProvisioningRequestFactory(life_cycle_state="PENDING", attempts=1)
    ProvisioningRequestFactory(life_cycle_state="PENDING")
    stale = ProvisioningRequestFactory(life_cycle_state="REJECTED", executed_date=_ago(days=3))
    ProvisioningRequest.objects.filter(pk=stale.pk).update(created_date=_ago(days=3))
    for outcome, age in [("activated", 1), ("activated", 2), ("unknown_serial", 2), ("expired", 30)]:
        attempt = ActivationAttempt.objects.create(serial_number="X", outcome=outcome)
        ActivationAttempt.objects.filter(pk=attempt.pk).update(at=_ago(hours=age))
    return model, other


EXPECTED = {
    "devices.notadded": 1,
    "devices.notactivated": 1,
    "devices.activated": 2,
    "devices.expired": 1,
    "devices.disabled": 1,
    "devices.stranded": 1,
    "devices.total": 6,
    "boxes.1h": 1,
    "boxes.1d": 1,
    "boxes.silent": 1,
    "boxes.never": 1,
    "boxes.total": 4,
    "provisioning.0.PROVISIONED": 1,
    "provisioning.0.CORRUPTED": 1,
    "provisioning.0.IN_PROGRESS": 0,
    "provisioning.0.NOT_PROVISIONED": 0,
    "provisioning.0.none": 2,
    "provisioning.1.IN_PROGRESS": 1,
    "provisioning.1.none": 3,
    "commands.SUCCEEDED": 1,
    "commands.FAILED": 1,
    "commands.QUEUED": 2,
    "commands.SENT": 0,
    "commands.retrying": 1,
    "commands.total": 4,
    "requests.PENDING": 2,
    "requests.COMPLETED": 1,
    "requests.REJECTED": 1,
    "requests.retried": 1,
    "requests.total": 4,
}


def test_the_dashboard_shows_each_count(support, fleet_rows):
    response = support.get(INDEX)

    assert response.status_code == 200
    counts = {key: count for key, (_, count) in shown(response).items()}
    assert {key: counts[key] for key in EXPECTED} == EXPECTED
    unlisted = {key: counts[key] for key in counts.keys() - EXPECTED.keys()}
    assert unlisted == {f"provisioning.1.{state}": 0 for state in ("NOT_PROVISIONED", "PROVISIONED", "CORRUPTED")}


def test_every_link_on_the_dashboard_lists_as_many_rows_as_it_shows(support, fleet_rows):
    links = shown(support.get(INDEX))

    for key, (url, count) in links.items():
        response = support.get(url)
        assert response.status_code == 200, (key, url)
        assert response.context["cl"].result_count == count, (key, url)


def test_the_failure_list_names_the_latest_failures_with_links(support, fleet_rows):
    html = support.get(INDEX).content.decode()

    assert html.count('data-failure="command"') == 1  # the one of two days ago is past the window
    assert html.count('data-failure="request"') == 1
    failed = Command.objects.get(state="FAILED", last_error="timeout")
    rejected = ProvisioningRequest.objects.get(error_code="E_CARD")
    assert reverse("admin:provisioning_command_change", args=[failed.pk]) in html
    assert reverse("admin:conax_provisioningrequest_change", args=[rejected.pk]) in html
    assert "E_CARD card unknown" in html


def test_the_api_answers_the_dashboards_counts(support, staff_api, fleet_rows):
    on_page = shown(support.get(INDEX))

    body = staff_api.get(API).json()

    from_api = {f"devices.{t['key']}": (t["url"], t["count"]) for t in body["devices"]}
    from_api |= {f"boxes.{t['key']}": (t["url"], t["count"]) for t in body["boxes_heard"]}
    for i, row in enumerate(body["provisioning"]):
        from_api |= {f"provisioning.{i}.{t['key']}": (t["url"], t["count"]) for t in row["states"]}
    from_api |= {f"commands.{t['key']}": (t["url"], t["count"]) for t in body["commands"]}
    from_api |= {f"requests.{t['key']}": (t["url"], t["count"]) for t in body["requests"]}
    assert from_api == on_page
    assert [f["kind"] for f in body["failures"]] == ["request", "command"]
    assert {c["name"]: c["result"] for c in body["checks"]}["database"] == "ok"
    assert [q["name"] for q in body["queues"]] == ["express", "regular", "devices"]


def test_the_api_charts_count_per_hour_and_refuse_an_unknown_range(staff_api, fleet_rows):
    body = staff_api.get(API).json()
    refused = staff_api.get(API, {"range": "1y"})

    activations = next(c for c in body["charts"] if c["key"] == "activations")
    totals = {s["key"]: s["total"] for s in activations["series"]}
    assert len(activations["buckets"]) == 24
    assert (totals["activated"], totals["unknown_serial"], totals["expired"]) == (2, 1, 0)  # 30 h ago: outside
    assert refused.status_code == 400
    assert "range" in refused.json()


def test_the_api_is_for_support_staff_only(api_client, customer_user):
    api_client.force_authenticate(customer_user)

    assert api_client.get(API).status_code == 403


def test_the_week_charts_count_per_day(support, fleet_rows):
    response = support.get(INDEX, {"range": "7d"})

    charts = {chart.key: chart for chart, _ in response.context["fleet_charts"]}
    assert response.status_code == 200
    assert len(charts["activations"].buckets) == 7
    assert sum(charts["activations"].values["expired"]) == 1  # 30 h ago is in the week
    assert sum(charts["commands"].values["FAILED"]) == 2
    assert sum(charts["requests"].values["REJECTED"]) == 2


def test_an_unknown_range_is_a_400_that_says_so(support, fleet_rows):
    response = support.get(INDEX, {"range": "forever"})

    assert response.status_code == 400
    assert "Range &#x27;forever&#x27; is not one of the ranges (24h, 7d)" in response.content.decode()


def test_the_charts_are_svg_with_a_title_a_legend_and_a_table(support, fleet_rows):
    html = support.get(INDEX).content.decode()

    assert html.count('<svg viewBox="0 0 1000 180" role="img"') == 3
    title = "Activation attempts by outcome, last 24 hours, per hour: 3 in all"
    assert f'<title id="chart-activations-title">{title}' in html
    assert 'class="bar tone-ok"' in html and 'class="bar tone-bad3"' in html
    assert "Unknown serial (404): <strong>1</strong>" in html
    assert "<summary>Table</summary>" in html


def test_the_panel_is_the_dashboards_live_part_for_support_staff_only(client, support, fleet_rows):
    panel, page = support.get(PANEL), support.get(INDEX)
    client.logout()
    plain_staff = StaffFactory(username="plain-staff", support_group=False)
    plain_staff.groups.clear()
    client.force_login(plain_staff)
    refused = client.get(PANEL)
    index = client.get(INDEX)

    assert panel.status_code == 200
    assert shown(panel) == shown(page)
    assert refused.status_code == 403
    assert index.status_code == 200
    assert "Fleet at a glance" not in index.content.decode()  # the stock index for staff outside support


def test_a_superuser_sees_the_dashboard_too(admin_client, fleet_rows):
    response = admin_client.get(INDEX)

    assert response.status_code == 200
    assert "Fleet at a glance" in response.content.decode()
    assert reverse("admin:devices_device_changelist") in response.content.decode()  # the app list is still there


def test_the_summary_reads_each_table_once(support, fleet_rows, django_assert_max_num_queries):
    with django_assert_max_num_queries(20):
        fleet.summary()


def test_a_broker_that_is_down_is_named_and_its_queues_unknown(support, monkeypatch):
    from portal.celery import app as celery_app

    monkeypatch.setitem(celery_app.conf, "broker_url", "redis://127.0.0.1:9/0")  # nothing listens on port 9
    monkeypatch.setitem(celery_app.conf, "broker_transport", None)
    monkeypatch.setitem(celery_app.conf, "broker_write_url", None)

    summary = fleet.summary()
    response = support.get(INDEX)

    assert {check.name: check.result for check in summary.checks}["broker"].startswith("error: ")
    assert [queue.depth for queue in summary.queues] == [None, None, None]
    assert response.status_code == 200
    assert response.content.decode().count("unknown</span>") == 3
