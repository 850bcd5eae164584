"""The management dialect's wire: body reading, form / CSV parsing, plain-text and CSV answers, vendor
authentication, and its one mapping of domain errors to statuses.

Answers as the documentation gives them: 205 Reset Content with an empty body for a change, 200
``text/csv; charset=utf-8`` for a list (204 when it is empty), short plain-text errors (400 bad input, 403 a
missing or wrong vendor token, 404 nothing of that name for this vendor, 409 a state or existence conflict).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from functools import wraps
from urllib.parse import parse_qsl

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from devices import vendor_tokens
from devices.exceptions import VendorTokenInvalid
from devices.models import DeviceModel, VendorToken
from portal.kernel.audit import set_audit_actor_label
from portal.kernel.errors import Category, DomainError

TEXT = "text/plain; charset=utf-8"
CSV = "text/csv; charset=utf-8"
FORM = "application/x-www-form-urlencoded"
FORM_UTF8 = "application/x-www-form-urlencoded; charset=utf-8"
JSON_TYPES = ("application/javascript", "application/json")

# The dialect's one mapping of domain errors (portal.kernel.errors lists every dialect's).
STATUS = {
    Category.NOT_FOUND: 404,
    Category.CONFLICT: 409,
    Category.INVALID: 400,
    Category.DENIED: 403,
    Category.UNAVAILABLE: 503,
}

STATUS_BY_CODE = {"CONTENT_TOO_LARGE": 413}


class Refusal(Exception):
    """An answer other than success, decided by the view (status and one line of text)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def text(body: str, status: int = 200) -> HttpResponse:
    return HttpResponse(body, status=status, content_type=TEXT)


def empty(status: int) -> HttpResponse:
    """205 / 204: no body, and no Content-Type (the documentation's answers carry none)."""
    response = HttpResponse(status=status)
    del response["Content-Type"]
    return response


def reset() -> HttpResponse:
    return empty(205)


def csv_line(values: Iterable[object]) -> str:
    """One CSV record; a field with a comma, a quote or a line break is quoted (RFC 4180)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(["" if v is None else v for v in values])
    return out.getvalue()


def csv_answer(lines: Iterable[str]) -> HttpResponse:
    """A list, one record per line, no trailing newline; 204 when there is none."""
    body = "\n".join(lines)
    if not body:
        return empty(204)
    return HttpResponse(body, content_type=CSV)


def media_type(request: HttpRequest) -> str:
    return request.META.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()


def read_body(request: HttpRequest, limit: int | None = None) -> bytes:
    limit = settings.EXOSITE_FORM_MAX_BYTES if limit is None else limit
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit():
        raise Refusal(400, "bad Content-Length")
    if int(declared) > limit:
        raise Refusal(413, "body too large")
    body = request.read(limit + 1)
    if len(body) > limit:
        raise Refusal(413, "body too large")
    return body


def decode(body: bytes, what: str = "body") -> str:
    try:
        decoded = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refusal(400, f"{what} is not valid UTF-8") from exc
    if "\x00" in decoded:
        raise Refusal(400, f"{what} contains NUL")
    return decoded


class Form:
    """A form body or query string: ``name=value`` pairs, ``name[]`` lists (as PHP-style clients send them)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    @classmethod
    def parse(cls, raw: bytes | str) -> Form:
        try:
            source = raw.decode("ascii") if isinstance(raw, bytes) else raw
            pairs = parse_qsl(source, keep_blank_values=True, encoding="utf-8", errors="strict")
        except (UnicodeDecodeError, ValueError) as exc:
            raise Refusal(400, "body is not valid UTF-8 form data") from exc
        for name, value in pairs:
            if not (name.isprintable() and value.isprintable()):
                raise Refusal(400, f"field {name if name.isprintable() else '?'} contains control characters")
        return cls(pairs)

    def __contains__(self, name: str) -> bool:
        return any(n == name for n, _ in self.pairs)

    def get(self, name: str, default: str | None = None, *, limit: int = 1024) -> str | None:
        values = [v for n, v in self.pairs if n == name]
        if len(values) > 1:
            raise Refusal(400, f"field {name} given more than once")
        if values and len(values[0]) > limit:
            raise Refusal(400, f"field {name} longer than {limit} characters")
        return values[0] if values else default

    def getlist(self, name: str) -> list[str]:
        """``name[]=a&name[]=b`` (and ``name=a`` alongside, as the documentation's own examples mix them)."""
        return [v for n, v in self.pairs if n in (name, f"{name}[]")]

    def flag(self, name: str) -> bool:
        value = self.get(name)
        if value is None:
            return False
        if value.lower() not in ("true", "false", "1", "0", ""):
            raise Refusal(400, f"field {name} must be true or false")
        return value.lower() in ("true", "1")


def query(request: HttpRequest) -> Form:
    return Form.parse(request.META.get("QUERY_STRING", ""))


def body_form(request: HttpRequest) -> Form:
    """A form body; PUT and DELETE from pyonep carry one without any Content-Type."""
    kind = media_type(request)
    if kind not in ("", FORM):
        raise Refusal(400, f"Content-Type must be {FORM}")
    return Form.parse(read_body(request))


# --- authentication ---------------------------------------------------------------------------------------------


def vendor_token(request: HttpRequest) -> VendorToken:
    """``X-Exosite-Token``; or the token in ``X-Exosite-CIK``, where the documentation lets a vendor send its CIK
    (pyonep's ``manage_by_cik=True``): a vendor's key in the portal is its token."""
    raw = request.META.get("HTTP_X_EXOSITE_TOKEN") or request.META.get("HTTP_X_EXOSITE_CIK") or ""
    if not raw:
        raise Refusal(403, "missing X-Exosite-Token")
    try:
        token = vendor_tokens.vendor_token_authenticate(raw=raw)
    except VendorTokenInvalid as exc:
        raise Refusal(403, "invalid vendor token") from exc
    shared = request.META.get("HTTP_X_EXOSITE_VENDOR")
    if shared is not None and shared != token.vendor.name:
        raise Refusal(403, "model sharing is not supported")
    set_audit_actor_label(f"vendor token #{token.pk} {token.vendor.name}/{token.name}")
    return token


def vendor_model(token: VendorToken, name: str, status: int = 404) -> DeviceModel:
    """The token's vendor's model of this name; another vendor's model is as unknown as a missing one."""
    found = DeviceModel.objects.filter(vendor_id=token.vendor_id, name=name).select_related("vendor").first()
    if found is None:
        raise Refusal(status, "model not found")
    return found


def view(methods: tuple[str, ...], *, authenticate: bool = True) -> Callable:
    """A view of the dialect: method check, vendor authentication, and the one place errors become answers."""

    def decorate(function: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @csrf_exempt
        @wraps(function)
        def wrapper(request: HttpRequest, *args: str, **kwargs: str) -> HttpResponseBase:
            if request.method not in methods:
                response = text("method not allowed", 405)
                response["Allow"] = ", ".join(methods)
                return response
            if not all(value.isprintable() for value in kwargs.values()):
                return text("not found", 404)  # a NUL or control character in the path names nothing
            try:
                if authenticate:
                    return function(request, vendor_token(request), *args, **kwargs)
                return function(request, *args, **kwargs)
            except Refusal as refusal:
                return text(refusal.message, refusal.status)
            except DomainError as error:
                return text(error.message, STATUS_BY_CODE.get(error.code) or STATUS[error.category])

        return wrapper

    return decorate
