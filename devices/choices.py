from django.db import models


class ActivationState(models.TextChoices):
    """The original Exosite words, plus a state for serials known to the portal but not yet enabled."""

    NOT_ADDED = "notadded", "Not added (not enabled)"
    NOT_ACTIVATED = "notactivated", "Pending activation"
    ACTIVATED = "activated", "Activated"
    EXPIRED = "expired", "Expired"
    DISABLED = "disabled", "Disabled"


class ActivationOutcome(models.TextChoices):
    ACTIVATED = "activated", "Activated (200)"
    REISSUED = "reissued", "Activated again, CIK never used (200)"
    BAD_REQUEST = "bad_request", "Bad request (400)"
    INVALID_MODEL = "invalid_model", "Unknown vendor/model (403)"
    UNKNOWN_SERIAL = "unknown_serial", "Unknown serial (404)"
    NOT_ENABLED = "not_enabled", "Not enabled (409)"
    ALREADY_ACTIVATED = "already_activated", "Already activated (409)"
    EXPIRED = "expired", "Activation window expired (409)"
    DISABLED = "disabled", "Disabled (409)"


class CloneOption(models.TextChoices):
    """Exosite's model clone options (``options[]``), stored and returned as given."""

    NOALIASES = "noaliases"
    NOCOMMENTS = "nocomments"
    NOHISTORICAL = "nohistorical"
