"""Errors of the conditional-access app, with stable codes. The CRM.COM envelope answers each one's ``code`` as
written here (they are the seed's status codes), its ``message`` and ``details["description"]``: the one mapping is
``conax.api.crmparams.crm_error``. The staff REST API answers by category (``portal.kernel.api.errors``)."""

from __future__ import annotations

from portal.kernel.errors import Category, DomainError


class ConaxError(DomainError):
    code = "CONAX_ERROR"

    @property
    def description(self) -> str | None:
        """The longer explanation the CRM envelope carries next to the message (``details["description"]``)."""
        return self.details.get("description")


class InvalidParameter(ConaxError):
    """A value the API shape allowed but the rules do not (a PIN that is not 4 digits, a message too long, …)."""

    code = "INVALID_PARAMETER"


class NotFound(ConaxError):
    """An identifier that names nothing."""

    code = "NOT_FOUND"
    category = Category.NOT_FOUND


class RuleViolation(ConaxError):
    """Items that exist but do not belong together (a service outside the subscription, a card of another one)."""

    code = "CONSTRAINT_VIOLATION"


class IllegalState(ConaxError):
    """A request in a state that does not allow the action (retry of a request that was not rejected, …)."""

    code = "ILLEGAL_STATE"
    category = Category.CONFLICT


class InvalidCredentials(ConaxError):
    """A CRM login that issues no token, whatever the reason (``conax.services.crm_login`` says why it is one)."""

    code = "INVALID_CREDENTIALS"
    category = Category.DENIED


class AccessDenied(ConaxError):
    """A live CRM token whose user may no longer use the CRM API."""

    code = "ACCESS_DENIED"
    category = Category.DENIED


class InUse(ConaxError):
    """A record a pending provisioning request refers to cannot be deleted (the head-end would get a request about
    something the portal no longer knows)."""

    code = "IN_USE"
    category = Category.CONFLICT


class Duplicate(ConaxError):
    """An identifier the head-end needs unique (smartcard CA id, box serial, service code, ...) is taken."""

    code = "DUPLICATE"
    category = Category.CONFLICT
