from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Case, CharField, Q, Value, When
from django.utils import timezone

from devices.choices import ActivationOutcome, ActivationState


def window_elapsed() -> Q:
    """A pending device whose activation window has passed: expired wherever it is read, before the periodic
    task (devices.tasks.expire_windows) persists that. The application's clock decides, as in the services."""
    return Q(state=ActivationState.NOT_ACTIVATED, activation_expires_at__lte=timezone.now())


def stranded_q() -> Q:
    return Q(state=ActivationState.ACTIVATED, cik_first_used_at__isnull=True)


class DeviceQuerySet(models.QuerySet):
    def with_effective_state(self) -> "DeviceQuerySet":
        return self.annotate(
            effective_state=Case(
                When(window_elapsed(), then=Value(ActivationState.EXPIRED.value)),
                default="state",
                output_field=CharField(),
            )
        )

    def stranded(self, *, unused_for: timedelta | None = None) -> "DeviceQuerySet":
        """Activated devices whose CIK was never used (no authenticated call since activation), optionally for at
        least ``unused_for``. A device re-activated by the retry window keeps its first activation time."""
        rows = self.filter(stranded_q())
        return rows.filter(activated_at__lte=timezone.now() - unused_for) if unused_for else rows

    def in_effective_state(self, state: str) -> "DeviceQuerySet":
        if state == ActivationState.EXPIRED:
            return self.filter(Q(state=state) | window_elapsed())
        if state == ActivationState.NOT_ACTIVATED:
            return self.filter(state=state).exclude(window_elapsed())
        return self.filter(state=state)


class Vendor(models.Model):
    name = models.CharField(max_length=64, unique=True, help_text="The `vendor` value devices send when activating.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DeviceModel(models.Model):
    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="device_models")
    name = models.CharField(max_length=64, help_text="The `model` value devices send when activating.")
    description = models.CharField(max_length=255, blank=True)
    # Exosite's clone template (fleet management API, docs/exosite.md): stored and returned, never acted on (the
    # portal has no One Platform clients to clone).
    clone_rid = models.CharField("clone template RID", max_length=128, blank=True)
    clone_code = models.CharField("clone template code", max_length=128, blank=True)
    clone_options = models.JSONField("clone options", default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["vendor__name", "name"]
        constraints = [models.UniqueConstraint(fields=["vendor", "name"], name="devicemodel_unique_per_vendor")]

    def __str__(self) -> str:
        return f"{self.vendor.name}/{self.name}"


class Device(models.Model):
    # No index of its own: the unique (model, serial_number) constraint leads with it. Every activation rewrites
    # the row's index entries, so each index less is less work on the hottest write.
    model = models.ForeignKey(DeviceModel, on_delete=models.PROTECT, related_name="devices", db_index=False)
    serial_number = models.CharField(max_length=128)
    extra = models.CharField(max_length=255, blank=True, help_text="Free text from the serial import (`sn,extra`).")
    state = models.CharField(max_length=16, choices=ActivationState.choices, default=ActivationState.NOT_ADDED)
    enabled_at = models.DateTimeField(null=True, blank=True)
    activation_expires_at = models.DateTimeField(null=True, blank=True, help_text="End of the activation window.")
    activated_at = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    cik_digest = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False)
    # Set by the first call authenticated with the current CIK (devices.services.device_from_cik), once: a CIK
    # handed out but never used is "stranded" (its answer may never have reached the device).
    cik_first_used_at = models.DateTimeField(
        "CIK first used", null=True, blank=True, editable=False, help_text="First call authenticated by the CIK."
    )
    # When the current CIK was handed out: activated_at, or later when the retry window replaced it.
    cik_issued_at = models.DateTimeField("CIK issued", null=True, blank=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="devices"
    )
    configuration_version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DeviceQuerySet.as_manager()

    class Meta:
        ordering = ["model_id", "serial_number"]
        constraints = [
            models.UniqueConstraint(fields=["model", "serial_number"], name="device_serial_unique_per_model"),
            models.CheckConstraint(condition=Q(state__in=ActivationState.values), name="device_state_valid"),
            models.CheckConstraint(
                condition=Q(cik_digest__isnull=True) | Q(state=ActivationState.ACTIVATED),
                name="device_cik_only_when_activated",
            ),
            models.CheckConstraint(
                condition=Q(cik_first_used_at__isnull=True, cik_issued_at__isnull=True) | Q(cik_digest__isnull=False),
                name="device_cik_times_only_with_cik",
            ),
        ]
        indexes = [models.Index(fields=["state", "activation_expires_at"], name="device_state_window_idx")]

    def __str__(self) -> str:
        return self.serial_number

    @property
    def current_state(self) -> str:
        """The effective state: ``expired`` once a pending device's window has passed."""
        annotated = getattr(self, "effective_state", None)
        if annotated is not None:
            return annotated
        if (
            self.state == ActivationState.NOT_ACTIVATED
            and self.activation_expires_at is not None
            and self.activation_expires_at <= timezone.now()
        ):
            return ActivationState.EXPIRED.value
        return self.state

    @property
    def has_active_cik(self) -> bool:
        return self.cik_digest is not None

    @property
    def cik_stranded(self) -> bool:
        return self.state == ActivationState.ACTIVATED and self.cik_first_used_at is None

    @property
    def cik_unused_for(self) -> timedelta | None:
        """How long the CIK has been waiting for its first use; None unless stranded."""
        if not self.cik_stranded or self.activated_at is None:
            return None
        return max(timezone.now() - self.activated_at, timedelta(0))


