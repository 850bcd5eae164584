"""Demo data for the embedded default: vendors, models, a few hundred serials in every state, three users.

Idempotent: running it again creates nothing new and resets the demo users' passwords to the printed ones.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from components.models import DeviceProvisioning, Parameter, ParameterGroup, ProvisioningComponent, Sensor
from conax.models import Service, SetTopBox, Smartcard, Subscription, Unit
from devices.choices import ActivationState
from devices.models import Device, DeviceModel, Vendor
from portal.services import CUSTOMERS_GROUP, SUPPORT_GROUP, groups_sync

CATALOG = {
    "acme": [("stb-4k", "Acme 4K set-top box"), ("gw-100", "Acme home gateway")],
    "globex": [("sensor-node", "Globex environmental sensor node")],
}
SERIALS_PER_MODEL = 120
# Of every 10 serials: 4 pending activation, 3 activated, 1 expired, 1 disabled, 1 not yet enabled.
STATE_CYCLE = [
    ActivationState.NOT_ACTIVATED,
    ActivationState.ACTIVATED,
    ActivationState.NOT_ACTIVATED,
    ActivationState.ACTIVATED,
    ActivationState.EXPIRED,
    ActivationState.NOT_ACTIVATED,
    ActivationState.ACTIVATED,
    ActivationState.DISABLED,
    ActivationState.NOT_ACTIVATED,
    ActivationState.NOT_ADDED,
]
SENSORS = ["Temperature", "Carbon Monoxide", "Humidity", "Smoke", "Motion", "Door contact"]
PARAMETERS = ["Reporting interval", "Alarm threshold", "Firmware channel", "Time zone"]
PARAMETER_GROUPS = ["Environmental", "Security"]


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    is_staff: bool
    group: str


DEMO_USERS = (
    DemoUser("support", "support-demo-2026", True, SUPPORT_GROUP),
    DemoUser("alice", "alice-demo-2026", False, CUSTOMERS_GROUP),
    DemoUser("bob", "bob-demo-2026", False, CUSTOMERS_GROUP),
)


def _device(model: DeviceModel, serial: str, state: str, owner, now) -> Device:
    device = Device(model=model, serial_number=serial, state=state, owner=owner)
    if state == ActivationState.NOT_ADDED:
        return device
    device.enabled_at = now - (timedelta(days=3) if state == ActivationState.EXPIRED else timedelta(hours=1))
    device.activation_expires_at = device.enabled_at + timedelta(seconds=settings.ACTIVATION_WINDOW)
    if state == ActivationState.ACTIVATED:
        device.activated_at = device.enabled_at + timedelta(minutes=5)
        # The demo never hands these keys to anyone: a digest of a random value stands for a device's CIK.
        device.cik_digest = hashlib.sha256(secrets.token_bytes(20)).hexdigest()
    if state == ActivationState.DISABLED:
        device.disabled_at = now - timedelta(minutes=30)
    return device


def _users() -> dict[str, object]:
    User = get_user_model()
    users = {}
    for spec in DEMO_USERS:
        user, _ = User.objects.get_or_create(username=spec.username, defaults={"email": f"{spec.username}@example.com"})
        user.is_staff = spec.is_staff
        user.set_password(spec.password)
        user.save()
        user.groups.add(Group.objects.get(name=spec.group))
        users[spec.username] = user
    return users


@transaction.atomic
def demo_load() -> dict[str, int]:
    groups_sync()
    users = _users()
    customers = [users["alice"], users["bob"]]
    now = timezone.now()
    devices = []
    for vendor_name, models in CATALOG.items():
        vendor, _ = Vendor.objects.get_or_create(name=vendor_name)
        for model_name, description in models:
            model, _ = DeviceModel.objects.get_or_create(
                vendor=vendor, name=model_name, defaults={"description": description}
            )
            for n in range(SERIALS_PER_MODEL):
                state = STATE_CYCLE[n % len(STATE_CYCLE)]
                owner = customers[n % 2] if n < 12 else None
                devices.append(_device(model, f"{model_name.upper()}-{n:06d}", state, owner, now))
    before = Device.objects.count()
    Device.objects.bulk_create(devices, ignore_conflicts=True)
    _components(now)
    _conditional_access(users)
    return {
        "vendors": Vendor.objects.count(),
        "devices": Device.objects.count(),
        "created": Device.objects.count() - before,
    }


def _components(now) -> None:
    """The components catalog, and sensors 1-3 plus parameter 1 on each customer-owned sensor node."""
    for model, names in ((Sensor, SENSORS), (Parameter, PARAMETERS), (ParameterGroup, PARAMETER_GROUPS)):
        model.objects.bulk_create([model(id=n, name=name) for n, name in enumerate(names, 1)], ignore_conflicts=True)
    nodes = Device.objects.filter(model__name="sensor-node", owner__isnull=False).select_related("owner")
    records = [DeviceProvisioning(device=node, name=node.serial_number) for node in nodes]
    DeviceProvisioning.objects.bulk_create(records, ignore_conflicts=True)
    components = [
        ProvisioningComponent(provisioning_id=node.pk, component_type=kind, component_id=pk,
                              last_modified_by=node.owner, last_modified_datetime=now)
        for node in nodes for kind, pk in ((0, 1), (0, 2), (0, 3), (1, 1))
    ]  # fmt: skip
    ProvisioningComponent.objects.bulk_create(components, ignore_conflicts=True)


CAS_SERVICES = [("BASIC", "Basic package", "1001"), ("SPORTS", "Sports", "1002"), ("MOVIES", "Movies", "1003")]


def _conditional_access(users) -> None:
    """A unit, three services, and per customer a subscription with a smartcard and a CAS set-top box for each of
    their 4K boxes (no entitlements yet: they come from COMPLETED requests)."""
    Unit.objects.get_or_create(name="Admin Unit", defaults={"alternative_code": "MG", "description": "demo"})
    services = [Service.objects.get_or_create(code=code, defaults={"name": name, "service_ca_id": ca})[0]
                for code, name, ca in CAS_SERVICES]  # fmt: skip
    for username in ("alice", "bob"):
        subscription, _ = Subscription.objects.get_or_create(
            number=f"SUB-{username.upper()}", defaults={"customer": users[username]}
        )
        subscription.services.add(*services)
        for device in Device.objects.filter(owner=users[username], model__name="stb-4k"):
            digits = device.serial_number.rsplit("-", 1)[-1]
            Smartcard.objects.get_or_create(
                serial_number=f"SC-{digits}", defaults={"ca_id": f"0190{digits}", "subscription": subscription}
            )
            SetTopBox.objects.get_or_create(serial_number=device.serial_number,
                                            defaults={"ca_id": f"STB-{digits}", "device": device,
                                                      "subscription": subscription})  # fmt: skip


DEMO_BOX_MODEL = ("acme", "stb-4k")


def demo_register_boxes(*, host: str, base_port: int, count: int) -> int:
    """Point the first ``count`` activated demo set-top boxes at simulated boxes on ``base_port``… (idempotent)."""
    from provisioning.services import box_register

    vendor, model = DEMO_BOX_MODEL
    devices = Device.objects.filter(model__vendor__name=vendor, model__name=model, state=ActivationState.ACTIVATED)
    for offset, device in enumerate(devices.order_by("serial_number")[:count]):
        box_register(device=device, host=host, port=base_port + offset)
    return min(count, devices.count())
