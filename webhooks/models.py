"""Outbound webhooks: the endpoints an operator's systems register, and the outbox of deliveries.

A ``Delivery`` row is written in the same transaction as the change it reports (``webhooks.services.emit``), so an
event is never lost to a crash between the change and the sending; a Celery task sends it, and the sweep sends
again whatever a dead worker or a lost message left behind.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from webhooks.choices import DeliveryState, EventType


class Endpoint(models.Model):
    name = models.CharField(max_length=128, unique=True)
    url = models.URLField(max_length=500, help_text="http(s) URL that receives a POST per event.")
    # Fernet under a key derived from SECRET_KEY (webhooks.crypto): the secret is needed in clear to sign.
    secret_encrypted = models.TextField(editable=False)
    event_types = models.JSONField(default=list, help_text="The event types it receives.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Delivery(models.Model):
    """One event for one endpoint. ``event_id`` is the event's (the same for every endpoint that receives it): the
    receiver's idempotency key. ``object_key`` names the object the event is about; an endpoint receives the events
    of one object in the order they happened."""

    event_id = models.UUIDField(default=uuid.uuid4, editable=False)
    event_type = models.CharField(max_length=48, choices=EventType.choices)
    object_key = models.CharField(max_length=64)
    payload = models.JSONField()
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # Set by the sender that claimed it, in a short transaction before the POST (none is held during it); the
    # outcome is recorded only under the same claim. A dead sender's claim runs out (services.lease).
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=255, blank=True)
    last_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(
                fields=["endpoint", "object_key", "id"],
                name="delivery_pending_per_object",
                condition=Q(state="PENDING"),
            ),
            models.Index(fields=["next_attempt_at"], name="delivery_pending_due", condition=Q(state="PENDING")),
            models.Index(fields=["event_id"], name="delivery_event"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(state__in=DeliveryState.values), name="delivery_state_valid"),
            models.UniqueConstraint(fields=["event_id", "endpoint"], name="delivery_once_per_endpoint"),
        ]

    def __str__(self) -> str:
        # No state: the name appears where it is not re-read (messages, breadcrumbs), and a state goes stale.
        return f"Delivery {self.pk} ({self.get_event_type_display().lower()})"
