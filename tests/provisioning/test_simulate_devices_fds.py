"""``manage.py simulate_devices --fd``: a real parent binds the ports and passes them down; the simulator serves
box i on the i-th socket, and a restarted simulator serves on the very same ports (nobody can take them meanwhile).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import httpx
import pytest

from tests.conftest import REPO, clean_env

pytestmark = pytest.mark.slow
TIMEOUT = 5.0
VERSION_CALL = '{"jsonrpc":"2.0","id":1,"method":"com.comcast.DeviceProvisioning.getApiVersionNumber"}'


def listening_sockets(count: int) -> list[socket.socket]:
    """What the lead's ``serve`` does: bind (port 0: the OS picks) and listen, before any child exists."""
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        socks.append(sock)
    return socks


def start(socks: list[socket.socket], *extra: str) -> subprocess.Popen:
    fds = [sock.fileno() for sock in socks]
    command = [
        sys.executable,
        "manage.py",
        "simulate_devices",
        *(arg for fd in fds for arg in ("--fd", str(fd))),
        *extra,
    ]
    return subprocess.Popen(
        command, cwd=REPO, env=clean_env(), pass_fds=fds, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def wait_announced(proc: subprocess.Popen, lines: int) -> list[str]:
    """The first ``lines`` lines: the command prints them once every box listens."""
    got = []
    for _ in range(lines):
        line = proc.stdout.readline()
        assert line, f"the simulator ended early: {got!r}"
        got.append(line)
    return got


def stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    rest = proc.stdout.read()
    proc.stdout.close()
    return code, rest


def api_version_at(port: int) -> str:
    answer = httpx.post(f"http://127.0.0.1:{port}/jsonrpc", content=VERSION_CALL, timeout=TIMEOUT)
    return answer.json()["result"]["version"]


def test_box_i_is_served_on_the_ith_inherited_socket_and_a_restart_keeps_the_ports():
    socks = listening_sockets(3)
    ports = [sock.getsockname()[1] for sock in socks]
    try:
        first = start(socks)
        announced = wait_announced(first, 4)
        versions_first = [api_version_at(port) for port in ports]
        code_first, rest_first = stop(first)

        # Between the two runs the ports stay bound by the parent: nobody else can listen on them.
        for port in ports:
            with socket.socket() as intruder, pytest.raises(OSError):
                intruder.bind(("127.0.0.1", port))

        second = start(socks, "--count", "3")
        wait_announced(second, 4)
        versions_second = [api_version_at(port) for port in ports]
        code_second, _ = stop(second)
    finally:
        for sock in socks:
            sock.close()

    assert announced[0] == "Simulating 3 set-top box(es); Ctrl-C or SIGTERM stops them.\n"
    assert [f"127.0.0.1:{port}" in line for line, port in zip(announced[1:], ports, strict=True)] == [True] * 3
    # Box i has API version 1 + i % 3: the answers prove which box sits on which socket.
    assert versions_first == versions_second == ["1", "2", "3"]
    assert (code_first, rest_first, code_second) == (0, "Simulator stopped.\n", 0)


def test_a_request_waiting_in_the_backlog_while_the_simulator_restarts_is_answered():
    socks = listening_sockets(1)
    try:
        first = start(socks)
        wait_announced(first, 2)
        stop(first)
        # Nobody serves now, but the parent's socket still listens: the connection is accepted by the kernel...
        waiting = socket.create_connection(("127.0.0.1", socks[0].getsockname()[1]), timeout=TIMEOUT)
        body = VERSION_CALL.encode()
        waiting.sendall(
            b"POST /jsonrpc HTTP/1.1\r\nHost: box\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )
        second = start(socks)  # ...and answered by the next simulator
        wait_announced(second, 2)
        reply = b""
        while chunk := waiting.recv(65536):
            reply += chunk
        waiting.close()
        stop(second)
    finally:
        for sock in socks:
            sock.close()

    head, _, payload = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert payload == b'{"jsonrpc":"2.0","id":1,"result":{"version":"1","success":true}}'


@pytest.mark.parametrize(
    ("make", "extra", "message"),
    [
        pytest.param("bound-only", (), "not a bound and listening TCP socket", id="not-listening"),
        pytest.param("udp", (), "not a bound and listening TCP socket", id="udp"),
        pytest.param("listening", ("--port", "0"), "--fd and --port exclude each other", id="with-port"),
        pytest.param("listening", ("--count", "2"), "--count 2 does not match the 1 --fd given", id="count"),
    ],
)
def test_unusable_descriptors_are_refused_with_a_clear_message(make, extra, message):
    if make == "udp":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
    else:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        if make == "listening":
            sock.listen()
    try:
        proc = start([sock], *extra)
        output, _ = proc.communicate(timeout=60)
    finally:
        sock.close()

    assert proc.returncode == 1
    assert message in output
    assert "Traceback" not in output


def test_a_descriptor_that_is_not_open_is_refused():
    unused_fd = 1000  # far above anything a fresh interpreter opens
    proc = subprocess.run(
        [sys.executable, "manage.py", "simulate_devices", "--fd", str(unused_fd)],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert proc.returncode == 1
    assert f"--fd {unused_fd}: not an open socket" in proc.stdout + proc.stderr
