"""Conditional access as CRM.COM names it: services, subscriptions, smartcards and set-top boxes (installed items),
pairings, entitlements, and the Conax provisioning requests that change them at the head-end.

Every entity carries the 32-character uppercase hex ``id`` that CRM.COM clients use in identifier objects; a
provisioning request's primary key is its sequential ``number`` and its hex id is ``uid`` (``id`` on the wire).
"""

# ruff: noqa: DJ001 — the CRM.COM wire tells null from "" (every example shows nulls), and optional unique codes
# (alternative_code) must be NULL, not "", to stay unique.
from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from conax.choices import LifeCycleState, Priority, RequestType
from devices.models import Device
from portal.lib.dates import EARLIEST, STORED_BEFORE


def new_id() -> str:
    return secrets.token_hex(16).upper()


def hex_id() -> models.CharField:
    return models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)


def date_windows(prefix: str, *fields: str) -> list[models.CheckConstraint]:
    """A named CHECK per date column: every value in [2000-01-01, 2100-01-01) UTC (``portal.lib.dates``), so no row can
    hold a date that cannot be read back (year 10000 or BC after an offset) and take a list or page down with it."""
    return [
        models.CheckConstraint(
            condition=Q(**{f"{name}__gte": EARLIEST, f"{name}__lt": STORED_BEFORE}) | Q(**{f"{name}__isnull": True}),
            name=f"{prefix}_{name}_in_window",
        )
        for name in fields
    ]


class Unit(models.Model):
    """A business unit of the operator (CRM.COM's ``unit``): who created or last changed a request."""

    id = hex_id()
    name = models.CharField(max_length=128, unique=True)
    alternative_code = models.CharField(max_length=64, unique=True, null=True, blank=True)
    description = models.CharField(max_length=255, blank=True)
    group_name = models.CharField(max_length=128, blank=True)
    community_name = models.CharField(max_length=128, blank=True)

    def __str__(self) -> str:
        return self.name


class Service(models.Model):
    """A product classified as a service, with its Conax service CA id."""

    id = hex_id()
    code = models.CharField(max_length=64, unique=True)
    alternative_code = models.CharField(max_length=64, unique=True, null=True, blank=True)
    name = models.CharField(max_length=128, blank=True)
    service_ca_id = models.CharField("service CA id", max_length=64, unique=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} ({self.service_ca_id})"


class Subscription(models.Model):
    id = hex_id()
    number = models.CharField(max_length=64, unique=True)
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="cas_subscriptions"
    )
    services = models.ManyToManyField(Service, blank=True, related_name="subscriptions")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["number"]
        constraints = date_windows("subscription", "created_at")

    def __str__(self) -> str:
        return self.number


class Pairing(models.Model):
    """Smartcards and set-top boxes paired at the head-end (a Conax pairing module)."""

    id = hex_id()
    subscription = models.ForeignKey(Subscription, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = date_windows("pairing", "created_at")

    def __str__(self) -> str:
        return f"pairing {self.id}"


class InstalledItem(models.Model):
    id = hex_id()
    serial_number = models.CharField(max_length=128, unique=True)
    alternative_code = models.CharField(max_length=64, unique=True, null=True, blank=True)
    ca_id = models.CharField("CA id", max_length=64, unique=True)
    subscription = models.ForeignKey(Subscription, on_delete=models.SET_NULL, null=True, blank=True)
    pairing = models.ForeignKey(Pairing, on_delete=models.SET_NULL, null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["serial_number"]

    def __str__(self) -> str:
        return f"{self.serial_number} ({self.ca_id})"


class Smartcard(InstalledItem):
    class Meta(InstalledItem.Meta):
        default_related_name = "smartcards"


class SetTopBox(InstalledItem):
    """A set-top box as an installed item; linked to the inventory's device when the portal has one."""

    device = models.OneToOneField(Device, on_delete=models.SET_NULL, null=True, blank=True, related_name="cas_box")

    class Meta(InstalledItem.Meta):
        verbose_name = "CAS set-top box"
        verbose_name_plural = "CAS set-top boxes"
        default_related_name = "set_top_boxes"


class Entitlement(models.Model):
    """A service on a smartcard, as the head-end last confirmed it."""

    smartcard = models.ForeignKey(Smartcard, on_delete=models.CASCADE, related_name="entitlements")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="entitlements")
    subscription = models.ForeignKey(Subscription, on_delete=models.SET_NULL, null=True, blank=True)
    active = models.BooleanField(default=True)
    changed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["smartcard", "service"], name="entitlement_unique_per_card"),
            *date_windows("entitlement", "changed_at"),
        ]

    def __str__(self) -> str:
        return f"{self.service} on {self.smartcard}: {'active' if self.active else 'cancelled'}"


