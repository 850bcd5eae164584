"""The /v1/ dialect's one input sanitising layer: text that no field of this API can carry is refused up front.

Both /v1/ endpoints run their input through here before any parameter check or query: ``login`` its form fields,
``v1`` its ``token`` header and every key and string of its decoded JSON body. Refused:

- NUL characters: PostgreSQL text cannot hold them, and a query carrying one fails (a 500 before this layer);
- lone surrogates (``"\\ud800"`` is a legal JSON escape): no UTF-8 encoding exists, so no driver can send them.

Numbers need no layer of their own: every value reaches a column only through ``params``, whose integer check
(0 to 2**31 - 1) answers the parameter's own ``INVALID_<PARAM>_PRAM`` for huge integers and overflowing floats alike.
Pure functions, no database; the walk over the decoded JSON is iterative, so depth cannot exhaust the stack.
"""

from __future__ import annotations

import re
from typing import Any

UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


class Unstorable(ValueError):
    """The input carries text that no /v1/ field can store; ``where`` names the place (never the value)."""

    def __init__(self, where: str) -> None:
        super().__init__(where)
        self.where = where


def storable(value: str) -> bool:
    return UNSTORABLE_TEXT.search(value) is None


def check_json(data: Any) -> None:
    """Raise Unstorable if any key or string anywhere in decoded JSON is unstorable."""
    pending: list[tuple[str, Any]] = [("$", data)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if not storable(key):
                    raise Unstorable(f"{where} (a key)")
                pending.append((f"{where}.{key}", item))
        elif isinstance(value, list):
            pending.extend((f"{where}[{n}]", item) for n, item in enumerate(value))
        elif isinstance(value, str) and not storable(value):
            raise Unstorable(where)


def check_fields(fields: dict[str, str]) -> None:
    """Raise Unstorable if a form field or header value (already text) carries a NUL or a lone surrogate."""
    for name, value in fields.items():
        if not storable(value):
            raise Unstorable(name)
