from django.conf import settings
from django.db import models
from django.db.models import Q

from components.choices import ActiveStatus, ComponentType
from devices.models import Device


class CatalogEntry(models.Model):
    """Sensors, parameters and parameter groups are numbered by the operator: the id is part of the contract."""

    id = models.PositiveIntegerField(primary_key=True)
    name = models.CharField(max_length=128)

    class Meta:
        abstract = True
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.id} {self.name}"


class Sensor(CatalogEntry):
    pass


class Parameter(CatalogEntry):
    pass


class ParameterGroup(CatalogEntry):
    class Meta(CatalogEntry.Meta):
        verbose_name = "parameter group"


class DeviceProvisioning(models.Model):
    """A device's provisioning record: its ``provisioning_id`` in the /v1/ API (one per device).

    The record shares its primary key with the device, so ``provisioning_id`` is the device id that integrations
    already know from the inventory; the record itself is created on first use.
    """

    device = models.OneToOneField(Device, on_delete=models.CASCADE, primary_key=True, related_name="provisioning")
    name = models.CharField(max_length=128, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "device provisioning record"
        ordering = ["device_id"]

    def __str__(self) -> str:
        return self.name or f"provisioning {self.pk} ({self.device})"


class ProvisioningComponent(models.Model):
    provisioning = models.ForeignKey(DeviceProvisioning, on_delete=models.CASCADE, related_name="components")
    component_type = models.PositiveSmallIntegerField(choices=ComponentType.choices)
    component_id = models.PositiveIntegerField()
    active_status = models.PositiveSmallIntegerField(choices=ActiveStatus.choices, default=ActiveStatus.ACTIVE)
    last_modified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_modified_datetime = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provisioning", "component_type", "component_id"], name="component_unique_per_provisioning"
            ),
            models.CheckConstraint(condition=Q(component_type__in=ComponentType.values), name="component_type_valid"),
            models.CheckConstraint(condition=Q(active_status__in=ActiveStatus.values), name="component_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{ComponentType(self.component_type).label} {self.component_id} of {self.provisioning_id}"
