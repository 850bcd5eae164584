"""Webhook deliveries against a real receiving HTTP server: the outbox, signatures, retries, dead letter, order.

``delivery_send`` (what the Celery task calls) is called directly here; ``test_worker.py`` runs the same in real
worker processes."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from devices import services as device_services
from devices.models import Device
from tests.factories import DeviceFactory
from tests.webhooks.support import SECRET, endpoint
from webhooks import services, signing
from webhooks.choices import DeliveryState
from webhooks.models import Delivery, Endpoint

pytestmark = pytest.mark.django_db


def due_now() -> None:
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def send_all() -> list[str | None]:
    return [
        services.delivery_send(delivery_id=pk) for pk in Delivery.objects.order_by("pk").values_list("pk", flat=True)
    ]


def verify_as_the_docs_say(secret: str, header: str, body: bytes) -> bool:
    """docs/webhooks.md's verification snippet, as a receiver would copy it (no portal code)."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    mac = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, parts["v1"]) and abs(time.time() - int(parts["t"])) <= 300


def test_an_event_is_written_with_the_change_and_signed_on_the_wire(receiver):
    endpoint(receiver.url)
    device = device_services.device_enable(device=DeviceFactory(serial_number="SN-1"))

    device_services.device_disable(device=device)
    [state] = send_all()

    assert state == DeliveryState.DELIVERED
    [got] = receiver.received
    assert verify_as_the_docs_say(SECRET, got.headers["x-portal-signature"], got.body)
    assert signing.verify(SECRET, got.headers["x-portal-signature"], got.body, now=int(time.time()))
    assert not signing.verify(
        "another-secret-of-enough-length", got.headers["x-portal-signature"], got.body, int(time.time())
    )
    event = got.event
    assert (event["type"], event["data"]) == (
        "device.disabled",
        {"device_id": device.pk, "serial_number": "SN-1", "state": "disabled"},
    )
    assert got.headers["x-portal-event-id"] == event["id"] == str(Delivery.objects.get().event_id)
    delivery = Delivery.objects.get()
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (1, 204, "")
    assert delivery.last_latency_ms is not None


def test_a_rolled_back_change_leaves_no_event(receiver):
    endpoint(receiver.url)
    device = device_services.device_enable(device=DeviceFactory())

    with pytest.raises(RuntimeError), transaction.atomic():
        device_services.device_disable(device=device)
        raise RuntimeError

    assert not Delivery.objects.exists()


def test_an_activation_event_never_carries_the_cik(receiver):
    endpoint(receiver.url, "device.activated")
    device = device_services.device_enable(device=DeviceFactory(serial_number="SN-A"))

    cik = device_services.device_activate(
        vendor=device.model.vendor.name, model=device.model.name, serial="SN-A", remote_addr=None, user_agent=""
    )
    send_all()

    [got] = receiver.received
    assert got.event["data"] == {"device_id": device.pk, "serial_number": "SN-A", "state": "activated"}
    assert cik not in got.body.decode() and device_services.cik_digest(cik) not in got.body.decode()
    assert SECRET not in got.body.decode() and SECRET not in str(Endpoint.objects.values().get())


def test_only_active_endpoints_taking_the_type_get_it(receiver):
    endpoint(receiver.url, "device.disabled")
    services.endpoint_save(name="off", url=receiver.url, event_types=["device.disabled"], active=False, secret=SECRET)
    services.endpoint_save(name="other", url=receiver.url, event_types=["command.finished"], secret=SECRET)
    device = device_services.device_enable(device=DeviceFactory())

    device_services.device_disable(device=device)

    assert list(Delivery.objects.values_list("endpoint__name", flat=True)) == [f"crm-{receiver.url}"]


