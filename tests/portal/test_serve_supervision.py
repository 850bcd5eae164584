"""``make run`` supervises its children: each one SIGKILLed comes back (one log line) and the portal keeps working;
two portals on one machine (two folders, two PORTs) both come up, their simulators on ports they were given."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.portal.test_embedded import conax_request_completes, ctrl_c, start_run, wait_gone, wait_ready
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

CHILDREN = {
    "cas-simulator": "simulate_cas",
    "worker": "celery",
    "web": "uvicorn",
    "box-simulator": "simulate_devices",
    "listener": "listen_devices",
}
STOPPED = re.compile(r"serve: (\S+) \(pid (\d+)\) stopped: killed by SIGKILL; restart 1 in ")


def serve_pid(make_pid: int) -> int:
    """make's child: ``manage.py serve``."""
    (pid,) = [pid for pid in _children(make_pid) if b"serve" in _cmdline(pid)]
    return pid


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def child_pid(serve: int, name: str, timeout: float = 60) -> int:
    """The pid of serve's child ``name`` (by its command line), waiting for it to be there."""

    def found() -> int | None:
        return next((pid for pid in _children(serve) if CHILDREN[name].encode() in _cmdline(pid)), None)

    return wait_for(found, timeout=timeout, interval=0.2, message=f"{name} did not come back")


def refresh_succeeds(base: str) -> str:
    """A refresh of a demo box (simulated) through the staff API: its command's final state."""
    login = httpx.post(
        f"{base}/api/v1/auth/token/", json={"username": "support", "password": "support-demo-2026"}, timeout=10
    )
    headers = {"Authorization": f"Token {login.json()['token']}"}
    (device,) = httpx.get(f"{base}/api/v1/devices/", params={"q": "STB-4K-000001"}, headers=headers, timeout=10).json()[
        "results"
    ]
    command = httpx.post(f"{base}/api/v1/devices/{device['id']}/refresh/", headers=headers, timeout=10).json()
    if command["state"] in ("SUCCEEDED", "FAILED"):
        return command["state"]

    def final_state() -> str | None:
        rows = httpx.get(f"{base}/api/v1/commands/", params={"limit": 50}, headers=headers, timeout=10).json()
        state = next(row["state"] for row in rows["results"] if row["id"] == command["id"])
        return state if state in ("SUCCEEDED", "FAILED") else None

    return wait_for(final_state, timeout=90, interval=0.5, message=f"command {command['id']} did not finish")


def test_every_child_killed_comes_back_and_the_portal_keeps_working(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_run(tmp_path, port)
    results: dict[str, tuple[int, int]] = {}
    try:
        wait_ready(base, proc)
        serve = serve_pid(proc.pid)
        for name in CHILDREN:
            old = child_pid(serve, name)
            os.kill(old, signal.SIGKILL)
            results[name] = (old, _wait_new(serve, name, old))
        wait_ready(base, proc)
        after = {"conax": conax_request_completes(base), "command": refresh_succeeds(base)}
    finally:
        output = ctrl_c(proc)

    assert all(old != new for old, new in results.values()), results
    assert {m[0] for m in STOPPED.findall(output)} == set(CHILDREN), output[-3000:]
    assert after == {"conax": "COMPLETED", "command": "SUCCEEDED"}
    assert wait_gone(proc.pid)


def _wait_new(serve: int, name: str, old: int, timeout: float = 60) -> int:
    def restarted() -> int | None:
        new = child_pid(serve, name)
        return new if new != old else None

    return wait_for(restarted, timeout=timeout, interval=0.2, message=f"{name} was not restarted")


def test_two_portals_on_one_machine_both_come_up_on_the_ports_they_were_given(tmp_path):
    ports = [free_port(), free_port()]
    procs = []
    try:
        for n, port in enumerate(ports):
            # Fixed simulator ports by variable for the second one; the first takes free ones.
            extra = {"CAS_SIMULATOR_PORT": str(free_port())} if n else {}
            procs.append(start_run(tmp_path / f"clone{n}", port, **extra))
        ready = [wait_ready(f"http://127.0.0.1:{port}", proc) for port, proc in zip(ports, procs, strict=True)]
        states = [conax_request_completes(f"http://127.0.0.1:{port}") for port in ports]
    finally:
        outputs = [ctrl_c(proc) for proc in procs]

    assert [body["checks"]["database"] for body in ready] == ["ok", "ok"]
    assert states == ["COMPLETED", "COMPLETED"]
    assert all("Traceback" not in output for output in outputs), outputs
