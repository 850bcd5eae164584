"""Errors of the token store. Each API dialect maps them to its own wire format."""


class PortalError(Exception):
    code = "PORTAL_ERROR"


class TokenError(PortalError):
    code = "TOKEN_INVALID"


class TokenInvalid(TokenError):
    code = "TOKEN_INVALID"


class TokenExpired(TokenError):
    code = "TOKEN_EXPIRED"


class TokenRevoked(TokenError):
    code = "TOKEN_REVOKED"
