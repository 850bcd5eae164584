from django.conf import settings
from django.core.files.storage import Storage, storages
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
        verbose_name = "API token"
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


def exports_storage() -> Storage:
    """Where background exports keep their files (``STORAGES["exports"]``, any storage backend: a shared volume, an
    object store). The export code asks for it each time rather than through the field (Django resolves a field's
    storage once, at import)."""
    return storages["exports"]


class BulkJob(models.Model):
    """One operation over many objects, run in the background in chunks (``portal.kernel.jobs``).

    The database is the source of truth: ``cursor`` moves in the same transaction as each chunk's work, so a worker
    killed mid-job redoes at most nothing (the chunk it was in rolled back) and a job is never run twice over."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"

    operation = models.CharField(max_length=64)
    title = models.CharField(max_length=200)
    content_type = models.ForeignKey("contenttypes.ContentType", on_delete=models.PROTECT)
    object_ids = models.JSONField(help_text="The primary keys, in order, frozen when the job was started.")
    params = models.JSONField(default=dict, blank=True)
    total = models.PositiveIntegerField()
    cursor = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    failures = models.JSONField(default=list, blank=True, help_text="The first failures: id, label and reason.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # A background export's file (portal/kernel/adminexport.py), in the exports storage, never in the database;
    # emptied when ADMIN_EXPORT_RETENTION_HOURS have passed and the file is deleted.
    file = models.FileField(storage=exports_storage, max_length=300, blank=True)

    class Meta:
        verbose_name = "background job"
        indexes = [models.Index(fields=["-created_at"], name="bulkjob_created_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(cursor__lte=F("total")), name="bulkjob_cursor_within_total"),
            models.CheckConstraint(condition=Q(done__lte=F("cursor") - F("failed")), name="bulkjob_counts_add_up"),
        ]

    def __str__(self) -> str:
        return self.title
