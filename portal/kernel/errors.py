"""The one domain error model: every app's errors subclass ``DomainError`` with a stable class-level ``code`` and a
``category``. Each wire dialect maps categories (and, where its contract names them, codes) to its own format in one
place: the staff REST API in ``portal.kernel.api.errors``, the CRM.COM envelope in ``conax.api.crm``, the /v1/
dialect in ``components.api.v1``, activation and JSON-RPC in ``provisioning.api``."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar


class Category(StrEnum):
    NOT_FOUND = "not_found"  # the identifier names nothing the caller may see
    CONFLICT = "conflict"  # the thing exists, but its state does not allow this (or it already exists)
    INVALID = "invalid"  # the input breaks a rule
    DENIED = "denied"  # the credential is missing, wrong, expired or revoked
    UNAVAILABLE = "unavailable"  # a dependency (head-end, box, database) cannot answer now


class DomainError(Exception):
    code: ClassVar[str] = "DOMAIN_ERROR"
    category: ClassVar[Category] = Category.INVALID

    def __init__(self, message: str = "", **details: Any) -> None:
        self.message = message or self.code
        self.details = details
        super().__init__(self.message)
