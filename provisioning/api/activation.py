"""Exosite-style device activation: ``POST /provision/activate`` with a form body of ``vendor``, ``model``, ``sn``.

The dialect: 200 ``text/plain; charset=utf-8`` whose body is the CIK alone (40 lowercase hex characters); 403 the
vendor/model pair is unknown; 404 the serial is unknown for that pair; 409 not enabled, already activated,
expired or disabled; 400 a malformed request; 429 too many attempts (with Retry-After). Error bodies are short
plain text. No authentication.

One sanitising layer (``parse_form``) reads the body: the whole body is ASCII form encoding of strict UTF-8
(percent-escaped invalid UTF-8, an escaped surrogate such as ``%ED%A0%80`` included, is refused), and every name
and every value, of the three fields and of any other, must be printable text (no NUL, no control character, no
surrogate): otherwise 400 with the reason, and nothing but the attempt log line is written.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from devices import services
from devices.choices import ActivationOutcome
from devices.exceptions import ActivationRefused
from portal.kernel.ratelimit import Check, Limit, retry_after
from portal.kernel.remote import client_ip

MAX_BODY = 4096
FIELDS = {"vendor": 64, "model": 64, "sn": services.MAX_FIELD}
FORM_TYPE = "application/x-www-form-urlencoded"

# The dialect's one mapping of domain errors: an ActivationRefused answers by its outcome (status, plain text).
REFUSALS = {
    ActivationOutcome.INVALID_MODEL: (403, "invalid vendor/model pair"),
    ActivationOutcome.UNKNOWN_SERIAL: (404, "serial number not found"),
    ActivationOutcome.NOT_ENABLED: (409, "device not enabled"),
    ActivationOutcome.ALREADY_ACTIVATED: (409, "device already activated"),
    ActivationOutcome.EXPIRED: (409, "activation window expired"),
    ActivationOutcome.DISABLED: (409, "device disabled"),
}


class BadRequest(Exception):
    def __init__(self, reason: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fields = fields or {}


def text(body: str, status: int = 200, **headers: str) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type="text/plain; charset=utf-8", headers=headers)
    return response


def _read_body(request: HttpRequest) -> bytes:
    content_type = request.META.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    if content_type != FORM_TYPE:
        raise BadRequest(f"Content-Type must be {FORM_TYPE}")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError as exc:
        raise BadRequest("bad Content-Length") from exc
    if declared > MAX_BODY:
        raise BadRequest("body too large")
    body = request.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise BadRequest("body too large")
    return body


def parse_form(body: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("body is not valid UTF-8 form data") from exc
    _printable_only(pairs)
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise BadRequest(f"field {name} given more than once", form)
        form[name] = value
    for name, limit in FIELDS.items():
        value = form.get(name, "")
        if not value:
            raise BadRequest(f"missing field {name}", form)
        if len(value) > limit:
            raise BadRequest(f"field {name} longer than {limit} characters", form)
    return form


def _printable_only(pairs: list[tuple[str, str]]) -> None:
    """NUL (PostgreSQL text cannot hold it), control characters and surrogates, in any name or value."""
    for name, value in pairs:
        if not value.isprintable():
            named = name if name in FIELDS else "other"
            raise BadRequest(f"field {named} contains control characters", {k: v for k, v in pairs if k in FIELDS})
        if not name.isprintable():
            raise BadRequest("a field name contains control characters", {k: v for k, v in pairs if k in FIELDS})


def _loggable(value: str, limit: int) -> str:
    """Attempt logs keep what was sent, minus what a database cannot store (NUL) or a log should not hold."""
    return "".join(ch if ch.isprintable() else "?" for ch in value[:limit])


def _limits(ip: str, serial: str | None) -> list[Check]:
    checks = []
    if (per_ip := Limit.parse(settings.ACTIVATION_RATE_LIMIT_IP)) is not None:
        checks.append(Check("activate-ip", ip, per_ip))
    if serial is not None and (per_serial := Limit.parse(settings.ACTIVATION_RATE_LIMIT_SERIAL)) is not None:
        checks.append(Check("activate-sn", serial, per_serial))
    return checks


@csrf_exempt
def activate(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return text("method not allowed", 405, Allow="POST")
    ip = client_ip(request)
    agent = _loggable(request.META.get("HTTP_USER_AGENT", ""), 255)
    try:
        form = parse_form(_read_body(request))
    except BadRequest as bad:
        if (wait := retry_after(_limits(ip, None))) is not None:
            return text("too many requests", 429, **{"Retry-After": str(wait)})
        fields = {name: _loggable(bad.fields.get(name, ""), limit) for name, limit in FIELDS.items()}
        services.activation_attempt_log(
            vendor=fields["vendor"],
            model=fields["model"],
            serial=fields["sn"],
            remote_addr=ip or None,
            user_agent=agent,
            outcome=ActivationOutcome.BAD_REQUEST,
        )
        return text(bad.reason, 400)
    if (wait := retry_after(_limits(ip, f"{form['vendor']}/{form['model']}/{form['sn']}"))) is not None:
        return text("too many requests", 429, **{"Retry-After": str(wait)})
    try:
        cik = services.device_activate(
            vendor=form["vendor"], model=form["model"], serial=form["sn"], remote_addr=ip or None, user_agent=agent
        )
    except ActivationRefused as refused:
        status, message = REFUSALS[refused.outcome]
        return text(message, status)
    return text(cik)
