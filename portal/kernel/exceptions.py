"""Errors of the token store. Each API dialect maps them to its own wire format (``portal.kernel.errors`` lists
where)."""

from portal.kernel.errors import Category, DomainError


class PortalError(DomainError):
    code = "PORTAL_ERROR"


class TokenError(PortalError):
    """Any token the store refuses; raised only as one of its subclasses."""

    code = "TOKEN_ERROR"
    category = Category.DENIED


class TokenInvalid(TokenError):
    code = "TOKEN_INVALID"


class TokenExpired(TokenError):
    code = "TOKEN_EXPIRED"


class TokenRevoked(TokenError):
    code = "TOKEN_REVOKED"