REQUEST_DATES = (
    "scheduled_date",
    "executed_date",
    "created_date",
    "updated_date",
    "claimed_until",
    "sent_at",
    "enqueued_at",
)


class ProvisioningRequest(models.Model):
    """A Conax provisioning request: created PENDING, sent to the head-end by a worker, then COMPLETED or REJECTED.

    The table is the source of truth for dispatch: ``attempts`` is the claim token of the worker that holds it,
    ``claimed_until`` its lease, ``sent_at`` says the head-end may have seen it (so a retry asks before it resends).
    """

    number = models.BigAutoField(primary_key=True)
    uid = models.CharField("id", max_length=32, unique=True, default=new_id, editable=False)
    type = models.CharField(max_length=48, choices=RequestType.choices)
    life_cycle_state = models.CharField(max_length=16, choices=LifeCycleState.choices, default=LifeCycleState.PENDING)
    priority = models.CharField(max_length=16, choices=Priority.choices, default=Priority.REGULAR)
    scheduled_date = models.DateTimeField()
    executed_date = models.DateTimeField(null=True, blank=True)
    process_immediately = models.BooleanField(null=True, blank=True)
    sequence_number = models.PositiveIntegerField(null=True, blank=True)
    parameters_set = models.JSONField(default=list, blank=True)
    ca_pin_encrypted = models.TextField(blank=True, editable=False)
    request = models.TextField(null=True, blank=True)
    response = models.TextField(null=True, blank=True)
    reference_number = models.CharField(max_length=64, null=True, blank=True)
    error_code = models.CharField(max_length=64, null=True, blank=True)
    error_description = models.TextField(null=True, blank=True)
    provider_error_code = models.CharField(max_length=64, null=True, blank=True)
    provider_error_description = models.TextField(null=True, blank=True)
    process_name = models.CharField(max_length=64, null=True, blank=True)
    process_id = models.CharField(max_length=64, null=True, blank=True)
    name = models.CharField(max_length=128, null=True, blank=True)

    subscription = models.ForeignKey(Subscription, on_delete=models.SET_NULL, null=True, blank=True)
    smartcard = models.ForeignKey(Smartcard, on_delete=models.SET_NULL, null=True, blank=True)
    service = models.ForeignKey(Service, on_delete=models.SET_NULL, null=True, blank=True)
    set_top_box = models.ForeignKey(SetTopBox, on_delete=models.SET_NULL, null=True, blank=True)
    retry_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="retries")

    created_date = models.DateTimeField(auto_now_add=True)
    updated_date = models.DateTimeField(auto_now=True)
    created_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_by_unit = models.ForeignKey(Unit, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    updated_by_unit = models.ForeignKey(Unit, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    attempts = models.PositiveIntegerField(default=0, editable=False)
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    enqueued_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["number"]
        default_related_name = "provisioning_requests"
        indexes = [
            models.Index(fields=["type", "number"], name="request_type_number"),
            models.Index(fields=["life_cycle_state", "number"], name="request_state_number"),
            models.Index(fields=["reference_number"], name="request_reference"),
            models.Index(fields=["smartcard", "number"], name="request_card_number"),
            models.Index(
                fields=["scheduled_date"], name="request_pending_due", condition=Q(life_cycle_state="PENDING")
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(life_cycle_state__in=LifeCycleState.values), name="request_state_valid"),
            models.CheckConstraint(condition=Q(priority__in=Priority.values), name="request_priority_valid"),
            models.CheckConstraint(condition=Q(type__in=RequestType.values), name="request_type_valid"),
            models.CheckConstraint(
                condition=Q(life_cycle_state="PENDING") | Q(executed_date__isnull=False), name="request_terminal_dated"
            ),
            *date_windows("request", *REQUEST_DATES),
        ]

    def __str__(self) -> str:
        # No state here: the name appears where it is not re-read (breadcrumbs, links), and a state goes stale.
        return f"Request {self.number} ({self.type})"
