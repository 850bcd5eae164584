from django.conf import settings
from django.db import models
from django.db.models import F, Q

from portal.kernel.choices import TokenPurpose


class ApiToken(models.Model):
    """A login token of any API dialect. Only the SHA-256 digest of the token is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    purpose = models.CharField(max_length=20, choices=TokenPurpose.choices)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField()
    last_used_at = models.DateTimeField()
    expires_at = models.DateTimeField(help_text="Absolute expiry.")
    idle_timeout = models.DurationField(help_text="The token expires when unused for this long.")
    revoked_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True, help_text="Dialect data, e.g. CRM organisation and unit.")

    class Meta:
        indexes = [models.Index(fields=["user", "purpose"], name="apitoken_user_purpose_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(expires_at__gt=F("created_at")), name="apitoken_expires_after_created"),
            models.CheckConstraint(condition=Q(purpose__in=TokenPurpose.values), name="apitoken_purpose_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} token #{self.pk} of {self.user}"


class WorkerHeartbeat(models.Model):
    """Last time each Celery worker ran the heartbeat task; /readyz reports it."""

    hostname = models.CharField(max_length=255, primary_key=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.hostname
