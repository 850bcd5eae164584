from django.db import models

from provisioning import thunder_protocol as wire


class ProvisionType(models.TextChoices):
    HARDWARE = "HARDWARE", "Hardware"
    CRYPTANIUM = "CRYPTANIUM", "Cryptanium"


class ProvisionState(models.TextChoices):
    """The wire states (``thunder_protocol.ProvisionState``) with labels. Members spelt out, not generated, so that
    readers and type checkers see them; tests/provisioning/test_simulator_standalone.py checks both list the same."""

    NOT_PROVISIONED = wire.ProvisionState.NOT_PROVISIONED.value, "Not provisioned"
    IN_PROGRESS = wire.ProvisionState.IN_PROGRESS.value, "In progress"
    PROVISIONED = wire.ProvisionState.PROVISIONED.value, "Provisioned"
    CORRUPTED = wire.ProvisionState.CORRUPTED.value, "Corrupted"


class CommandKind(models.TextChoices):
    REPROVISION = "reprovision", "Reprovision a type"
    REFRESH = "refresh", "Refresh status"
    PROVISION = "provision", "Platform provision (Provisioning.1.provision)"
    SET_INDEX = "set_index", "Set a key index"


class CommandState(models.TextChoices):
    QUEUED = "QUEUED", "Queued"
    SENT = "SENT", "Sent"
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    FAILED = "FAILED", "Failed"


class EventSource(models.TextChoices):
    SUBSCRIPTION = "subscription", "WebSocket subscription"
    PUSH = "push", "Pushed by the box (X-Exosite-CIK)"