def test_a_500_is_retried_with_backoff_then_dead(receiver, settings):
    settings.WEBHOOK_MAX_ATTEMPTS, settings.WEBHOOK_RETRY_BASE_SECONDS = 3, 10
    receiver.mode = "fail"
    endpoint(receiver.url)
    device_services.device_disable(device=device_services.device_enable(device=DeviceFactory()))

    before = timezone.now()
    first = send_all()
    delivery = Delivery.objects.get()
    not_yet = send_all()  # not due: nothing sent
    due_now()
    second = send_all()
    after_second = Delivery.objects.get()
    due_now()
    third = send_all()

    assert (first, not_yet, second, third) == (["PENDING"], [None], ["PENDING"], ["DEAD"])
    assert timedelta(seconds=9) < delivery.next_attempt_at - before < timedelta(seconds=12)  # base
    assert after_second.next_attempt_at - timezone.now() > timedelta(seconds=18)  # base * 2
    dead = Delivery.objects.get()
    assert (dead.attempts, dead.last_status_code, dead.last_error) == (3, 500, "HTTP 500")
    assert len(receiver.received) == 3


def test_a_timeout_is_a_failure(receiver, settings):
    settings.WEBHOOK_TIMEOUT = 0.3
    receiver.mode, receiver.delay = "slow", 1.5
    endpoint(receiver.url)
    device_services.device_disable(device=device_services.device_enable(device=DeviceFactory()))

    assert send_all() == ["PENDING"]
    delivery = Delivery.objects.get()
    assert (delivery.last_status_code, delivery.last_error) == (None, "timed out")
    assert delivery.last_latency_ms < 1200


def test_a_redirect_is_not_followed(receiver):
    receiver.mode = "redirect"
    endpoint(receiver.url)
    device_services.device_disable(device=device_services.device_enable(device=DeviceFactory()))

    assert send_all() == ["PENDING"]
    assert receiver.elsewhere == []
    assert (Delivery.objects.get().last_status_code, Delivery.objects.get().last_error) == (
        302,
        "redirect to 302 not followed",
    )


def test_a_receiver_that_is_down_is_retried(settings):
    endpoint("http://127.0.0.1:9/hook")  # discard port: nothing listens
    device_services.device_disable(device=device_services.device_enable(device=DeviceFactory()))

    assert send_all() == ["PENDING"]
    assert Delivery.objects.get().last_error.startswith("ConnectError")


def test_one_objects_events_go_in_order_even_when_the_later_is_tried_first(receiver):
    endpoint(receiver.url)
    device = device_services.device_enable(device=DeviceFactory())
    device_services.device_disable(device=device)
    device_services.device_reenable(device=Device.objects.get(pk=device.pk))
    first, second = Delivery.objects.order_by("pk")

    early = services.delivery_send(delivery_id=second.pk)
    services.delivery_send(delivery_id=first.pk)
    late = services.delivery_send(delivery_id=second.pk)

    assert (early, late) == (None, "DELIVERED")
    assert [r.event["type"] for r in receiver.received] == ["device.disabled", "device.reenabled"]


def test_a_cik_regenerated_through_the_exosite_api_is_a_re_enable(receiver):
    endpoint(receiver.url)
    device = device_services.device_enable(device=DeviceFactory())
    model = device.model
    device_services.device_activate(
        vendor=model.vendor.name, model=model.name, serial=device.serial_number, remote_addr=None, user_agent=""
    )

    device_services.device_regenerate(device=Device.objects.get(pk=device.pk))
    send_all()

    # The endpoint takes device.reenabled and device.disabled (not the activation before).
    types = [(r.event["type"], r.event["data"]["state"]) for r in receiver.received]
    assert types == [("device.reenabled", "notactivated")]


