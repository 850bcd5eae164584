"""Errors of the device inventory, with stable codes. Each API dialect maps them to its own wire format."""

from devices.choices import ActivationOutcome
from portal.kernel.errors import Category, DomainError


class DeviceError(DomainError):
    code = "DEVICE_ERROR"

    def __init__(self, message: str = "", **details) -> None:
        super().__init__(message or self.code)
        self.details = details


class IllegalTransition(DeviceError):
    """A state change the device's current state does not allow (e.g. disabling a disabled device)."""

    code = "ILLEGAL_TRANSITION"
    category = Category.CONFLICT


class InvalidImport(DeviceError):
    code = "INVALID_IMPORT"


class DeviceExists(DeviceError):
    code = "DEVICE_EXISTS"
    category = Category.CONFLICT


class InvalidOwner(DeviceError):
    code = "INVALID_OWNER"


class ActivationRefused(DeviceError):
    """Activation did not hand out a CIK; ``outcome`` says why (and which status code the API answers)."""

    code = "ACTIVATION_REFUSED"
    category = Category.CONFLICT

    def __init__(self, outcome: ActivationOutcome, device_id: int | None = None) -> None:
        super().__init__(outcome.value)
        self.outcome = outcome
        self.device_id = device_id


class CikInvalid(DeviceError):
    """No device holds this CIK, or its device is no longer activated (re-enabled, disabled)."""

    code = "CIK_INVALID"
    category = Category.DENIED
