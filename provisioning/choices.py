from django.db import models


class ProvisionType(models.TextChoices):
    HARDWARE = "HARDWARE", "Hardware"
    CRYPTANIUM = "CRYPTANIUM", "Cryptanium"


class ProvisionState(models.TextChoices):
    NOT_PROVISIONED = "NOT_PROVISIONED", "Not provisioned"
    IN_PROGRESS = "IN_PROGRESS", "In progress"
    PROVISIONED = "PROVISIONED", "Provisioned"
    CORRUPTED = "CORRUPTED", "Corrupted"


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
