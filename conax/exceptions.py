"""Errors of the conditional-access app, with stable codes. The CRM.COM dialect maps them to its envelope
(``conax.api.crm``); the staff REST API through ``portal.kernel.api.errors``."""

from __future__ import annotations

from portal.kernel.errors import Category, DomainError


class ConaxError(DomainError):
    code = "CONAX_ERROR"

    def __init__(self, message: str = "", description: str | None = None) -> None:
        super().__init__(message)
        self.description = description


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