class ActivationAttempt(models.Model):
    """Every call of /provision/activate, known serial or not (the original's ``?show=log``)."""

    # Indexed by attempt_device_at_idx (device, -at), which serves every per-device read.
    device = models.ForeignKey(
        Device, on_delete=models.CASCADE, null=True, blank=True, related_name="attempts", db_index=False
    )
    vendor = models.CharField(max_length=64, blank=True)
    model = models.CharField(max_length=64, blank=True)
    serial_number = models.CharField(max_length=128, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)
    outcome = models.CharField(max_length=24, choices=ActivationOutcome.choices)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["device", "-at"], name="attempt_device_at_idx")]

    def __str__(self) -> str:
        return f"{self.serial_number} {self.outcome} at {self.at:%Y-%m-%d %H:%M:%S}"


# --- Exosite fleet management (docs/exosite.md) -----------------------------------------------------------------


class VendorToken(models.Model):
    """A vendor's credential for the Exosite fleet management API (``X-Exosite-Token``). Scoped to one vendor: it
    sees that vendor's models only. Only the SHA-256 digest is stored; the token is shown once, when created."""

    vendor = models.ForeignKey(Vendor, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=64, help_text="What the token is for (the original's token id).")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["vendor__name", "name", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["vendor", "name"], condition=Q(revoked_at__isnull=True), name="vendortoken_live_name_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.vendor.name}: {self.name}"


class SerialRange(models.Model):
    """A serial-number range added through the management API (``{"ranges": [...]}``), as it was given: what
    ``?show=ranges`` answers. Its serials are devices of the model like any other."""

    class Format(models.TextChoices):
        BASE10 = "base10"
        BASE16 = "base16"
        MAC_COLON = "mac:48"
        MAC_DASH = "mac-48"
        MAC_DOT = "mac.48"

    model = models.ForeignKey(DeviceModel, on_delete=models.CASCADE, related_name="serial_ranges")
    format = models.CharField(max_length=8, choices=Format.choices)
    length = models.PositiveSmallIntegerField(null=True, blank=True)
    casing = models.CharField(max_length=5, blank=True)
    first = models.BigIntegerField()
    last = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model_id", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(last__gte=models.F("first"), first__gte=0), name="serialrange_ordered")
        ]

    def __str__(self) -> str:
        return f"{self.format} {self.first}..{self.last}"


class Content(models.Model):
    """A file devices of a model download (firmware, configuration): Exosite's content ``<id>``. The blob lives in
    the ``exosite_content`` storage (Django's storage API), never in the database."""

    model = models.ForeignKey(DeviceModel, on_delete=models.CASCADE, related_name="contents")
    name = models.CharField("content id", max_length=128)
    meta = models.CharField(max_length=1024, blank=True)
    protected = models.BooleanField(default=False, help_text="Only the devices allowed below may download it.")
    content_type = models.CharField(max_length=255, blank=True)
    size = models.BigIntegerField(default=0)
    blob = models.CharField(max_length=255, blank=True, editable=False, help_text="Name in the content storage.")
    uploaded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    allowed = models.ManyToManyField(
        Device,
        blank=True,
        related_name="contents",
        verbose_name="devices allowed",
        help_text="Devices of this model that may download it while it is protected.",
    )

    class Meta:
        verbose_name = "device content"
        ordering = ["model_id", "name"]
        constraints = [models.UniqueConstraint(fields=["model", "name"], name="content_unique_per_model")]

    def __str__(self) -> str:
        return f"{self.model}: {self.name}"