def test_attempts_are_counted_and_the_outbox_is_measured_in_the_metrics(receiver, client):
    from tests.portal.test_metrics import scrape, value

    endpoint(receiver.url)
    endpoint("http://127.0.0.1:9/hook")  # nothing listens on the discard port
    delivered = {"event_type": "device.disabled", "outcome": "delivered"}
    retry = {"event_type": "device.disabled", "outcome": "retry"}
    before = scrape(client)
    device_services.device_disable(device=device_services.device_enable(device=DeviceFactory()))
    waiting = scrape(client)
    send_all()
    after = scrape(client)

    assert (value(waiting, "portal_webhook_pending"), value(after, "portal_webhook_pending")) == (2, 1)
    assert value(waiting, "portal_webhook_oldest_pending_age_seconds") >= 0
    counted = [
        value(after, "portal_webhook_attempts_total", **o) - value(before, "portal_webhook_attempts_total", **o)
        for o in (delivered, retry)
    ]
    assert counted == [1, 1]
    assert (
        value(after, "portal_webhook_attempt_duration_seconds_count")
        - value(before, "portal_webhook_attempt_duration_seconds_count")
        == 2
    )


def test_redeliver_sends_the_same_event_again(receiver):
    endpoint(receiver.url)
    device_services.device_disable(device=device_services.device_enable(device=DeviceFactory()))
    send_all()

    assert services.deliveries_redeliver(ids=list(Delivery.objects.values_list("pk", flat=True))) == 1
    send_all()

    assert len(set(receiver.event_ids())) == 1 and len(receiver.received) == 2


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        pytest.param({"url": "ftp://x/"}, "INVALID_ENDPOINT", id="scheme"),
        pytest.param({"event_types": ["device.exploded"]}, "INVALID_ENDPOINT", id="type"),
        pytest.param({"secret": "short"}, "INVALID_ENDPOINT", id="secret"),
    ],
)
def test_bad_endpoints_are_refused(changes, code):
    from webhooks.exceptions import InvalidEndpoint

    values = {"name": "n", "url": "https://crm.example/hook", "event_types": ["device.disabled"], "secret": SECRET}
    with pytest.raises(InvalidEndpoint):
        services.endpoint_save(**(values | changes))
    assert not Endpoint.objects.exists()


def test_a_finished_conax_request_is_an_event_about_its_smartcard(receiver, settings, staff_user):
    from conax import gateway, pipeline
    from conax import services as conax_services
    from tests.conax.factories import ServiceFactory, SmartcardFactory, SubscriptionFactory

    settings.CAS_GATEWAY_URL = "inprocess:"
    gateway.reset_gateway_cache()
    endpoint(receiver.url, "conax_request.finished")
    service = ServiceFactory(code="GOLD")
    card = SmartcardFactory(subscription=SubscriptionFactory(services=[service]))
    draft = conax_services.subscription_change(
        type="ADD_SUBSCRIPTIONS", subscription=card.subscription, service=service, smartcard=card
    )
    request = conax_services.request_create(
        draft=draft, actor=conax_services.Actor(None), options=conax_services.Options()
    )

    assert pipeline.request_process(number=request.pk) == "COMPLETED"
    gateway.reset_gateway_cache()
    send_all()

    [got] = receiver.received
    assert got.event["type"] == "conax_request.finished"
    assert got.event["data"] == {
        "number": request.pk,
        "id": request.uid,
        "type": "ADD_SUBSCRIPTIONS",
        "life_cycle_state": "COMPLETED",
        "smartcard_id": card.pk,
        "error_code": None,
    }
    assert Delivery.objects.get().object_key == f"smartcard:{card.pk}"


def test_changed_components_are_an_event_per_device(receiver, staff_user):
    from components import services as component_services
    from components.choices import ActiveStatus, ComponentType
    from tests.components.support import catalog_load

    catalog_load()
    endpoint(receiver.url, "component.changed")
    device = DeviceFactory()
    record = component_services.provisioning_for_device(device=device)

    component_services.components_upsert(
        user=staff_user,
        provisioning_id=record.pk,
        component_type=ComponentType.SENSOR,
        component_ids=[1],
        active_status=ActiveStatus.ACTIVE,
    )
    send_all()

    assert [r.event["data"] for r in receiver.received] == [{"device_id": device.pk}]


