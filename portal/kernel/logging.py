"""Structured logging: one ``key=value`` line per request and per task, and no secret in any log line.

Request lines carry the path without its query string: CRM.COM-style GET requests put their token there.
Task lines carry the task name, id, state and runtime, never arguments or results.

Secrets (tokens, CIKs, passwords, CA PINs, session keys) never reach the output, from any logger at any level:
``SecretFilter`` (on the handler, so it covers every logger; ``KeyValueFormatter`` applies it too) rewrites each
record before it is formatted, in four ways:

- a request object (``django.request``'s ``request`` extra, or an argument) becomes ``<Request GET /path>``: its
  repr would carry the query string;
- the values this request carried as secrets (query, form, JSON body, ``Authorization``, ``X-Exosite-CIK``,
  ``token`` header, session cookie) and the secrets the portal handed out during it (``note_secret``) are masked
  wherever they appear, also URL- or JSON-escaped, e.g. inside an exception message;
- ``name=value`` / ``"name": "value"`` pairs whose name says secret (token, password, cik, pin, secret, session) are
  masked, for secrets from outside a request;
- 40- and 64-hex-digit words (the shapes of CIKs and tokens) are masked;
- SQL (``django.db.backends``, DEBUG) keeps its statements with every string literal and parameter masked.

Message, arguments, extra fields, exception text and stack are all rewritten; the traceback is formatted once and
kept redacted in ``exc_text``.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, quote_plus

from celery import Task, signals
from django.http import HttpRequest, HttpResponseBase

from portal.kernel import requestid

request_log = logging.getLogger("portal.request")
task_log = logging.getLogger("portal.task")

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "_redacted"}


def _quote(value: object) -> str:
    text = str(value)
    if text == "" or any(ch in text for ch in ' ="\n\\'):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


# --- secrets ---------------------------------------------------------------------------------------------------------

MASK = "********"
WITHHELD = "(log line withheld: it could not be checked for secrets)"
MIN_SECRET = 4  # shorter values would mask ordinary digits and words everywhere
SECRET_NAME = r"[\w-]*?(?:token|password|passwd|secret|cik|pin|sessionid|session_key|authorization)\d*"  # noqa: S105
_NAMED = re.compile(
    rf"(?i)(?P<key>\b{SECRET_NAME})(?P<sep>\\?[\"']?\s*[:=]\s*(?:\\?[\"'])?(?:(?:token|bearer|basic)\s+)?)"
    r"(?P<value>[^\s&\"',;}\]\\)]+)"
)
_SQL_LITERAL = re.compile(r"'(?:[^']|'')*'")
_HEX = re.compile(r"(?i)(?<![0-9a-f])(?:[0-9a-f]{64}|[0-9a-f]{40})(?![0-9a-f])")
SECRET_HEADERS = ("HTTP_AUTHORIZATION", "HTTP_X_EXOSITE_CIK", "HTTP_TOKEN", "HTTP_X_CSRFTOKEN")
SECRET_FIELDS = re.compile(rf"(?i)^{SECRET_NAME}$")

_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar("portal_log_request", default=None)
_handed_out: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("portal_log_secrets", default=())


def note_secret(value: str) -> None:
    """Mask ``value`` in every log line of the current request or task (a token or CIK the portal hands out)."""
    if isinstance(value, str) and len(value) >= MIN_SECRET:
        _handed_out.set((*_handed_out.get()[-99:], value))


def _request_repr(request: HttpRequest) -> str:
    return f"<Request {request.method} {request.path}>"


def _field_secrets(items: Iterable[tuple[object, object]], out: set[str]) -> None:
    for key, value in items:
        if isinstance(value, dict):
            _field_secrets(value.items(), out)
        elif isinstance(value, list):
            _field_secrets(((key, v) for v in value), out)
        elif isinstance(key, str) and SECRET_FIELDS.match(key) and value is not None:
            out.add(str(value))


def _body_fields(request: HttpRequest) -> list[tuple[object, object]]:
    """The fields of a body the view already read (never read here: that would consume a stream)."""
    posted = getattr(request, "_post", None)
    if posted is not None:
        return list(posted.lists())
    body = getattr(request, "_body", None)
    if body and request.content_type == "application/json":
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return []
        return list(data.items()) if isinstance(data, dict) else []
    return []


def _request_secrets(request: HttpRequest) -> set[str]:
    found: set[str] = set()
    _field_secrets(request.GET.lists(), found)
    _field_secrets(_body_fields(request), found)
    for header in SECRET_HEADERS:
        value = request.META.get(header)
        if value:
            found.add(value)
            found.update(value.split())
    cookie = request.COOKIES.get(_session_cookie_name())
    if cookie:
        found.add(cookie)
    # A session created or cycled by this request (a login) has a key the cookie does not carry yet.
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if session_key:
        found.add(session_key)
    return found


def _session_cookie_name() -> str:
    from django.conf import settings

    return settings.SESSION_COOKIE_NAME


def _variants(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1], repr(secret)[1:-1]}


def current_secrets() -> list[str]:
    """Every value to mask in a line logged now, longest first (so a secret inside another goes with it)."""
    secrets = set(_handed_out.get())
    request = _request.get()
    if request is not None:
        secrets |= _request_secrets(request)
    variants = {v for s in secrets if len(s) >= MIN_SECRET for v in _variants(s)}
    return sorted((v for v in variants if len(v) >= MIN_SECRET), key=len, reverse=True)


def redact(text: str, secrets: list[str] | None = None) -> str:
    for secret in current_secrets() if secrets is None else secrets:
        text = text.replace(secret, MASK)
    text = _NAMED.sub(lambda m: f"{m['key']}{m['sep']}{MASK}", text)
    return _HEX.sub(MASK, text)


def _safe(value: object, secrets: list[str]) -> object:
    if isinstance(value, HttpRequest):
        return _request_repr(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact(str(value), secrets)


class SecretFilter(logging.Filter):
    """Rewrites every record so that no secret reaches any handler's output (see the module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def redact_record(record: logging.LogRecord) -> None:
    if getattr(record, "_redacted", False):
        return
    try:
        _redact_record(record)
    except Exception:  # logging must never raise; fail closed: the line keeps nothing it had
        record.msg, record.args, record.exc_info, record.exc_text, record.stack_info = WITHHELD, None, None, None, None
        for key in [key for key in vars(record) if key not in _STANDARD_ATTRS]:
            delattr(record, key)
    record._redacted = True


