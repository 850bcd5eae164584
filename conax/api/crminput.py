"""The one input layer of the CRM.COM dialect: what a view gets from a request's JSON body or query string.

Everything a client sends passes here before any parameter is looked at, any token checked or any row read, so no
field can forget a check:
- a body that is not a JSON object (or ``NaN``/``Infinity``, which JSON does not have) → ``INVALID_REQUEST``;
- a NUL character or a lone surrogate (``"\\ud800"``) in any name or value, at any depth → ``INVALID_PARAMETER``:
  PostgreSQL cannot store either, and neither is text a CRM client meant to send;
- an integer outside 64 bits or a number too large for a float (``1e999``), at any depth → ``INVALID_PARAMETER``:
  no column holds one.
The message names the parameter (``smartcard_identifier.serial_number``); the offending value is never echoed.
"""

from __future__ import annotations

import json
import math
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from conax.api.crmparams import CrmError

INT_LIMIT = 2**63 - 1
NOT_AN_OBJECT = "the body must be a JSON object"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def body(request: HttpRequest) -> dict[str, Any]:
    """The POST parameters: a JSON object, checked by ``clean``."""
    try:
        data = json.loads(request.body or b"null", parse_constant=_no_constant)
    except (ValueError, RecursionError, RequestDataTooBig) as exc:
        raise CrmError("INVALID_REQUEST", NOT_AN_OBJECT) from exc
    if not isinstance(data, dict):
        raise CrmError("INVALID_REQUEST", NOT_AN_OBJECT)
    return clean(data)


def query(request: HttpRequest) -> dict[str, str]:
    """The GET parameters (the last value of a repeated name), checked by ``clean``."""
    return clean(request.GET.dict())


def _text_problem(value: str) -> str | None:
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (no lone surrogates)"
    return None


def _refuse(path: str, why: str) -> CrmError:
    return CrmError("INVALID_PARAMETER", f"{path} is not valid", f"{path} {why}")


def _refuse_name(path: str, why: str) -> CrmError:
    where = f"a field name in {path}" if path else "a parameter name"
    return CrmError("INVALID_PARAMETER", f"{where} is not valid", f"{where} {why}")


def _problem(value: Any) -> str | None:
    if isinstance(value, str):
        return _text_problem(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if isinstance(value, int) and not isinstance(value, bool) and not -INT_LIMIT - 1 <= value <= INT_LIMIT:
        return "must be an integer of at most 64 bits"
    return None


def clean(value: Any) -> Any:
    """``value`` unchanged if every name, string and number in it can be stored; else CrmError naming where.

    Iterative, so that the deepest body JSON can parse is walked without recursion."""
    pending: list[tuple[str, Any]] = [("", value)]
    while pending:
        path, item = pending.pop()
        problem = _problem(item)
        if problem:
            raise _refuse(path, problem)
        if isinstance(item, dict):
            for key, child in item.items():
                if _text_problem(key):
                    raise _refuse_name(path, _text_problem(key))
                pending.append((f"{path}.{key}" if path else key, child))
        elif isinstance(item, list):
            pending.extend((f"{path}[{index}]", child) for index, child in enumerate(item))
    return value
