"""``make prod`` (``manage.py prod``): the production shape from the Procfile, run by honcho behind Debian's nginx
(the project's config), with two gunicorn workers, two uvicorn processes and two Celery worker children; it proves
that they cooperate through nginx, and that killing one process of each kind loses nothing."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings as django_settings
from websockets.sync.client import connect as ws_connect

from conax.models import ProvisioningRequest
from devices import services as device_services
from devices.models import Device
from tests.conax.support import ADD, BASE, REQUESTS, world_load
from tests.conftest import REPO, clean_env, free_port, subprocess_database_url
from tests.factories import PASSWORD, CustomerFactory, DeviceFactory, StaffFactory
from tests.waiting import wait_for

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    # Under CI=true never skipped (.ci/run installs nginx): the test fails instead, naming what is missing.
    pytest.mark.skipif(
        shutil.which("nginx") is None and os.environ.get("CI") != "true",
        reason="nginx is not installed (apt-get install -y nginx)",
    ),
]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


# --- processes ---------------------------------------------------------------------------------------------------


def processes() -> dict[int, tuple[int, str]]:
    """pid → (parent pid, command line), from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if state == "Z":  # dead, not yet reaped by its parent (a SIGKILLed child on a busy machine)
            continue
        found[int(entry.name)] = (int(ppid), cmdline)
    return found


def descendants(root: int) -> dict[int, tuple[int, str]]:
    table = processes()
    out, todo = {}, [root]
    while todo:
        parent = todo.pop()
        for pid, (ppid, cmd) in table.items():
            if ppid == parent:
                out[pid] = (ppid, cmd)
                todo.append(pid)
    return out


def child_of(tree: dict[int, tuple[int, str]], parent_has: str, child_has: str = "") -> int:
    """A process whose parent's command line contains ``parent_has`` (and its own ``child_has``); the parent is the
    server itself, not the shell honcho started it with."""
    for pid, (ppid, cmd) in tree.items():
        parent = tree.get(ppid, (0, ""))[1]
        if parent_has in parent and not parent.startswith(("/bin/sh", "sh ")) and child_has in cmd:
            return pid
    raise AssertionError(f"no child of {parent_has!r} in {sorted(c for _, c in tree.values())}")


# --- clients -----------------------------------------------------------------------------------------------------


def session_cookie(user) -> str:
    from django.test import Client

    client = Client()
    client.force_login(user)
    name = django_settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}"


class Socket:
    """A WebSocket through nginx, its messages collected by a thread."""

    def __init__(self, base: str, path: str, cookie: str) -> None:
        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(
            ws_connect(base.replace("http", "ws") + path, additional_headers={"Cookie": cookie, "Origin": base})
        )
        self.messages: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for message in self.ws:
                self.messages.append(json.loads(message))
        except Exception:  # noqa: S110 - closed by the test or the server
            pass

    def seen(self, **match) -> dict | None:
        return next((m for m in self.messages if all(m.get(k) == v for k, v in match.items())), None)

    def seen_request(self, number: int) -> dict | None:
        """The staff summary of the Conax batch that finished request ``number`` (one per batch)."""
        summaries = (m for m in self.messages if m.get("type") == "cas.requests")
        return next((r for m in summaries for r in m["requests"] if r["number"] == number), None)

    def close(self) -> None:
        self._stack.close()


def crm_login(base: str) -> str:
    body = {"username": "staff", "password": PASSWORD, "organisation": "portal"}
    answer = httpx.post(base + BASE + "authentication/token", json=body, timeout=10).json()
    assert answer["status"]["code"] == "OK", answer
    return answer["data"]["token"]


def crm_add(base: str, token: str, serial: str, priority: str = "REGULAR") -> int:
    body = {"token": token, **ADD, "smartcard_identifier": {"serial_number": serial}, "priority": priority}
    answer = httpx.post(base + REQUESTS + "add_subscriptions", json=body, timeout=10).json()
    assert answer["status"]["code"] == "OK", answer
    return int(answer["data"]["number"])