def _redact_sql(record: logging.LogRecord) -> None:
    """SQL lines keep their shape, not their values: any string literal or parameter can be a secret (a session key
    being chosen, a PIN being stored) that no request carried."""
    if hasattr(record, "sql"):
        record.sql = _SQL_LITERAL.sub(f"'{MASK}'", str(record.sql))
    if hasattr(record, "params"):
        record.params = MASK
    if isinstance(record.args, tuple) and len(record.args) == 4:
        duration, sql, _params, alias = record.args
        record.args = (duration, _SQL_LITERAL.sub(f"'{MASK}'", str(sql)), MASK, alias)


def _redact_record(record: logging.LogRecord) -> None:
    if record.name.startswith("django.db.backends"):
        _redact_sql(record)
    secrets = current_secrets()
    args = record.args
    if isinstance(args, dict):
        args = {key: _safe(value, secrets) for key, value in args.items()}
    elif args:
        args = tuple(_safe(value, secrets) for value in args)
    try:
        message = str(record.msg) % args if args else str(record.msg)
    except (TypeError, ValueError, KeyError):
        message = f"{record.msg} {args}"
    record.msg, record.args = redact(message, secrets), None
    for key, value in list(vars(record).items()):
        if key not in _STANDARD_ATTRS:
            setattr(record, key, _safe(value, secrets))
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text, secrets)
    if record.stack_info:
        record.stack_info = redact(record.stack_info, secrets)


def _record_request_id(record: logging.LogRecord) -> str | None:
    """The record's request id (``RequestIdFilter`` set it), else the one current while it is formatted."""
    value = getattr(record, "request_id", None)
    return str(value) if value is not None else requestid.current()


_FIXED = {"request_id"}


class KeyValueFormatter(logging.Formatter):
    """``ts=… level=… logger=… [request_id=…] msg=… key=value…`` from the record and its ``extra`` fields, secrets
    masked."""

    def format(self, record: logging.LogRecord) -> str:
        redact_record(record)
        ts = datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
        parts = [f"ts={ts}", f"level={record.levelname}", f"logger={record.name}"]
        if (request_id := _record_request_id(record)) is not None:
            parts.append(f"request_id={_quote(request_id)}")
        parts.append(f"msg={_quote(record.getMessage())}")
        parts += [
            f"{key}={_quote(val)}"
            for key, val in vars(record).items()
            if key not in _STANDARD_ATTRS and key not in _FIXED
        ]
        if record.exc_text:
            parts.append(f"exc={_quote(record.exc_text)}")
        if record.stack_info:
            parts.append(f"stack={_quote(record.stack_info)}")
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    """The same fields as ``KeyValueFormatter``, one JSON object per line (``LOG_FORMAT=json``), secrets masked."""

    def format(self, record: logging.LogRecord) -> str:
        redact_record(record)
        ts = datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
        out: dict[str, object] = {"ts": ts, "level": record.levelname, "logger": record.name}
        if (request_id := _record_request_id(record)) is not None:
            out["request_id"] = request_id
        out["msg"] = record.getMessage()
        for key, val in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in _FIXED:
                out[key] = val if isinstance(val, int | float | bool) or val is None else str(val)
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, ensure_ascii=False)


class RequestLogMiddleware:
    """The request line, and the request whose secrets every line logged during it masks."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        current = _request.set(request)
        handed_out = _handed_out.set(())
        try:
            response = self.get_response(request)
            self._log(request, response, started)
        finally:
            _request.reset(current)
            _handed_out.reset(handed_out)
        return response

    def _log(self, request: HttpRequest, response: HttpResponseBase, started: float) -> None:
        user = getattr(request, "user", None)
        request_log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "user_id": user.pk if user is not None and user.is_authenticated else "-",
                "remote": request.META.get("REMOTE_ADDR", "-"),
            },
        )


_task_started: dict[str | None, float] = {}


@signals.task_prerun.connect
def _task_prerun(task_id: str | None = None, task: Task | None = None, **kwargs: Any) -> None:
    _task_started[task_id] = time.perf_counter()
    _handed_out.set(())  # secrets noted by the previous task in this thread are no longer around


@signals.task_postrun.connect
def _task_postrun(
    task_id: str | None = None, task: Task | None = None, state: str | None = None, **kwargs: Any
) -> None:
    started = _task_started.pop(task_id, None)
    runtime = round((time.perf_counter() - started) * 1000, 1) if started is not None else "-"
    extra = {
        "task": getattr(task, "name", "?"),
        "task_id": task_id,
        "state": state,
        "runtime_ms": runtime,
        "retries": getattr(getattr(task, "request", None), "retries", 0),
    }
    # Named here: the signal that unbinds the task's id may run before this one.
    if (request_id := requestid.task_request_id(task)) is not None:
        extra["request_id"] = request_id
    task_log.info("task", extra=extra)
