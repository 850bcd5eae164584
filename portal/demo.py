"""Demo data for the embedded default: vendors, models, a few hundred serials in every state, three users.

Idempotent over whatever staff did since the last load (every ``make run`` loads it): what exists is kept, what is
missing is created, and what cannot be created because a staff edit took one of its unique values (a CA id, a
service code, a serial) is skipped and logged, never an error. The demo users get their printed passwords back,
and pending demo serials whose window passed unused get a new one, so the documented serials keep working.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from components.models import DeviceProvisioning, Parameter, ParameterGroup, ProvisioningComponent, Sensor
from conax.models import Service, SetTopBox, Smartcard, Subscription, Unit
from devices import services as device_services
from devices.choices import ActivationState
from devices.models import Device, DeviceModel, Vendor
from portal.kernel.services import CUSTOMERS_GROUP, SUPPORT_GROUP, groups_sync

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
OWNED = 12  # serials 0-11 of each model belong to the demo customers: even ones to alice, odd ones to bob
STRANDED_FROM = 100  # activated serials from 100 on never used their CIK (the admin's "CIK use" filter finds them)

logger = logging.getLogger(__name__)


def _serial(model_name: str, n: int) -> str:
    return f"{model_name.upper()}-{n:06d}"


def demo_serials(state: str, *, model_name: str = "stb-4k", count: int = 3) -> list[str]:
    """The first ``count`` serials of a model that the demo creates in ``state`` (for the README and tests)."""
    slots = [n for n in range(SERIALS_PER_MODEL) if STATE_CYCLE[n % len(STATE_CYCLE)] == state]
    return [_serial(model_name, n) for n in slots[:count]]


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


def _device(model: DeviceModel, n: int, owner, now) -> Device:
    state = STATE_CYCLE[n % len(STATE_CYCLE)]
    device = Device(model=model, serial_number=_serial(model.name, n), state=state, owner=owner)
    if state == ActivationState.NOT_ADDED:
        return device
    device.enabled_at = now - (timedelta(days=3) if state == ActivationState.EXPIRED else timedelta(hours=1))
    device.activation_expires_at = device.enabled_at + timedelta(seconds=settings.ACTIVATION_WINDOW)
    if state == ActivationState.ACTIVATED:
        device.activated_at = device.cik_issued_at = device.enabled_at + timedelta(minutes=5)
        # The demo never hands these keys to anyone: a digest of a random value stands for a device's CIK.
        device.cik_digest = hashlib.sha256(secrets.token_bytes(20)).hexdigest()
        if n < STRANDED_FROM:
            device.cik_first_used_at = device.activated_at + timedelta(seconds=30)
    if state == ActivationState.DISABLED:
        device.disabled_at = now - timedelta(minutes=30)
    return device


def _users() -> dict[str, object]:
    User = get_user_model()
    users = {}
    for spec in DEMO_USERS:
        user, _ = User.objects.get_or_create(username=spec.username, defaults={"email": f"{spec.username}@example.com"})
        user.is_staff, user.is_active = spec.is_staff, True
        user.set_password(spec.password)
        user.save()
        user.groups.add(Group.objects.get(name=spec.group))
        users[spec.username] = user
    return users


def _existing_or_new(model: type[models.Model], lookup: dict, defaults: dict | None = None):
    """The demo object ``lookup`` names: the one there (whatever staff changed in it), else a new one. None when a
    staff edit gave one of its unique values (a CA id, a code, a device link) to another object: skipped, logged."""
    found = model.objects.filter(**lookup).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():  # a savepoint: a conflict undoes this object only
            return model.objects.create(**lookup, **(defaults or {}))
    except IntegrityError:
        logger.warning("demo: %s %s not created: one of its unique values is taken", model._meta.verbose_name, lookup)
        return None


@transaction.atomic
def demo_load() -> dict[str, int]:
    groups_sync()
    users = _users()
    now = timezone.now()
    before = Device.objects.count()
    models_loaded = _inventory([users["alice"], users["bob"]], now)
    _components(now)
    _conditional_access(users)
    _reopen_pending(models_loaded)
    return {
        "vendors": Vendor.objects.count(),
        "devices": Device.objects.count(),
        "created": Device.objects.count() - before,
    }


def _inventory(customers: list, now) -> list[DeviceModel]:
    """Vendors, models and their serials; a serial that exists under its model (or conflicts) is left alone."""
    loaded, devices = [], []
    for vendor_name, catalog in CATALOG.items():
        vendor = _existing_or_new(Vendor, {"name": vendor_name})
        for model_name, description in catalog:
            model = _existing_or_new(DeviceModel, {"vendor": vendor, "name": model_name}, {"description": description})
            loaded.append(model)
            devices += [
                _device(model, n, customers[n % 2] if n < OWNED else None, now) for n in range(SERIALS_PER_MODEL)
            ]
    Device.objects.bulk_create(devices, ignore_conflicts=True)
    return loaded


def _reopen_pending(loaded: list[DeviceModel]) -> None:
    """A demo left running for a day would have no serial left to activate: pending demo serials whose window
    passed before any activation get a new one (audited like any re-enable). Other states are left as they are."""
    for model in loaded:
        serials = [
            _serial(model.name, n)
            for n in range(SERIALS_PER_MODEL)
            if STATE_CYCLE[n % len(STATE_CYCLE)] == ActivationState.NOT_ACTIVATED
        ]
        lapsed = (
            Device.objects.filter(model=model, serial_number__in=serials, activated_at__isnull=True)
            .in_effective_state(ActivationState.EXPIRED)
            .values_list("pk", flat=True)
        )
        device_services.devices_reenable(ids=list(lapsed))


def _components(now) -> None:
    """The components catalog, and sensors 1-3 plus parameter 1 on each customer-owned sensor node."""
    for model, names in ((Sensor, SENSORS), (Parameter, PARAMETERS), (ParameterGroup, PARAMETER_GROUPS)):
        model.objects.bulk_create([model(id=n, name=name) for n, name in enumerate(names, 1)], ignore_conflicts=True)
    nodes = Device.objects.filter(model__name="sensor-node", owner__isnull=False).select_related("owner")
    records = [DeviceProvisioning(device=node, name=node.serial_number) for node in nodes]
    DeviceProvisioning.objects.bulk_create(records, ignore_conflicts=True)
    components = [
        ProvisioningComponent(
            provisioning_id=node.pk,
            component_type=kind,
            component_id=pk,
            last_modified_by=node.owner,
            last_modified_datetime=now,
        )
        for node in nodes
        for kind, pk in ((0, 1), (0, 2), (0, 3), (1, 1))
    ]
    ProvisioningComponent.objects.bulk_create(components, ignore_conflicts=True)


CAS_SERVICES = [("BASIC", "Basic package", "1001"), ("SPORTS", "Sports", "1002"), ("MOVIES", "Movies", "1003")]


def _conditional_access(users) -> None:
    """A unit, three services, and per customer a subscription with a smartcard and a CAS set-top box for each of
    their 4K boxes (no entitlements yet: they come from COMPLETED requests)."""
    _existing_or_new(Unit, {"name": "Admin Unit"}, {"alternative_code": "MG", "description": "demo"})
    services = [
        _existing_or_new(Service, {"code": code}, {"name": name, "service_ca_id": ca})
        for code, name, ca in CAS_SERVICES
    ]
    for username in ("alice", "bob"):
        subscription = _existing_or_new(
            Subscription, {"number": f"SUB-{username.upper()}"}, {"customer": users[username]}
        )
        if subscription is not None:
            subscription.services.add(*[service for service in services if service is not None])
        devices = Device.objects.filter(
            owner=users[username], model__name="stb-4k", serial_number__startswith="STB-4K-"
        )
        for device in devices:
            digits = device.serial_number.rsplit("-", 1)[-1]
            _existing_or_new(
                Smartcard, {"serial_number": f"SC-{digits}"}, {"ca_id": f"0190{digits}", "subscription": subscription}
            )
            _existing_or_new(
                SetTopBox,
                {"serial_number": device.serial_number},
                {"ca_id": f"STB-{digits}", "device": device, "subscription": subscription},
            )


DEMO_BOX_MODEL = ("acme", "stb-4k")


def demo_register_boxes(*, host: str, base_port: int, count: int) -> int:
    """Point the first ``count`` activated demo set-top boxes at simulated boxes on ``base_port``… (idempotent)."""
    from provisioning.services import box_register

    vendor, model = DEMO_BOX_MODEL
    devices = Device.objects.filter(model__vendor__name=vendor, model__name=model, state=ActivationState.ACTIVATED)
    for offset, device in enumerate(devices.order_by("serial_number")[:count]):
        box_register(device=device, host=host, port=base_port + offset)
    return min(count, devices.count())
