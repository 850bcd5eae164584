"""Errors of set-top-box provisioning, with stable codes (wire errors of the boxes are in provisioning.thunder)."""

from portal.kernel.errors import Category, DomainError


class ProvisioningError(DomainError):
    code = "PROVISIONING_ERROR"


class InvalidCommand(ProvisioningError):
    code = "INVALID_COMMAND"


class NoSetTopBox(ProvisioningError):
    code = "NO_SET_TOP_BOX"
    category = Category.NOT_FOUND
