"""The one way tests wait for something to happen: poll a condition until it is truthy or a deadline passes.

A test that sleeps and then asserts bets that the thing happened meanwhile; waiting for the condition is as fast as
the system and fails with a message when it never happens. ``wait_for`` is the synchronous helper, ``await_for`` its
twin for coroutines (its condition may be a plain function or return an awaitable).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
Message = str | Callable[[], str]


def _failure(message: Message, timeout: float) -> AssertionError:
    text = message() if callable(message) else message
    return AssertionError(f"{text} (waited {timeout:g} s)")


def wait_for(
    condition: Callable[[], T],
    *,
    timeout: float,
    interval: float = 0.1,
    message: Message = "condition not met in time",
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """The first truthy value ``condition()`` returns, polling every ``interval`` seconds; an ``AssertionError`` with
    ``message`` (a string, or a function called at the deadline) after ``timeout``. Exceptions in ``ignore`` count as
    "not yet" (a server not listening yet); any other exception, an assertion included, ends the wait at once."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if result := condition():
                return result
        except ignore:
            pass
        if time.monotonic() >= deadline:
            raise _failure(message, timeout)
        time.sleep(interval)


async def await_for(
    condition: Callable[[], Any],
    *,
    timeout: float,
    interval: float = 0.1,
    message: Message = "condition not met in time",
    ignore: tuple[type[BaseException], ...] = (),
) -> Any:
    """``wait_for`` inside an event loop: the loop keeps running between polls; ``condition`` may be async."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = condition()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
        except ignore:
            pass
        if time.monotonic() >= deadline:
            raise _failure(message, timeout)
        await asyncio.sleep(interval)
