"""``manage.py simulate_cas`` as an operator runs it: a separate process, an HTTP head-end, stopped by a signal."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading

import httpx
import pytest

from tests.conftest import REPO, clean_env

TIMEOUT = 5.0


class Running:
    """The command in a subprocess; its output arrives line by line in ``lines``."""

    def __init__(self, *args: str) -> None:
        command = [sys.executable, "manage.py", "simulate_cas", *args]
        self.proc = subprocess.Popen(command, cwd=REPO, env=clean_env(PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)  # fmt: skip
        self.lines: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=lambda: [self.lines.put(line) for line in self.proc.stdout])
        self._reader.start()

    def close(self) -> list[str]:
        """Kill it if it still runs; returns the output not read yet."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)
        self.proc.stdout.close()
        return [self.lines.get_nowait() for _ in range(self.lines.qsize())]


@pytest.mark.slow
def test_serves_over_http_until_sigterm():
    running = Running("--port", "0", "--auto-register", "--seed", "1")
    try:
        first = running.lines.get(timeout=30)
        url = re.fullmatch(r"CAS simulator listening on (http://127\.0\.0\.1:\d+); Ctrl-C or SIGTERM stops it\.\n",
                           first).group(1)  # fmt: skip
        body = {"idempotency_key": "A" * 32, "type": "ADD_SUBSCRIPTIONS",
                "params": {"smartcard_ca_id": "C1", "service_ca_id": "P1test"}}  # fmt: skip
        answer = httpx.post(f"{url}/cas/v1/requests", json=body, timeout=TIMEOUT)
        card = httpx.get(f"{url}/admin/cards/C1", timeout=TIMEOUT).json()

        running.proc.send_signal(signal.SIGTERM)
        code = running.proc.wait(timeout=10)
    finally:
        rest = running.close()

    assert url != "http://127.0.0.1:0"
    assert answer.status_code == 200 and answer.json()["outcome"] == "COMPLETED"
    assert card["entitlements"] == ["P1test"]
    assert (code, rest) == (0, ["CAS simulator stopped.\n"])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--port", "0", "--refuse-share", "1.5"], "--refuse-share: must be between 0 and 1"),
        (["--port", "0", "--latency", "-1"], "--latency: must not be negative"),
        (["--port", "70000"], "--port must be between 0 and 65535"),
    ],
    ids=["share", "latency", "port"],
)
def test_refuses_bad_arguments(args, error):
    running = Running(*args)
    try:
        code = running.proc.wait(timeout=30)
    finally:
        output = "".join(running.close())

    assert code != 0 and error in output
