"""Errors of the provisioning components, with stable codes. The /v1/ dialect answers each code as it is named here
(the seed's codes); the staff REST API maps them through ``portal.kernel.api.errors``."""

from __future__ import annotations

from portal.kernel.errors import Category, DomainError


class ComponentError(DomainError):
    code = "COMPONENT_ERROR"

    def __init__(self, code: str | None = None, detail: str | None = None) -> None:
        self.code = code or self.code
        self.detail = detail
        super().__init__(self.code)


class UnknownProvisioning(ComponentError):
    """No provisioning record (or device) with this id that the caller may see."""

    code = "INVALID_PROVISIONING_ID_PRAM"
    category = Category.NOT_FOUND


class UnknownCatalogEntry(ComponentError):
    """Component ids that are not in the catalog of their type; ``ids`` are the offending ones, in request order."""

    def __init__(self, code: str, ids: list[int]) -> None:
        super().__init__(code)
        self.ids = ids


class UnknownComponent(ComponentError):
    """Components to update that do not exist (or not in one provisioning record); ``ids`` are the offending ones."""

    code = "INVALID_COMPONENT_ID_PRAM"

    def __init__(self, ids: list[int]) -> None:
        super().__init__()
        self.ids = ids
