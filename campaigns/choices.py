from django.db import models


class TargetKind(models.TextChoices):
    """What the saved filter selects; each is filtered by its own app's FilterSet (``campaigns.targets``)."""

    DEVICES = "devices", "Devices (devices.filters.DeviceFilter)"
    SET_TOP_BOXES = "set_top_boxes", "CAS set-top boxes (conax.filters.SetTopBoxFilter)"
    SMARTCARDS = "smartcards", "Smartcards (conax.filters.SmartcardFilter)"
    SUBSCRIPTIONS = "subscriptions", "Subscriptions (conax.filters.SubscriptionFilter): their smartcards"


class ActionKind(models.TextChoices):
    COMMAND = "command", "Set-top-box command"
    CONAX = "conax", "Conax provisioning request"


class CampaignState(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    HALTED = "halted", "Halted (below its success threshold)"
    CANCELLED = "cancelled", "Cancelled"
    FINISHED = "finished", "Finished"


class MemberState(models.TextChoices):
    PENDING = "pending", "Pending (not yet released)"
    SENT = "sent", "Sent (its command or request is in flight)"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


DONE_STATES = (MemberState.SUCCEEDED, MemberState.FAILED, MemberState.SKIPPED)