def test_a_command_finishing_on_a_real_box_is_an_event_about_its_device(receiver):
    from provisioning import services as provisioning_services
    from provisioning.simulator import FleetThread

    endpoint(receiver.url, "command.finished")
    device = device_services.device_enable(device=DeviceFactory(serial_number="SN-C"))
    cik = device_services.device_activate(
        vendor=device.model.vendor.name, model=device.model.name, serial="SN-C", remote_addr=None, user_agent=""
    )
    with FleetThread(1) as fleet:
        host, port = fleet.boxes[0].address.rsplit(":", 1)
        box = provisioning_services.box_register(device=device, host=host, port=int(port))
        command = provisioning_services.command_create(box=box, kind="refresh", params={})
        assert Delivery.objects.count() == 0  # queued is no event: finished is
        assert provisioning_services.command_run(command_id=command.pk) == "SUCCEEDED"
    send_all()

    [got] = receiver.received
    assert got.event["type"] == "command.finished"
    assert got.event["data"] == {
        "command_id": command.pk,
        "device_id": device.pk,
        "kind": "refresh",
        "state": "SUCCEEDED",
        "error": None,
    }
    assert Delivery.objects.get().object_key == f"device:{device.pk}"
    body = got.body.decode()
    assert cik not in body and device_services.cik_digest(cik) not in body and SECRET not in body


def test_no_query_reads_the_endpoints_while_they_are_unchanged(receiver):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def endpoint_reads(action) -> int:
        with CaptureQueriesContext(connection) as seen:
            action()
        return sum("webhooks_endpoint" in q["sql"] for q in seen.captured_queries)

    devices = [device_services.device_enable(device=DeviceFactory()) for _ in range(3)]
    assert endpoint_reads(lambda: device_services.device_disable(device=devices[0])) == 1  # this process's first
    assert endpoint_reads(lambda: device_services.device_disable(device=devices[1])) == 0
    assert Delivery.objects.count() == 0

    endpoint(receiver.url, "device.disabled")  # its save makes the processes re-read
    assert endpoint_reads(lambda: device_services.device_disable(device=devices[2])) == 1
    assert Delivery.objects.count() == 1
    services.endpoints_changed()  # what another process's endpoint change does to this one
    assert endpoint_reads(lambda: services.emit(event_type="device.disabled", events=[("device:0", {})])) == 1


@pytest.mark.django_db(transaction=True)
def test_no_transaction_or_row_lock_is_held_while_posting_and_a_lost_claim_records_nothing():
    import threading

    import psycopg
    from django.db import connection

    from tests.conftest import subprocess_database_url
    from tests.webhooks.support import Receiver

    slow = Receiver(mode="slow", delay=1.0).start()
    try:
        endpoint(slow.url, "device.disabled")
        device_services.device_disable(device=device_services.device_enable(device=DeviceFactory()))
        delivery = Delivery.objects.get()
        outcome: list[str | None] = []
        sender = threading.Thread(
            target=lambda: (outcome.append(services.delivery_send(delivery_id=delivery.pk)), connection.close())
        )
        sender.start()
        with psycopg.connect(subprocess_database_url(), autocommit=True) as other:
            # While the POST is under way the row is claimed and not locked (NOWAIT would raise LockNotAvailable).
            sql = "SELECT claimed_until FROM webhooks_delivery WHERE id = %s"
            for _ in range(100):
                if other.execute(sql, [delivery.pk]).fetchone()[0] is not None:
                    break
                time.sleep(0.02)
            claimed = other.execute(f"{sql} FOR UPDATE NOWAIT", [delivery.pk]).fetchone()[0]
            assert claimed is not None and not slow.received
            # Another sender takes it over (as after a lease ran out).
            other.execute(
                "UPDATE webhooks_delivery SET claimed_until = now() + interval '1 hour' WHERE id = %s", [delivery.pk]
            )
        sender.join(timeout=10)
    finally:
        slow.stop()

    assert outcome == [None]  # its claim was taken over: the other sender's outcome is the one to record
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == (DeliveryState.PENDING, 0)
