"""The whole integrator flow over real HTTP, with the staff REST API and the CRM.COM API only: a service, a
subscription and a smartcard fed through ``/api/v1/conax/``, ``add_subscriptions`` raised through ``/crmapi/``, the
request COMPLETED by a real Celery worker against the CAS simulator, and the entitlement read back as active.

The portal is the embedded default's web server process (``start_embedded_server``) on the test database; the worker
is a real ``celery worker`` process on its own Redis database."""

from __future__ import annotations

import httpx
import pytest
import redis
from django.conf import global_settings

from conax.simulator import CasServerThread
from tests.conftest import kill_worker, start_embedded_server, start_worker
from tests.factories import PASSWORD, StaffFactory
from tests.waiting import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
CRM = "/crmapi/rest/v2/"


@pytest.fixture
def broker(redis_url):
    url = redis_url.rsplit("/", 1)[0] + "/12"
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()


def test_an_integrator_feeds_the_catalog_raises_a_request_and_sees_the_entitlement(tmp_path, broker, settings):
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS  # the server's own hashers
    StaffFactory(username="billing")
    with CasServerThread(auto_register=True) as head_end:
        base, server = start_embedded_server(tmp_path / "web", CELERY_BROKER_URL=broker)
        worker = start_worker(
            tmp_path / "worker", broker, "express,regular", concurrency=1, CAS_GATEWAY_URL=head_end.url
        )
        try:
            with httpx.Client(base_url=base, timeout=10) as http:
                entitlement = _flow(http)
        finally:
            kill_worker(worker)
            server.terminate()
            server.wait(timeout=20)
        card = head_end.simulator.card("CA-0001")

    assert entitlement["active"] is True
    assert (entitlement["service"], entitlement["smartcard"], entitlement["subscription"]) == (
        "GOLD",
        "SC-0001",
        "S-0001",
    )
    assert card["entitlements"] == ["GOLD-CA"]


def _flow(http: httpx.Client) -> dict:
    token = http.post("/api/v1/auth/token/", json={"username": "billing", "password": PASSWORD}).json()["token"]
    staff = {"Authorization": f"Token {token}"}

    def create(path: str, body: dict) -> dict:
        response = http.post(f"/api/v1/conax/{path}/", json=body, headers=staff)
        assert response.status_code == 201, response.text
        return response.json()

    service = create("services", {"code": "GOLD", "service_ca_id": "GOLD-CA", "name": "Gold package"})
    subscription = create("subscriptions", {"number": "S-0001", "service_ids": [service["id"]]})
    card = create("smartcards", {"serial_number": "SC-0001", "ca_id": "CA-0001", "subscription_id": subscription["id"]})

    login = {"username": "billing", "password": PASSWORD, "organisation": "portal"}
    crm_token = http.post(CRM + "authentication/token", json=login).json()["data"]["token"]
    body = {
        "token": crm_token,
        "subscription_identifier": {"number": "S-0001"},
        "service_identifier": {"code": "GOLD"},
        "smartcard_identifier": {"serial_number": "SC-0001"},
        "process_immediately": 1,
    }
    created = http.post(CRM + "conax_web_services/provisioning_requests/add_subscriptions", json=body).json()
    assert created["status"]["code"] == "OK", created["status"]
    number = created["data"]["number"]

    def state() -> str:
        query = {"token": crm_token, "number": number}
        answer = http.get(CRM + "conax_web_services/provisioning_requests/show", params=query).json()
        return answer["data"]["life_cycle_state"]

    wait_for(lambda: state() == "COMPLETED", timeout=60, interval=0.5, message=lambda: f"request {number}: {state()}")
    rows = http.get("/api/v1/conax/entitlements/", params={"smartcard_id": card["id"]}, headers=staff).json()
    [entitlement] = rows["results"]
    return entitlement
