"""Structured logging: one ``key=value`` line per request and per task.

Request lines carry the path without its query string: CRM.COM-style GET requests put their token there.
Task lines carry the task name, id, state and runtime, never arguments or results.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from celery import signals

request_log = logging.getLogger("portal.request")
task_log = logging.getLogger("portal.task")

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _quote(value: object) -> str:
    text = str(value)
    if text == "" or any(ch in text for ch in ' ="\n\\'):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class KeyValueFormatter(logging.Formatter):
    """``ts=… level=… logger=… msg=… key=value…`` from the record and its ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
        parts = [f"ts={ts}", f"level={record.levelname}", f"logger={record.name}", f"msg={_quote(record.getMessage())}"]
        parts += [f"{key}={_quote(val)}" for key, val in vars(record).items() if key not in _STANDARD_ATTRS]
        if record.exc_info:
            parts.append(f"exc={_quote(self.formatException(record.exc_info))}")
        return " ".join(parts)


class RequestLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
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
        return response


_task_started: dict[str, float] = {}


@signals.task_prerun.connect
def _task_prerun(task_id=None, task=None, **kwargs) -> None:
    _task_started[task_id] = time.perf_counter()


@signals.task_postrun.connect
def _task_postrun(task_id=None, task=None, state=None, **kwargs) -> None:
    started = _task_started.pop(task_id, None)
    runtime = round((time.perf_counter() - started) * 1000, 1) if started is not None else "-"
    task_log.info(
        "task",
        extra={
            "task": getattr(task, "name", "?"),
            "task_id": task_id,
            "state": state,
            "runtime_ms": runtime,
            "retries": getattr(getattr(task, "request", None), "retries", 0),
        },
    )
