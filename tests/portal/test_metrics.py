"""Prometheus metrics (portal/kernel/metrics.py, portal/metrics.py): what is counted, who may scrape, that the scrape
agrees with /readyz, and that several real processes (gunicorn workers, Celery prefork children) each count and
the scrape shows the sum."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from devices import services as device_services
from tests.conftest import REPO, clean_env, free_port, subprocess_database_url, wait_serving
from tests.factories import DeviceFactory, DeviceModelFactory
from tests.waiting import wait_for

URL = "/provision/activate"
FORM = "application/x-www-form-urlencoded"
HEADERS = {"Content-Type": FORM}
GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "python:portal.gunicorn_conf", "portal.wsgi:application"]
CELERY = [sys.executable, "-m", "celery", "-A", "portal", "worker", "--loglevel", "WARNING"]
TOKEN = "m" * 8 + uuid.uuid4().hex  # 40 characters


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(scraped: dict, name: str, **labels: str) -> float:
    return scraped.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200, response.content
    return samples(response.content.decode())


def activate(client, serial: str):
    return client.generic("POST", URL, f"vendor=acme&model=stb-4k&sn={serial}", content_type=FORM)


@pytest.fixture
def device(db):
    return device_services.device_enable(
        device=DeviceFactory(model__vendor__name="acme", model__name="stb-4k", serial_number="SN-M1")
    )


@pytest.mark.django_db
def test_activations_are_counted_by_outcome_and_timed(client, device, settings):
    settings.ACTIVATION_RATE_LIMIT_SERIAL = "3/60"
    before = scrape(client)

    statuses = [activate(client, s).status_code for s in ("SN-M1", "SN-M1", "SN-NONE", "SN-M1", "SN-M1")]

    after = scrape(client)
    assert statuses == [200, 409, 404, 409, 429]

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("portal_activations_total", outcome="activated") == 1
    assert delta("portal_activations_total", outcome="already_activated") == 2
    assert delta("portal_activations_total", outcome="unknown_serial") == 1
    assert delta("portal_activations_total", outcome="rate_limited") == 1
    assert delta("portal_activation_duration_seconds_count") == 5
    assert delta("portal_rate_limit_refusals_total", limit="activate-sn") == 1


@pytest.mark.django_db
def test_the_scrape_agrees_with_readyz(client):
    ready = client.get("/readyz").json()
    scraped = scrape(client)

    for name, result in ready["checks"].items():
        if result != "not configured":
            assert value(scraped, "portal_check_up", check=name) == (1.0 if result == "ok" else 0.0), name
    assert value(scraped, "portal_workers_seen") == ready["workers"]["workers_seen"]
    assert ("portal_cas_oldest_due_request_age_seconds", ()) in scraped


@pytest.mark.django_db
def test_with_a_token_only_the_bearer_of_it_may_scrape(client, settings):
    settings.METRICS_TOKEN = TOKEN

    missing = client.get("/metrics")
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer " + TOKEN[:-1] + "x")
    basic = client.get("/metrics", HTTP_AUTHORIZATION="Basic " + TOKEN)
    right = client.get("/metrics", HTTP_AUTHORIZATION="Bearer " + TOKEN)

    assert (missing.status_code, wrong.status_code, basic.status_code) == (401, 401, 401)
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert right.status_code == 200 and b"portal_activations" in right.content


@pytest.mark.django_db
def test_production_without_a_token_serves_no_metrics(client, settings):
    settings.PRODUCTION, settings.METRICS_TOKEN = True, ""

    response = client.get("/metrics")

    assert response.status_code == 403 and b"METRICS_TOKEN" in response.content


# --- several real processes --------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_gunicorn_workers_and_two_worker_children_each_count_and_the_scrape_shows_the_sum(tmp_path, redis_url):
    from conax import services as conax_services
    from conax.models import ProvisioningRequest
    from portal.celery import app as celery_app
    from tests.conax.factories import ServiceFactory, SmartcardFactory, SubscriptionFactory

    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    model = DeviceModelFactory(vendor__name="acme", name="stb-4k")
    for n in range(12):
        device_services.device_enable(device=DeviceFactory(model=model, serial_number=f"SN-MP{n:02d}"))
    service = ServiceFactory(code="MP", service_ca_id="MP-CA")
    subscription = SubscriptionFactory(number="S-MP", services=[service])
    cards = SmartcardFactory.create_batch(6, subscription=subscription)
    for card in cards:
        draft = conax_services.subscription_change(
            type="ADD_SUBSCRIPTIONS", subscription=subscription, service=service, smartcard=card
        )
        conax_services.request_create(draft=draft, actor=conax_services.Actor(None), options=conax_services.Options())

    env = clean_env(
        PORTAL_VAR_DIR=str(tmp_path),
        DATABASE_URL=subprocess_database_url(),
        DATABASE_CONN_MAX_AGE="0",
        CELERY_BROKER_URL=redis_url,
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        METRICS_TOKEN=TOKEN,
        ACTIVATION_RATE_LIMIT_IP="0",
    )
    port = free_port()
    web = subprocess.Popen(
        [*GUNICORN, "--bind", f"127.0.0.1:{port}", "--workers", "2"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    queue = f"mp-{uuid.uuid4().hex[:8]}"
    worker = subprocess.Popen(
        [*CELERY, "-Q", f"express,regular,{queue}", "-c", "2", "--without-mingle", "--without-gossip"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_serving(base, web)
        # each activation on a new connection: gunicorn's two workers share the listening socket
        answers = [
            httpx.post(
                f"{base}{URL}", content=f"vendor=acme&model=stb-4k&sn=SN-MP{n:02d}", headers={"Content-Type": FORM}
            )
            for n in range(12)
        ]
        assert [a.status_code for a in answers] == [200] * 12
        with celery_app.connection_for_write(redis_url) as conn:
            celery_app.send_task("conax.tasks.requests_dispatch", queue="regular", connection=conn)
        wait_for(lambda: not ProvisioningRequest.objects.filter(life_cycle_state="PENDING").exists(), timeout=60)

        def scraped() -> dict:
            got = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
            assert got.status_code == 200
            return samples(got.text)

        result = scraped()
        counted_by = {name.rsplit("_", 1)[1] for name in os.listdir(metrics_dir) if name.startswith("counter_")}
    finally:
        web.terminate()
        worker.terminate()
        web.wait(timeout=20)
        worker.wait(timeout=20)

    assert value(result, "portal_activations_total", outcome="activated") == 12
    assert value(result, "portal_activation_duration_seconds_count") == 12
    assert value(result, "portal_cas_requests_total", type="ADD_SUBSCRIPTIONS", outcome="completed") == 6
    assert value(result, "portal_cas_request_pending_seconds_count", type="ADD_SUBSCRIPTIONS") == 6
    # the counts come from at least three processes: both gunicorn workers and a Celery child
    assert len(counted_by) >= 3, counted_by


@pytest.mark.django_db(transaction=True)
async def test_open_websockets_are_counted_while_they_are_open(client, customer_user):
    from asgiref.sync import sync_to_async

    from tests.portal.test_live_consumers import ORIGIN, connect, cookie_for

    def counted() -> float:  # the per-process files alone, summed as the scrape sums them (no database here)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        found = samples(generate_latest(registry).decode())
        return found.get(("portal_websocket_connections", (("path", "/ws/my/"),)), 0.0)

    cookie = await sync_to_async(cookie_for)(client, customer_user)
    before = counted()

    ws, connected, _ = await connect("/ws/my/", ORIGIN, cookie)
    during = counted()
    await ws.disconnect()
    after = counted()

    assert connected is True
    assert (during - before, after - before) == (1.0, 0.0)


@pytest.mark.django_db
def test_the_grafana_dashboard_queries_only_series_the_portal_exposes(client):
    import json
    import re

    from tests.conftest import REPO

    dashboard = json.loads((REPO / "docs" / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    from prometheus_client.metrics import MetricWrapperBase

    from portal.kernel import metrics, services

    services.heartbeat_record(hostname="worker@test")  # the heartbeat age is there once a worker was seen
    # what every process declares (a labelled series appears in a scrape once counted) and what the scrape reads
    declared = {m._name for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)}
    scraped = {family.name for family in text_string_to_metric_families(client.get("/metrics").content.decode())}
    exposed = declared | scraped
    # a counter's family is named without _total, a histogram's without _bucket
    queried = {re.sub(r"_(total|bucket)$", "", name) for expr in exprs for name in re.findall(r"\bportal_\w+", expr)}

    assert len(dashboard["panels"]) >= 10
    assert queried - exposed == set()
