"""Request ids: one id per incoming request, in every log line of that request, carried into the tasks it queues
(and their log lines, and the tasks they queue) and into the live events it publishes.

- ``RequestIdMiddleware`` (first in ``MIDDLEWARE``) takes the ``X-Request-ID`` header only from a peer in
  ``TRUSTED_PROXIES`` (nginx sends its ``$request_id``) and only in a safe shape (``ACCEPTED``: 1 to 64 letters, digits,
  ``.``, ``_``, ``-``); anyone else's header is ignored and a fresh id (32 hex digits) made. The response carries it
  back in ``X-Request-ID``.
- The id lives in a context variable; ``RequestIdFilter`` (on the log handler) puts it on every record as
  ``request_id``, so every logger's lines carry it.
- Celery: ``before_task_publish`` adds it to the message's headers (never to the task's arguments); the worker binds
  it around the task (``task_prerun`` / ``task_postrun``), per thread on the thread pool.
- Live events: ``portal.kernel.live.publish`` adds it to the channel-layer message, the consumers log it and strip it
  before the event goes to the browser.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from celery import Task, signals
from django.http import HttpRequest, HttpResponseBase

from portal.kernel.remote import is_trusted_proxy

HEADER = "X-Request-ID"
META_KEY = "HTTP_X_REQUEST_ID"
TASK_HEADER = "portal_request_id"
# Short enough that no secret shape fits (the log filter masks 40- and 64-hex words: a 64-hex id would be masked).
ACCEPTED = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("portal_request_id", default=None)


def current() -> str | None:
    """The id of the request or task running now, or None (beat, a management command)."""
    return _current.get()


def new_id() -> str:
    return uuid.uuid4().hex


def from_request(request: HttpRequest) -> str:
    """The trusted proxy's id when it sent a well-formed one, else a fresh one."""
    given = request.META.get(META_KEY, "")
    if given and ACCEPTED.match(given) and is_trusted_proxy(request.META.get("REMOTE_ADDR") or ""):
        return given
    return new_id()


def from_scope(scope: dict[str, Any]) -> str:
    """The same rule for a WebSocket handshake (an ASGI scope)."""
    client = scope.get("client") or ("", 0)
    for name, value in scope.get("headers", ()):
        if name.lower() == b"x-request-id":
            given = value.decode("latin-1")
            if ACCEPTED.match(given) and is_trusted_proxy(str(client[0])):
                return given
    return new_id()


@contextmanager
def bound(request_id: str | None) -> Iterator[None]:
    """Run the block with ``request_id`` as the current id (None: none)."""
    token = _current.set(request_id)
    try:
        yield
    finally:
        _current.reset(token)


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request_id = from_request(request)
        with bound(request_id):
            response = self.get_response(request)
        response[HEADER] = request_id
        return response


class RequestIdFilter(logging.Filter):
    """Every record gets the current id as ``request_id`` (unless the caller named one); none outside requests."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            request_id = _current.get()
            if request_id is not None:
                record.request_id = request_id
        return True


# --- Celery: the id travels in the message's headers -------------------------------------------------------------


@signals.before_task_publish.connect
def _publish_with_id(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    request_id = _current.get()
    if request_id is not None and headers is not None and TASK_HEADER not in headers:
        headers[TASK_HEADER] = request_id


_task_tokens: dict[str | None, contextvars.Token[str | None]] = {}


def task_request_id(task: Task | None) -> str | None:
    request = getattr(task, "request", None)
    if request is None:
        return None
    value = getattr(request, TASK_HEADER, None) or (getattr(request, "headers", None) or {}).get(TASK_HEADER)
    return value if isinstance(value, str) and ACCEPTED.match(value) else None


@signals.task_prerun.connect
def _bind_task(task_id: str | None = None, task: Task | None = None, **kwargs: Any) -> None:
    if task is not None and getattr(task.request, "is_eager", False):
        return  # run in place: the caller's id is already the current one
    _task_tokens[task_id] = _current.set(task_request_id(task))


@signals.task_postrun.connect
def _unbind_task(task_id: str | None = None, **kwargs: Any) -> None:
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        try:
            _current.reset(token)
        except ValueError:  # set in another context (should not happen): leave no id behind
            _current.set(None)
