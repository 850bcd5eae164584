"""Staff REST API for conditional access: collections, filters, query counts, writes through conax.services."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry

from conax import services
from conax.choices import RequestType
from conax.models import Service, SetTopBox, Smartcard, Subscription, Unit
from portal.kernel import services as portal_services
from portal.kernel.choices import TokenPurpose
from tests.conax.factories import (
    EntitlementFactory,
    PairingFactory,
    ServiceFactory,
    SetTopBoxFactory,
    SmartcardFactory,
    SubscriptionFactory,
    UnitFactory,
)
from tests.factories import CustomerFactory, DeviceFactory

pytestmark = pytest.mark.django_db
API = "/api/v1/conax/"
COLLECTIONS = ["units", "services", "subscriptions", "smartcards", "set-top-boxes", "pairings", "entitlements"]


def pending_request(card: Smartcard, service: Service) -> None:
    sub = card.subscription
    draft = services.subscription_change(
        type=RequestType.ADD_SUBSCRIPTIONS, subscription=sub, service=service, smartcard=card
    )
    services.request_create(draft=draft, actor=services.Actor(None), options=services.Options())


def catalog(n: int = 1) -> None:
    """``n`` of every kind, each card paired with a box that is an inventory device, with an entitlement."""
    for _ in range(n):
        UnitFactory()
        service = ServiceFactory()
        sub = SubscriptionFactory(services=[service, ServiceFactory()], customer=CustomerFactory())
        pairing = PairingFactory(subscription=sub)
        card = SmartcardFactory(subscription=sub, pairing=pairing)
        SetTopBoxFactory(subscription=sub, pairing=pairing, device=DeviceFactory())
        EntitlementFactory(smartcard=card, service=service)


# --- permissions, lists, query counts ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", COLLECTIONS)
def test_anonymous_gets_401_and_customers_get_403(api_client, customer_user, name):
    catalog()

    assert api_client.get(f"{API}{name}/").status_code == 401
    token = portal_services.token_issue(user=customer_user, purpose=TokenPurpose.STAFF_API).raw
    response = api_client.get(f"{API}{name}/", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 403
    assert "results" not in response.json()


@pytest.mark.parametrize("name", COLLECTIONS)
def test_list_query_count_does_not_grow_with_page_size(staff_api, django_assert_max_num_queries, name):
    catalog(6)
    with django_assert_max_num_queries(7) as small:  # token (its user, support group), count, page, prefetches
        assert len(staff_api.get(f"{API}{name}/?limit=1").json()["results"]) == 1
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert len(staff_api.get(f"{API}{name}/?limit=6").json()["results"]) == 6


def test_smartcard_shows_its_subscription_boxes_and_their_devices(staff_api):
    sub = SubscriptionFactory(number="S-1")
    pairing = PairingFactory(subscription=sub)
    card = SmartcardFactory(serial_number="SC-1", ca_id="CA-1", subscription=sub, pairing=pairing)
    device = DeviceFactory(serial_number="DEV-1")
    box = SetTopBoxFactory(serial_number="BOX-1", ca_id="BCA-1", subscription=sub, pairing=pairing, device=device)

    row = staff_api.get(f"{API}smartcards/{card.pk}/").json()

    assert row == {
        "id": card.pk,
        "serial_number": "SC-1",
        "ca_id": "CA-1",
        "alternative_code": None,
        "subscription_id": sub.pk,
        "subscription": "S-1",
        "pairing_id": pairing.pk,
        "set_top_boxes": [
            {
                "id": box.pk,
                "serial_number": "BOX-1",
                "ca_id": "BCA-1",
                "device": {"id": device.pk, "serial_number": "DEV-1"},
            }
        ],
    }


def test_subscription_shows_its_services(staff_api):
    a, b = ServiceFactory(code="A", service_ca_id="A-CA"), ServiceFactory(code="B", service_ca_id="B-CA")
    sub = SubscriptionFactory(number="S-9", services=[b, a])

    row = staff_api.get(f"{API}subscriptions/{sub.pk}/").json()

    assert row["services"] == [
        {"id": a.pk, "code": "A", "service_ca_id": "A-CA"},
        {"id": b.pk, "code": "B", "service_ca_id": "B-CA"},
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("subscription=S-A", ["SC-A1", "SC-A2"], id="subscription"),
        pytest.param("q=a2", ["SC-A2"], id="q"),
        pytest.param("ca_id=CA-SC-B1", ["SC-B1"], id="ca-id"),
        pytest.param("paired=true", ["SC-A1"], id="paired"),
        pytest.param("set_top_box=BOX-A", ["SC-A1"], id="box"),
    ],
)
def test_smartcard_filters(staff_api, query, expected):
    sub_a, sub_b = SubscriptionFactory(number="S-A"), SubscriptionFactory(number="S-B")
    pairing = PairingFactory(subscription=sub_a)
    SmartcardFactory(serial_number="SC-A1", subscription=sub_a, pairing=pairing)
    SmartcardFactory(serial_number="SC-A2", subscription=sub_a)
    SmartcardFactory(serial_number="SC-B1", subscription=sub_b)
    SetTopBoxFactory(serial_number="BOX-A", pairing=pairing, subscription=sub_a)

    response = staff_api.get(f"{API}smartcards/?{query}")

    assert [row["serial_number"] for row in response.json()["results"]] == expected


def test_fk_id_filters_and_state(staff_api):
    card = SmartcardFactory()
    on = EntitlementFactory(smartcard=card, active=True)
    EntitlementFactory(smartcard=card, active=False)
    EntitlementFactory()

    rows = staff_api.get(f"{API}entitlements/?smartcard_id={card.pk}&active=true").json()["results"]

    assert [row["id"] for row in rows] == [on.pk]


@pytest.mark.parametrize(
    "query",
    [
        "smartcards/?subscription_id=NOPE",
        "entitlements/?active=maybe",
        "set-top-boxes/?device_id=x",
        "services/?subscription_id=1",
    ],
)
def test_invalid_filter_value_is_400(staff_api, query):
    assert staff_api.get(f"{API}{query}").status_code == 400


# --- writes --------------------------------------------------------------------------------------------------------


def test_create_service_subscription_card_and_box(staff_api):
    service = staff_api.post(
        f"{API}services/", {"code": "P1", "service_ca_id": "P1CA", "name": "Sports"}, format="json"
    ).json()
    sub = staff_api.post(f"{API}subscriptions/", {"number": "S-1", "service_ids": [service["id"]]}, format="json")
    card = staff_api.post(
        f"{API}smartcards/",
        {"serial_number": "SC-1", "ca_id": "CA-1", "subscription_id": sub.json()["id"]},
        format="json",
    )
    device = DeviceFactory()
    box = staff_api.post(
        f"{API}set-top-boxes/", {"serial_number": "B-1", "ca_id": "BCA-1", "device_id": device.pk}, format="json"
    )

    assert (sub.status_code, card.status_code, box.status_code) == (201, 201, 201)
    assert sub.json()["services"] == [{"id": service["id"], "code": "P1", "service_ca_id": "P1CA"}]
    assert card.json()["subscription"] == "S-1"
    assert box.json()["device"] == {"id": device.pk, "serial_number": device.serial_number}
    assert SetTopBox.objects.get().device_id == device.pk


def test_update_replaces_a_subscriptions_services_and_is_audited_with_the_token_user(staff_api, staff_user):
    a, b = ServiceFactory(), ServiceFactory()
    sub = SubscriptionFactory(number="S-1", services=[a])

    response = staff_api.put(f"{API}subscriptions/{sub.pk}/", {"number": "S-1", "service_ids": [b.pk]}, format="json")

    assert response.status_code == 200
    assert list(Subscription.objects.get().services.all()) == [b]
    entry = LogEntry.objects.get_for_object(sub).filter(changes__has_key="services").latest("timestamp")
    assert entry.actor == staff_user


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("smartcards/", {"serial_number": "NEW", "ca_id": "TAKEN"}, id="card-ca-id"),
        pytest.param("smartcards/", {"serial_number": "SC-TAKEN", "ca_id": "NEW"}, id="card-serial"),
        pytest.param("set-top-boxes/", {"serial_number": "B-TAKEN", "ca_id": "NEW"}, id="box-serial"),
        pytest.param("services/", {"code": "P-TAKEN", "service_ca_id": "NEW"}, id="service-code"),
        pytest.param("services/", {"code": "NEW", "service_ca_id": "P-CA-TAKEN"}, id="service-ca-id"),
        pytest.param("subscriptions/", {"number": "S-TAKEN"}, id="subscription-number"),
    ],
)
def test_a_taken_identifier_is_409_duplicate_and_writes_nothing(staff_api, path, body):
    SmartcardFactory(serial_number="SC-TAKEN", ca_id="TAKEN", subscription__number="S-TAKEN")
    SetTopBoxFactory(serial_number="B-TAKEN", subscription=None)
    ServiceFactory(code="P-TAKEN", service_ca_id="P-CA-TAKEN")
    before = [list(m.objects.values()) for m in (Smartcard, SetTopBox, Service, Subscription)]

    response = staff_api.post(f"{API}{path}", body, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "DUPLICATE"
    assert [list(m.objects.values()) for m in (Smartcard, SetTopBox, Service, Subscription)] == before


def test_a_box_is_one_device_at_most(staff_api):
    device = DeviceFactory()
    SetTopBoxFactory(device=device)

    response = staff_api.post(
        f"{API}set-top-boxes/", {"serial_number": "X", "ca_id": "X", "device_id": device.pk}, format="json"
    )

    assert (response.status_code, response.json()["code"]) == (409, "DUPLICATE")


@pytest.mark.parametrize(
    "body",
    [{"serial_number": "", "ca_id": "x"}, {"serial_number": "x"}, {"serial_number": "x", "ca_id": "y" * 65}],
    ids=["empty", "missing", "long"],
)
def test_bad_input_is_400(staff_api, body):
    assert staff_api.post(f"{API}smartcards/", body, format="json").status_code == 400
    assert not Smartcard.objects.exists()


@pytest.mark.parametrize("kind", ["smartcard", "subscription", "service"])
def test_deleting_what_a_pending_request_refers_to_is_409_in_use(staff_api, kind):
    service = ServiceFactory()
    card = SmartcardFactory(subscription=SubscriptionFactory(services=[service]))
    pending_request(card, service)
    obj = {"smartcard": card, "subscription": card.subscription, "service": service}[kind]
    path = {"smartcard": "smartcards", "subscription": "subscriptions", "service": "services"}[kind]

    response = staff_api.delete(f"{API}{path}/{obj.pk}/")

    assert (response.status_code, response.json()["code"]) == (409, "IN_USE")
    assert type(obj).objects.filter(pk=obj.pk).exists()


def test_a_service_with_entitlements_is_409_in_use_not_500(staff_api):
    entitlement = EntitlementFactory()

    response = staff_api.delete(f"{API}services/{entitlement.service_id}/")

    assert (response.status_code, response.json()["code"]) == (409, "IN_USE")


def test_delete_without_pending_requests(staff_api):
    card, unit = SmartcardFactory(), UnitFactory()

    assert staff_api.delete(f"{API}smartcards/{card.pk}/").status_code == 204
    assert staff_api.delete(f"{API}units/{unit.pk}/").status_code == 204
    assert not Smartcard.objects.exists() and not Unit.objects.exists()


@pytest.mark.parametrize("name", ["pairings", "entitlements"])
def test_pairings_and_entitlements_are_read_only(staff_api, name):
    assert staff_api.post(f"{API}{name}/", {}, format="json").status_code == 405
