"""Errors of the provisioning components, with stable codes: the /v1/ dialect answers each one's ``code`` as it is
written here (they are the seed's codes), in ``components.api.params.v1_error``; the staff REST API answers by
category, in ``portal.kernel.api.errors``."""

from __future__ import annotations

from portal.kernel.errors import Category, DomainError


class ComponentError(DomainError):
    code = "COMPONENT_ERROR"

    @property
    def ids(self) -> list[int]:
        """The offending ids, in request order (``details["ids"]``; empty when the error names none)."""
        return self.details.get("ids", [])


class UnknownProvisioning(ComponentError):
    """No provisioning record (or device) with this id that the caller may see."""

    code = "INVALID_PROVISIONING_ID_PRAM"
    category = Category.NOT_FOUND


class UnknownCatalogEntry(ComponentError):
    """Component ids that are not in the catalog of their type (``details["ids"]``). Raised as the subclass of the
    type (``components.services.UNKNOWN_CATALOG``), each with the seed's code."""

    code = "INVALID_COMPONENT_CATALOG_ID"  # never raised itself: each type's subclass has its own code


class UnknownSensor(UnknownCatalogEntry):
    code = "INVALID_COMPONENT_SENSOR_ID_PRAM"


class UnknownParameter(UnknownCatalogEntry):
    code = "INVALID_COMPONENT_PARAMETER_ID_PRAM"


class UnknownParameterGroup(UnknownCatalogEntry):
    code = "INVALID_COMPONENT_GROUP_PARAMETER_ID_PRAM"


class UnknownComponent(ComponentError):
    """Components to update that do not exist (or not in one provisioning record); ``details["ids"]`` are the
    offending ones."""

    code = "INVALID_COMPONENT_ID_PRAM"


class CatalogEntryInUse(ComponentError):
    """A sensor, parameter or parameter group that components still refer to cannot be deleted."""

    code = "CATALOG_ENTRY_IN_USE"
    category = Category.CONFLICT


class LoginRefused(ComponentError):
    """A /v1/ login that issues no token; raised as one of its subclasses (the original's codes)."""

    code = "LOGIN_REFUSED"
    category = Category.DENIED


class AccountDoesNotExist(LoginRefused):
    code = "ACCOUNT_DOES_NOT_EXIST"


class AccountPasswordIncorrect(LoginRefused):
    """The username names an active account, but the password is not its own."""

    code = "ACCOUNT_PASSWORD_INCORRECT"
