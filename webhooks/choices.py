from django.db import models


class EventType(models.TextChoices):
    """What an endpoint can subscribe to; the value is the payload's ``type``."""

    DEVICE_ACTIVATED = "device.activated", "Device activated"
    DEVICE_REENABLED = "device.reenabled", "Device re-enabled"
    DEVICE_DISABLED = "device.disabled", "Device disabled"
    COMMAND_FINISHED = "command.finished", "Box command finished"
    CONAX_REQUEST_FINISHED = "conax_request.finished", "Conax request finished"
    COMPONENT_CHANGED = "component.changed", "Provisioning component changed"


class DeliveryState(models.TextChoices):
    PENDING = "PENDING", "Pending"
    DELIVERED = "DELIVERED", "Delivered"
    DEAD = "DEAD", "Dead (gave up)"