def activate(base: str, serial: str) -> httpx.Response:
    return httpx.post(base + "/provision/activate", content=f"vendor=acme&model=stb-4k&sn={serial}", headers=FORM)


# --- the tests ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({}, "set DJANGO_ENV=production"),  # the embedded default
        ({"DJANGO_ENV": "production"}, "SECRET_KEY is missing or weak"),  # the settings refuse first
    ],
)
def test_make_prod_refuses_to_start_on_embedded_defaults(tmp_path, env, says):
    run = subprocess.run(
        [sys.executable, "manage.py", "prod", "--print-env"],
        cwd=REPO,
        env=clean_env(PORTAL_VAR_DIR=str(tmp_path), **env),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert run.returncode != 0
    assert says in run.stderr


def test_the_production_shape_cooperates_behind_nginx_and_loses_nothing_when_processes_die(
    tmp_path, redis_url, settings
):
    from django.contrib.auth.hashers import make_password

    # given the data: pending devices of a customer, the Conax seed world, a support user (whose password the
    # shape's production hasher can check: the suite's own fast hasher is not among its hashers)
    customer = CustomerFactory(username="dora")
    staff = StaffFactory(username="staff")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    staff.password = make_password(PASSWORD)
    staff.save(update_fields=["password"])
    model = DeviceFactory(model__vendor__name="acme", model__name="stb-4k", serial_number="SHAPE-0").model
    Device.objects.filter(serial_number="SHAPE-0").update(owner=customer)
    for n in range(1, 4):
        DeviceFactory(model=model, serial_number=f"SHAPE-{n}", owner=customer)
    for device in Device.objects.filter(serial_number__startswith="SHAPE-"):
        device_services.device_enable(device=device)
    world_load()
    # nginx's workers drop root to nobody: the static folder must be readable by others (pytest's tmp_path is not)
    static_root = Path(tempfile.mkdtemp(prefix="portal-static-"))
    static_root.chmod(0o755)
    (static_root / "probe.txt").write_text("served by nginx\n")
    (static_root / "probe.txt").chmod(0o644)

    # and the shape, started as an operator starts it (make prod), on a spare port
    port = free_port()
    env = clean_env(
        DJANGO_ENV="production",
        SECRET_KEY=django_settings.SECRET_KEY,  # the test's sessions must be valid there
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",
        DATABASE_URL=subprocess_database_url(),
        REDIS_URL=redis_url,
        CAS_GATEWAY_URL="inprocess:",
        CAS_DISPATCH_INTERVAL="2",
        CAS_DISPATCH_GRACE_SECONDS="3",
        PORTAL_VAR_DIR=str(tmp_path / "var"),
        STATIC_ROOT=str(static_root),
        PORT=str(port),
        WEB_WORKERS="2",
        ASGI_WORKERS="2",
        WORKER_CONCURRENCY="2",
        EXPRESS_CONCURRENCY="1",
        DEVICES_CONCURRENCY="4",
        ACTIVATION_RATE_LIMIT_IP="0",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    log = (tmp_path / "shape.log").open("w")
    shape = subprocess.Popen(
        [sys.executable, "manage.py", "prod", "--no-migrate", "--no-collectstatic"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    sockets: list[Socket] = []

    def output() -> str:  # the shape's last lines, without the test's own polling of /readyz (which fills them)
        lines = (tmp_path / "shape.log").read_text().splitlines(keepends=True)
        return "".join(line for line in lines if "path=/readyz" not in line)[-4000:]

    try:

        def up() -> bool:  # gunicorn ready, and uvicorn answering behind /ws/ (a plain GET: not 502)
            assert shape.poll() is None, output()
            return (
                httpx.get(base + "/readyz", timeout=2).status_code == 200
                and httpx.get(base + "/ws/ping/", timeout=2).status_code != 502
            )

        ready = wait_for(
            up,
            timeout=60,
            interval=0.3,
            ignore=(httpx.TransportError,),
            message=output,
        )
        assert ready
        wait_for(lambda: httpx.get(base + "/readyz").json()["workers"]["workers_seen"] >= 3, timeout=30, message=output)

        # nginx serves static files itself, and answers with the portal's request id
        static = httpx.get(base + "/static/probe.txt")
        assert (static.status_code, static.text) == (200, "served by nginx\n")

        # a device activates through nginx; its request id is nginx's, in nginx's and the portal's lines
        answer = activate(base, "SHAPE-0")
        assert answer.status_code == 200 and len(answer.text) == 40
        request_id = answer.headers["X-Request-ID"]
        wait_for(lambda: output().count(f"request_id={request_id}") >= 2, timeout=10, message=output)
        cik = answer.text

        # a box event pushed to a gunicorn worker reaches the customer's socket on a uvicorn process
        device = Device.objects.get(serial_number="SHAPE-0")
        customer_ws = Socket(base, f"/ws/devices/{device.pk}/", session_cookie(customer))
        staff_ws = Socket(base, "/ws/staff/", session_cookie(staff))
        sockets += [customer_ws, staff_ws]
        time.sleep(0.5)  # both subscribed (the handshake is accepted after the groups are joined)
        push = {"jsonrpc": "2.0", "method": "client.events.1.provisioningchange", "params": {"status": 200}}
        pushed = httpx.post(base + "/jsonrpc", json=push, headers={"X-Exosite-CIK": cik})
        assert pushed.status_code == 204, pushed.text
        wait_for(lambda: customer_ws.seen(type="device.event", device_id=device.pk), timeout=10)

        # a Conax request created through one web process is completed by a worker and seen live
        token = crm_login(base)
        first = crm_add(base, token, "SC-3020-0005")
        wait_for(lambda: staff_ws.seen_request(first), timeout=20, message=output)
        assert ProvisioningRequest.objects.get(pk=first).life_cycle_state in ("COMPLETED", "REJECTED")

        # when one process of each kind is killed (SIGKILL): a gunicorn worker, a uvicorn process, a child of each
        # Conax worker (right after requests were queued for them) and nginx's worker
        tree = descendants(shape.pid)
        victims = {
            "gunicorn": child_of(tree, "gunicorn"),
            "uvicorn": child_of(tree, "uvicorn", "spawn_main"),
            "celery": child_of(tree, "-Q express,regular"),
            "express": child_of(tree, "-Q express "),
            "nginx": child_of(tree, "nginx: master"),
        }
        later = [crm_add(base, token, "S60058"), crm_add(base, token, "sc20000010", "EXPRESS")]
        for pid in victims.values():
            os.kill(pid, signal.SIGKILL)

        # then the shape carries on: nothing queued is lost, devices activate, sockets connect and get events
        def all_finished() -> bool:
            return not ProvisioningRequest.objects.filter(pk__in=later, life_cycle_state="PENDING").exists()

        wait_for(all_finished, timeout=40, message=output)
        for n in range(1, 4):
            answer = wait_for(
                lambda n=n: activate(base, f"SHAPE-{n}"), timeout=15, ignore=(httpx.TransportError,), message=output
            )
            assert answer.status_code == 200, answer.text
        again = Socket(base, "/ws/staff/", session_cookie(staff))
        sockets.append(again)
        time.sleep(0.5)
        third = crm_add(base, token, "SC-3020-0005", "EXPRESS")
        wait_for(lambda: again.seen_request(third), timeout=20, message=output)
        assert shape.poll() is None, output()
        alive = descendants(shape.pid)
        assert not set(victims.values()) & set(alive)
        assert sum("gunicorn" in cmd for _, cmd in alive.values()) >= 3  # the master replaced its worker
    finally:
        for sock in sockets:
            sock.close()
        os.killpg(shape.pid, signal.SIGTERM)
        try:
            shape.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(shape.pid, signal.SIGKILL)
            shape.wait(timeout=10)
        log.close()
        shutil.rmtree(static_root, ignore_errors=True)
