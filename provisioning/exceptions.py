"""Errors of set-top-box provisioning, with stable codes; the staff REST API answers them by category
(``portal.kernel.api.errors``). The boxes' own wire errors (``provisioning.thunder.ThunderError``) are not domain
errors: they are the outside system's answers, which ``provisioning.services`` retries or records, and no dialect
ever sees them."""

from portal.kernel.errors import Category, DomainError


class ProvisioningError(DomainError):
    code = "PROVISIONING_ERROR"


class InvalidCommand(ProvisioningError):
    code = "INVALID_COMMAND"


class NoSetTopBox(ProvisioningError):
    code = "NO_SET_TOP_BOX"
    category = Category.NOT_FOUND
