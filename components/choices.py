from django.db import models


class ComponentType(models.IntegerChoices):
    """The seed's component types, by number and by name (names are matched case-insensitively)."""

    SENSOR = 0, "Sensor"
    PARAMETER = 1, "Parameter"
    GROUP_PARAMETER = 2, "Group Parameter"


class ActiveStatus(models.IntegerChoices):
    ACTIVE = 0, "Active"
    INACTIVE = 1, "Inactive"
