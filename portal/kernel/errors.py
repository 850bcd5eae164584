"""The one domain error model: every app's errors subclass ``DomainError`` with a stable class-level ``code`` and a
``category``, and all share one constructor, ``DomainError(message="", **details)``: what is specific to one raise
(ids, a description, an outcome) goes into ``details``, never into the code.

Each wire dialect maps categories (and, where its contract names them, codes) to its own format in one place:
- the staff REST API: ``portal.kernel.api.errors.STATUS`` (category → HTTP status);
- the CRM.COM envelope: ``conax.api.crmparams.crm_error``;
- the /v1/ components dialect: ``components.api.params.v1_error``;
- device activation: ``provisioning.api.activation.REFUSALS`` (refusal outcome → status and text);
- device JSON-RPC: ``provisioning.api.jsonrpc.rpc_error``.
"""

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
