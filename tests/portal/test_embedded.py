"""The README's run command, started the way a newcomer starts it: a real process on a real port."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys

import httpx
import pytest

from tests.conftest import REPO, clean_env, free_port
from tests.waiting import wait_for

pytestmark = pytest.mark.slow
START_TIMEOUT = 180


def wait_ready(base: str, proc: subprocess.Popen, need_worker: bool = True) -> dict:
    body: dict = {}

    def ready() -> dict | None:
        nonlocal body
        assert proc.poll() is None, f"run command exited with {proc.returncode}"
        response = httpx.get(f"{base}/readyz", timeout=2)
        body = response.json()
        if response.status_code == 200 and (not need_worker or body["workers"]["workers_seen"] >= 1):
            return body
        return None

    return wait_for(ready, timeout=START_TIMEOUT, interval=0.5, ignore=(httpx.HTTPError,), message=lambda: str(body))


def start_run(var_dir, port: int, **env: str) -> subprocess.Popen:
    # `make run`, exactly as the README says; a new session so that SIGINT reaches the whole group like Ctrl-C.
    return subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=REPO,
        env=clean_env(PORTAL_VAR_DIR=str(var_dir), PORT=str(port), **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def ctrl_c(proc: subprocess.Popen) -> str:
    os.killpg(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    return output


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pgid: int, timeout: float = 30) -> bool:
    """Whether the process group ``pgid`` ended within ``timeout`` (the caller asserts it, with its own words)."""
    try:
        wait_for(lambda: not group_alive(pgid), timeout=timeout, interval=0.2)
    except AssertionError:
        return False
    return True


def device_count(var_dir) -> int:
    with sqlite3.connect(var_dir / "portal.sqlite3") as db:
        return db.execute("SELECT count(*) FROM devices_device").fetchone()[0]


def test_run_command_serves_admin_and_readyz_with_a_worker_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_run(tmp_path, port)
    try:
        ready = wait_ready(base, proc)
        login_page = httpx.get(f"{base}/admin/login/", timeout=5)
        css = httpx.get(f"{base}/static/admin/css/base.css", timeout=5)
        docs = httpx.get(f"{base}/api/docs/", timeout=5)
        cas_state = conax_request_completes(base)
    finally:
        output = ctrl_c(proc)

    assert ready["checks"] == {"database": "ok", "redis": "not configured", "broker": "ok"}
    assert login_page.status_code == 200
    assert "<title>Log in | Provisioning portal</title>" in login_page.text
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    assert "support  / support-demo-2026" in output
    assert "5 simulated set-top boxes on 127.0.0.1:" in output
    assert f"Customer pages at {base}/login/" in output and f"API docs at {base}/api/docs/" in output
    # the Conax request's task logged by the portal's own line (with the creating request's id), not Celery's (which
    # carries the task's arguments)
    assert "Task conax.tasks.process_requests" not in output
    assert re.search(r"logger=portal\.task request_id=\w+ msg=task task=conax\.tasks\.process_requests ", output)
    # make reports the interrupt (-SIGINT) like any Ctrl-C'd make; what matters is that its children stopped cleanly.
    assert proc.returncode in (0, -signal.SIGINT)
    assert "Warm shutdown" in output and "Finished server process" in output
    assert wait_gone(proc.pid), "the worker or the server outlived Ctrl-C"
    assert device_count(tmp_path) == 360
    assert cas_state == "COMPLETED"  # through the worker and the demo's CAS simulator process


def conax_request_completes(base: str) -> str:
    """A CRM.COM request made with the demo's support user goes PENDING → a final state in the embedded default."""
    crm = f"{base}/crmapi/rest/v2/"
    login = {"username": "support", "password": "support-demo-2026", "organisation": "portal"}
    token = httpx.post(crm + "authentication/token", json=login, timeout=10).json()["data"]["token"]
    body = {
        "token": token,
        "subscription_identifier": {"number": "SUB-ALICE"},
        "service_identifier": {"code": "BASIC"},
        "smartcard_identifier": {"serial_number": "SC-000000"},
        "process_immediately": 1,
    }
    created = httpx.post(crm + "conax_web_services/provisioning_requests/add_subscriptions", json=body, timeout=10)
    number = created.json()["data"]["number"]

    def final_state() -> str | None:
        shown = httpx.get(
            crm + "conax_web_services/provisioning_requests/show",
            params={"token": token, "number": number, "fields_set": "life_cycle_state"},
            timeout=10,
        )
        state = shown.json()["data"]["life_cycle_state"]
        return None if state == "PENDING" else state

    return wait_for(final_state, timeout=60, interval=0.5, message=f"request {number} still PENDING")


def test_running_twice_is_safe(tmp_path):
    port = free_port()
    for _ in range(2):
        proc = start_run(tmp_path, port)
        try:
            wait_ready(f"http://127.0.0.1:{port}", proc, need_worker=False)
        finally:
            output = ctrl_c(proc)
        assert proc.returncode in (0, -signal.SIGINT), output[-3000:]

    assert "360 devices (0 new)" in output
    assert device_count(tmp_path) == 360


@pytest.mark.postgres
def test_readyz_names_the_database_when_it_is_unreachable(tmp_path):
    port = free_port()
    env = clean_env(PORTAL_VAR_DIR=str(tmp_path), DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/portal")
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "portal.asgi:application", "--port", str(port), "--no-access-log"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def answer() -> httpx.Response:
        assert server.poll() is None, "the server exited"
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)

    try:
        response = wait_for(answer, timeout=30, interval=0.3, ignore=(httpx.TransportError,))
    finally:
        server.terminate()
        server.wait(timeout=20)

    assert response.status_code == 503
    assert response.json()["failing"] == ["database"]
    assert response.json()["checks"]["database"] == "error: OperationalError"
