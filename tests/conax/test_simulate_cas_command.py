"""``manage.py simulate_cas`` as an operator runs it: a separate process, an HTTP head-end, stopped by a signal."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading

import httpx
import pytest

from tests.conftest import REPO, clean_env

TIMEOUT = 5.0


class Running:
    """The command in a subprocess; its output arrives line by line in ``lines``."""

    def __init__(self, *args: str, pass_fds: tuple[int, ...] = ()) -> None:
        command = [sys.executable, "manage.py", "simulate_cas", *args]
        self.proc = subprocess.Popen(
            command,
            cwd=REPO,
            env=clean_env(PYTHONUNBUFFERED="1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            pass_fds=pass_fds,
        )
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
        url = re.fullmatch(
            r"CAS simulator listening on (http://127\.0\.0\.1:\d+); Ctrl-C or SIGTERM stops it\.\n", first
        ).group(1)
        body = {
            "idempotency_key": "A" * 32,
            "type": "ADD_SUBSCRIPTIONS",
            "params": {"smartcard_ca_id": "C1", "service_ca_id": "P1test"},
        }
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
        ([], "one of the arguments --port --fd is required"),
        (["--port", "0", "--fd", "3"], "not allowed with argument"),
        (["--fd", "99"], "--fd 99: not an open socket"),
    ],
    ids=["share", "latency", "port", "neither", "both", "closed-fd"],
)
def test_refuses_bad_arguments(args, error):
    running = Running(*args)
    try:
        code = running.proc.wait(timeout=30)
    finally:
        output = "".join(running.close())

    assert code != 0 and error in output


def listening_socket() -> socket.socket:
    """What the parent (``serve``) does: bind port 0 and listen, so the port is the parent's for good."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.set_inheritable(True)
    return sock


def served_url(running: Running) -> str:
    line = running.lines.get(timeout=30)
    return re.fullmatch(
        r"CAS simulator listening on (http://127\.0\.0\.1:\d+); Ctrl-C or SIGTERM stops it\.\n", line
    ).group(1)


def send(url: str, key: str, card: str) -> dict:
    body = {
        "idempotency_key": key,
        "type": "ADD_SUBSCRIPTIONS",
        "params": {"smartcard_ca_id": card, "service_ca_id": "P1test"},
    }
    return httpx.post(f"{url}/cas/v1/requests", json=body, timeout=30).json()


@pytest.mark.slow
def test_serves_on_an_inherited_socket_and_a_restart_keeps_the_port():
    """The parent binds the port once; a simulator killed and started again serves on the same port, and a request
    made while none runs waits in the socket's backlog instead of being refused."""
    parent = listening_socket()
    port = parent.getsockname()[1]
    fd = str(parent.fileno())
    first = Running("--fd", fd, "--auto-register", pass_fds=(parent.fileno(),))
    try:
        url = served_url(first)
        before = send(url, "A" * 32, "C1")
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=10)
        waiting: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: waiting.put(send(f"http://127.0.0.1:{port}", "B" * 32, "C2"))).start()
        second = Running("--fd", fd, "--auto-register", pass_fds=(parent.fileno(),))
        try:
            again = served_url(second)
            during = waiting.get(timeout=30)
            second.proc.send_signal(signal.SIGTERM)
            code = second.proc.wait(timeout=10)
        finally:
            rest = second.close()
    finally:
        first.close()
        parent.close()

    assert url == again == f"http://127.0.0.1:{port}"
    assert before["outcome"] == during["outcome"] == "COMPLETED"
    assert (code, rest) == (0, ["CAS simulator stopped.\n"])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pipe", "not-listening", "udp"])
def test_refuses_an_inherited_descriptor_that_is_not_a_listening_tcp_socket(kind):
    if kind == "pipe":
        read, write = os.pipe()
        keep, fd = [read, write], read
    else:
        sock = socket.socket(type=socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        keep, fd = [sock], sock.fileno()
    try:
        running = Running("--fd", str(fd), pass_fds=(fd,))
        code = running.proc.wait(timeout=30)
        output = "".join(running.close())
    finally:
        for item in keep:
            item.close() if isinstance(item, socket.socket) else os.close(item)

    expected = "not an open socket" if kind == "pipe" else "not a listening TCP socket"
    assert code != 0 and f"--fd {fd}: {expected}" in output
