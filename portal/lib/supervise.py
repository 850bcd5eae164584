"""A small process supervisor for the embedded default (``manage.py serve``): no Django, no third party.

Each child is restarted when it dies, after a backoff that doubles from ``BACKOFF_FIRST`` up to ``BACKOFF_MAX``
seconds and starts again from the beginning once a child has stayed up ``STABLE_SECONDS``; every exit is one log
line naming the process, its exit code (or signal) and its restart count. SIGINT or SIGTERM stops every child
(SIGTERM, then SIGKILL after ``STOP_GRACE_SECONDS``) and ends the run with code 0. Each child runs in its own
process group (what a dead child leaves behind is killed before it starts again) and is sent SIGTERM by the
kernel if the supervisor itself dies (``PR_SET_PDEATHSIG``), so no child outlives it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
STABLE_SECONDS = 60.0
STOP_GRACE_SECONDS = 15.0
POLL_SECONDS = 0.2


@dataclass
class Child:
    name: str
    command: Sequence[str]
    env: dict[str, str] | None = None
    pass_fds: tuple[int, ...] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    restarts: int = 0
    started_at: float = 0.0
    due_at: float | None = None  # when a dead child is started again
    failures: int = 0  # consecutive short-lived runs: the backoff exponent

    def start(self) -> None:
        # Its own process group, so that what it leaves behind when it dies (a worker's pool processes) can be
        # cleared before it starts again; and it dies with the supervisor, however the supervisor ends.
        self.process = subprocess.Popen(  # noqa: S603
            self.command, env=self.env, pass_fds=self.pass_fds, process_group=0, preexec_fn=_die_with_parent
        )
        self.started_at = time.monotonic()
        self.due_at = None

    def clear_group(self) -> None:
        """Kill whatever is left of a dead child's process group (its own children)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def exit_reason(self) -> str:
        code = self.process.returncode if self.process is not None else None
        if code is not None and code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"


class Supervisor:
    def __init__(self, children: list[Child], *, log: Callable[[str], None]) -> None:
        self.children = children
        self.log = log
        self.stop_signal: int | None = None

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        for child in self.children:
            child.start()
        while self.stop_signal is None:
            self.tick(time.monotonic())
            time.sleep(POLL_SECONDS)
        self.stop()
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_signal = signum

    def tick(self, now: float) -> None:
        for child in self.children:
            if child.due_at is not None:
                if now >= child.due_at:
                    child.restarts += 1
                    child.start()
            elif child.process is not None and child.process.poll() is not None:
                child.clear_group()
                self._schedule_restart(child, now)

    def _schedule_restart(self, child: Child, now: float) -> None:
        child.failures = 0 if now - child.started_at >= STABLE_SECONDS else child.failures + 1
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, child.failures - 1))
        child.due_at = now + delay
        pid = child.process.pid if child.process is not None else None
        self.log(
            f"serve: {child.name} (pid {pid}) stopped: {child.exit_reason()}; "
            f"restart {child.restarts + 1} in {delay:g}s"
        )

    def stop(self) -> None:
        running = [c.process for c in self.children if c.process is not None and c.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for child in self.children:
            if child.process is not None:
                child.clear_group()


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the supervisor dies (Linux); elsewhere nothing."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
