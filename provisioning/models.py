from django.conf import settings
from django.db import models
from django.db.models import Q

from devices.models import Device
from provisioning.choices import CommandKind, CommandState, EventSource, ProvisionState, ProvisionType


class SetTopBox(models.Model):
    """What the portal knows of a box's two provisioning plugins, as last read over Thunder JSON-RPC."""

    device = models.OneToOneField(Device, on_delete=models.CASCADE, related_name="set_top_box")
    thunder_host = models.CharField(max_length=255, help_text="Address of the box's Thunder server.")
    thunder_port = models.PositiveIntegerField(default=9998)
    api_version = models.PositiveSmallIntegerField("API version", null=True, blank=True)
    soc_id = models.CharField("SOC ID", max_length=64, blank=True)
    netflix_esn = models.CharField("Netflix ESN", max_length=64, blank=True)
    provision_id = models.CharField("provision ID", max_length=64, blank=True)
    platform_status = models.IntegerField(null=True, blank=True)
    platform_tokens = models.JSONField(default=list, blank=True)
    last_event_status = models.IntegerField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "set-top box"
        verbose_name_plural = "set-top boxes"

    def __str__(self) -> str:
        return f"{self.device} ({self.address})"

    @property
    def address(self) -> str:
        return f"{self.thunder_host}:{self.thunder_port}"


class TypeStatus(models.Model):
    """One provision type of a box (HARDWARE, CRYPTANIUM): kind, state and reason from provisionCheck."""

    box = models.ForeignKey(SetTopBox, on_delete=models.CASCADE, related_name="type_statuses")
    provision_type = models.CharField(max_length=16, choices=ProvisionType.choices)
    kind = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=16, choices=ProvisionState.choices)
    reason = models.CharField(max_length=255, blank=True)
    refreshed_at = models.DateTimeField()

    class Meta:
        verbose_name = "provision type status"
        verbose_name_plural = "provision type statuses"
        ordering = ["provision_type"]
        constraints = [models.UniqueConstraint(fields=["box", "provision_type"], name="typestatus_unique_per_box")]

    def __str__(self) -> str:
        return f"{self.provision_type}: {self.state}"


class Command(models.Model):
    """A staff request to a box. The table, not the broker, is the source of truth (see tasks.commands_sweep)."""

    box = models.ForeignKey(SetTopBox, on_delete=models.CASCADE, related_name="commands")
    kind = models.CharField(max_length=16, choices=CommandKind.choices)
    params = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=10, choices=CommandState.choices, default=CommandState.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="Not sent before this time.")
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="command_due_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(state__in=CommandState.values), name="command_state_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.state})"


class BoxEvent(models.Model):
    """A provisioningchange notification, from the portal's subscription or pushed by the box."""

    box = models.ForeignKey(SetTopBox, on_delete=models.CASCADE, related_name="events")
    name = models.CharField(max_length=64, default="provisioningchange")
    status = models.IntegerField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=16, choices=EventSource.choices)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "box event"
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} {self.status}"
