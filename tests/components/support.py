"""Shared by the components tests and the seed 004 replay: a small catalog and a /v1/ client."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.test import Client
from django.utils import timezone

from components.models import DeviceProvisioning, Parameter, ParameterGroup, ProvisioningComponent, Sensor
from devices.models import Device
from portal.kernel import services
from portal.kernel.choices import TokenPurpose

URL = "/v1/DeviceProvisioningComponents/"
SENSORS = {1: "Temperature", 2: "Carbon Monoxide", 3: "Humidity", 4: "Smoke", 5: "Motion", 6: "Door contact"}
PARAMETERS = {1: "Reporting interval", 2: "Alarm threshold", 3: "Firmware channel", 4: "Time zone"}
GROUPS = {1: "Environmental", 2: "Security"}


def catalog_load() -> None:
    for model, names in ((Sensor, SENSORS), (Parameter, PARAMETERS), (ParameterGroup, GROUPS)):
        model.objects.bulk_create([model(id=pk, name=name) for pk, name in names.items()])


def component(device: Device, component_type: int, component_id: int, status: int = 0, user=None):
    record, _ = DeviceProvisioning.objects.get_or_create(device=device)
    return ProvisioningComponent.objects.create(
        provisioning=record,
        component_type=component_type,
        component_id=component_id,
        active_status=status,
        last_modified_by=user,
        last_modified_datetime=timezone.now(),
    )


def snapshot() -> tuple:
    """Everything a /v1/ write can touch: a refused request must leave it equal."""
    components = list(ProvisioningComponent.objects.order_by("pk").values_list())
    records = list(DeviceProvisioning.objects.order_by("pk").values_list())
    versions = list(Device.objects.order_by("pk").values_list("pk", "configuration_version"))
    return components, records, versions


@dataclass
class V1:
    """A client of the /v1/ API logged in as ``user`` (token in request header ``token``)."""

    client: Client
    token: str

    @classmethod
    def for_user(cls, client: Client, user) -> V1:
        return cls(client, services.token_issue(user=user, purpose=TokenPurpose.COMPONENTS).raw)

    def post(self, body, *, token: str | None = None):
        raw = body if isinstance(body, bytes | str) else json.dumps(body)
        return self.client.generic(
            "POST", URL, raw, content_type="application/json", HTTP_TOKEN=self.token if token is None else token
        )

    def __call__(self, body) -> dict:
        response = self.post(body)
        assert response.status_code == 200 and response["Content-Type"] == "application/json"
        return response.json()
