"""Shared by the Conax tests and the seed 003 replay: the seed's own entities (its ids, CA ids and serial numbers),
and a CRM.COM API client."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.test import Client

from conax.models import Service, SetTopBox, Smartcard, Subscription, Unit
from tests.conax.factories import (
    ServiceFactory,
    SetTopBoxFactory,
    SmartcardFactory,
    SubscriptionFactory,
    UnitFactory,
)
from tests.factories import PASSWORD

BASE = "/crmapi/rest/v2/"
REQUESTS = BASE + "conax_web_services/provisioning_requests/"
SUB = {"subscription_identifier": {"number": "S60058"}}
CARD = {"smartcard_identifier": {"serial_number": "S60058"}}  # CA id 0000-0000-0008
ADD = {**SUB, **CARD, "service_identifier": {"code": "P1"}}


@dataclass
class World:
    unit: Unit
    subscription: Subscription  # id 98D3…, number S60058
    service: Service  # id 5C2D…, service CA id P1test
    card: Smartcard  # id ABE6…, CA id stb01-3020-0005
    paired_card: Smartcard  # serial S60058, CA id 0000-0000-0008
    pin_card: Smartcard  # serial sc20000010, CA id sc20000010
    box: SetTopBox  # CA id THMOD001-10002
    other_box: SetTopBox  # CA id 0000-0000-0007


def world_load(customer=None) -> World:
    unit = UnitFactory(
        id="48305F8849E3C18B227C5BE3A27BA6DF",
        name="Admin Unit",
        alternative_code="MG",
        description="r1",
        group_name="Main Group",
        community_name="Main Community",
    )
    service = ServiceFactory(
        id="5C2DCFDD743632AC57AE8147B6EE665E", code="P1", service_ca_id="P1test", alternative_code="P1ALT"
    )
    subscription = SubscriptionFactory(
        id="98D375E905CD31F4CC780342525B2078", number="S60058", customer=customer, services=[service]
    )
    card = SmartcardFactory(
        id="ABE63350738749C47F404687DA5E5A47",
        serial_number="SC-3020-0005",
        ca_id="stb01-3020-0005",
        subscription=subscription,
    )
    paired = SmartcardFactory(serial_number="S60058", ca_id="0000-0000-0008", subscription=subscription)
    pin_card = SmartcardFactory(serial_number="sc20000010", ca_id="sc20000010", subscription=subscription)
    box = SetTopBoxFactory(serial_number="THMOD001", ca_id="THMOD001-10002", subscription=subscription)
    other = SetTopBoxFactory(serial_number="BOX-7", ca_id="0000-0000-0007", subscription=subscription)
    return World(unit, subscription, service, card, paired, pin_card, box, other)


@dataclass
class Crm:
    """A CRM.COM client logged in as ``username`` (token in every call, as the seed's examples carry it)."""

    client: Client
    token: str

    @classmethod
    def login(cls, client: Client, username: str = "staff", unit: str | None = None) -> Crm:
        body = {
            "username": username,
            "password": PASSWORD,
            "organisation": "portal",
            **({"unit": unit} if unit else {}),
        }
        response = client.post(BASE + "authentication/token", json.dumps(body), content_type="application/json")
        answer = response.json()
        assert answer["status"]["code"] == "OK", answer
        return cls(client, answer["data"]["token"])

    def post(self, method: str, body: dict | bytes | str, *, token: bool = True) -> dict:
        if isinstance(body, dict) and token:
            body = {"token": self.token, **body}
        raw = body if isinstance(body, bytes | str) else json.dumps(body)
        response = self.client.generic("POST", REQUESTS + method, raw, content_type="application/json")
        assert response["Content-Type"] == "application/json"
        return response.json()

    def get(self, method: str, **params) -> dict:
        response = self.client.get(REQUESTS + method, {"token": self.token, **params})
        assert response["Content-Type"] == "application/json"
        return response.json()
