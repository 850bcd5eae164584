"""A campaign (a saved target filter, an action, a plan of waves, rate limits, a success threshold and a time
window) and its members, frozen when it starts. See docs/campaigns.md."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from campaigns.choices import ActionKind, CampaignState, MemberState, TargetKind


class Campaign(models.Model):
    name = models.CharField(max_length=128)
    target_kind = models.CharField(max_length=16, choices=TargetKind.choices)
    target_filters = models.JSONField(default=dict, blank=True, help_text="The FilterSet's query parameters.")
    action_kind = models.CharField(max_length=8, choices=ActionKind.choices)
    action = models.CharField(max_length=48, help_text="A command kind, or a Conax request type.")
    params = models.JSONField(default=dict, blank=True, help_text="The action's parameters, as cleaned.")
    waves = models.JSONField(default=list, help_text='Wave sizes: numbers, "N%" shares; the last is "rest".')
    rate_per_second = models.FloatField(help_text="Members released per second, at most.")
    rate_per_group = models.FloatField(
        null=True, blank=True, help_text="Per device model (commands) or per head-end (Conax), at most."
    )
    success_threshold = models.FloatField(default=0.95, help_text="Share of a wave's members that must succeed.")
    start_at = models.DateTimeField(null=True, blank=True)
    window_start = models.TimeField(null=True, blank=True, help_text="Released only from this local time …")
    window_end = models.TimeField(null=True, blank=True, help_text="… until this one (may pass midnight).")
    window_timezone = models.CharField(max_length=64, default="UTC")

    state = models.CharField(max_length=10, choices=CampaignState.choices, default=CampaignState.DRAFT)
    current_wave = models.PositiveSmallIntegerField(default=0)
    wave_count = models.PositiveSmallIntegerField(default=0)
    total = models.PositiveIntegerField(default=0, help_text="Members frozen at the start.")
    halt_reason = models.TextField(blank=True)

    # The engine's token buckets (global, and per group), kept in the row it locks to release.
    bucket_tokens = models.FloatField(default=0.0, editable=False)
    bucket_at = models.DateTimeField(null=True, blank=True, editable=False)
    group_tokens = models.JSONField(default=dict, blank=True, editable=False)
    current_rate = models.FloatField(default=0.0, editable=False)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state"], name="campaign_state_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(state__in=CampaignState.values), name="campaign_state_valid"),
            models.CheckConstraint(condition=Q(target_kind__in=TargetKind.values), name="campaign_target_valid"),
            models.CheckConstraint(condition=Q(action_kind__in=ActionKind.values), name="campaign_action_valid"),
            models.CheckConstraint(condition=Q(rate_per_second__gt=0), name="campaign_rate_positive"),
            models.CheckConstraint(
                condition=Q(rate_per_group__isnull=True) | Q(rate_per_group__gt=0), name="campaign_group_rate_positive"
            ),
            models.CheckConstraint(
                condition=Q(success_threshold__gte=0, success_threshold__lte=1), name="campaign_threshold_share"
            ),
            models.CheckConstraint(
                condition=Q(window_start__isnull=True, window_end__isnull=True)
                | Q(window_start__isnull=False, window_end__isnull=False),
                name="campaign_window_whole",
            ),
        ]

    def __str__(self) -> str:
        # No state: the name is also written into messages and history pages that are not read again later.
        return self.name


class Member(models.Model):
    """One target of a frozen campaign and its outcome.

    The subject and outcome references are plain ids without database constraints or indexes (``db_constraint``
    off, ``DO_NOTHING``): a million-row freeze maintains no foreign-key triggers or indexes beyond the one it needs,
    deleting a device does not rewrite campaign rows, and a subject removed since the start is still named (its
    ``label``) and recorded as such (``engine``)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="members", db_index=False)
    wave = models.PositiveSmallIntegerField()
    state = models.CharField(max_length=10, choices=MemberState.choices, default=MemberState.PENDING)
    label = models.CharField(max_length=128, blank=True, help_text="Serial number at the freeze.")
    group_id = models.BigIntegerField(default=0, help_text="Device model id, or 0: the one head-end.")
    box = models.ForeignKey(
        "provisioning.SetTopBox", on_delete=models.DO_NOTHING, null=True, blank=True, db_constraint=False,
        db_index=False, related_name="+",
    )  # fmt: skip
    smartcard = models.ForeignKey(
        "conax.Smartcard", on_delete=models.DO_NOTHING, null=True, blank=True, db_constraint=False,
        db_index=False, related_name="+",
    )  # fmt: skip
    cas_box = models.ForeignKey(
        "conax.SetTopBox", on_delete=models.DO_NOTHING, null=True, blank=True, db_constraint=False,
        db_index=False, related_name="+",
    )  # fmt: skip
    command = models.ForeignKey(
        "provisioning.Command", on_delete=models.DO_NOTHING, null=True, blank=True, db_constraint=False,
        db_index=False, related_name="+",
    )  # fmt: skip
    request = models.ForeignKey(
        "conax.ProvisioningRequest", on_delete=models.DO_NOTHING, null=True, blank=True, db_constraint=False,
        db_index=False, related_name="+",
    )  # fmt: skip
    retry_of = models.ForeignKey(
        "self", on_delete=models.DO_NOTHING, null=True, blank=True, db_constraint=False, db_index=False,
        related_name="+",
    )  # fmt: skip
    error = models.TextField(blank=True)
    note = models.CharField(max_length=255, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # Release (pending of a wave, in id order), progress and report counts (index-only).
            models.Index(fields=["campaign", "wave", "state", "id"], name="member_wave_state_idx"),
            # Outcome sync: the members in flight only.
            models.Index(fields=["campaign"], name="member_in_flight_idx", condition=Q(state="sent")),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(state__in=MemberState.values), name="member_state_valid"),
            models.CheckConstraint(
                condition=~Q(state="sent") | Q(command__isnull=False) | Q(request__isnull=False),
                name="member_sent_has_outcome_ref",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label or self.pk} (wave {self.wave}, {self.state})"
