"""Errors of the device inventory, with stable codes. Each API dialect maps them to its own wire format (the list of
where is in ``portal.kernel.errors``)."""

from devices.choices import ActivationOutcome
from portal.kernel.errors import Category, DomainError


class DeviceError(DomainError):
    code = "DEVICE_ERROR"


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


class InUse(DeviceError):
    """A vendor or model that devices still refer to cannot be deleted."""

    code = "IN_USE"
    category = Category.CONFLICT


class ActivationRefused(DeviceError):
    """Activation did not hand out a CIK. ``details``: ``outcome`` says why (activation answers a status for each,
    ``provisioning.api.activation.REFUSALS``), ``device_id`` the device when one was found."""

    code = "ACTIVATION_REFUSED"
    category = Category.CONFLICT

    @property
    def outcome(self) -> ActivationOutcome:
        return self.details["outcome"]

    @property
    def device_id(self) -> int | None:
        return self.details.get("device_id")


class CikInvalid(DeviceError):
    """No device holds this CIK, or its device is no longer activated (re-enabled, disabled)."""

    code = "CIK_INVALID"
    category = Category.DENIED


# --- Exosite fleet management (docs/exosite.md) ---------------------------------------------------------------


class VendorTokenInvalid(DeviceError):
    """No live vendor token has this value (unknown or revoked)."""

    code = "VENDOR_TOKEN_INVALID"
    category = Category.DENIED


class DeviceModelExists(DeviceError):
    code = "MODEL_EXISTS"
    category = Category.CONFLICT


class ContentExists(DeviceError):
    code = "CONTENT_EXISTS"
    category = Category.CONFLICT


class ContentTooLarge(DeviceError):
    code = "CONTENT_TOO_LARGE"
