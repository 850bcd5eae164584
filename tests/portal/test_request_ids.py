"""Request ids (portal/kernel/requestid.py): one per request, from a trusted proxy or made here, in the response, in
every log line of the request, in the tasks it queues (a real worker's log lines) and in the live events' logs."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
import uuid

import pytest
from asgiref.sync import sync_to_async

from portal.celery import app as celery_app
from portal.kernel import requestid
from portal.kernel.logging import JsonFormatter, KeyValueFormatter
from portal.kernel.tasks import heartbeat
from tests.conftest import REPO, clean_env, subprocess_database_url

# At import, not inside a test: it imports portal.asgi, whose django.setup() re-applies LOGGING and would drop the
# log_output fixture's handler from the root logger mid-test.
from tests.portal.test_live_consumers import ORIGIN, connect, cookie_for
from tests.waiting import wait_for

HEX32 = r"^[0-9a-f]{32}$"


@pytest.fixture
def log_output():
    """The portal's own console handler set-up (request-id filter, secret filter, key=value) on a buffer."""
    from portal.kernel.logging import SecretFilter

    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(requestid.RequestIdFilter())
    handler.addFilter(SecretFilter())
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(old_level)


@pytest.mark.django_db
def test_a_request_gets_a_new_id_in_its_response_and_every_log_line(client, log_output):
    response = client.get("/healthz?token=s3cr3t-in-query")

    request_id = response["X-Request-ID"]
    assert len(request_id) == 32 and int(request_id, 16) >= 0
    [line] = [line for line in log_output.getvalue().splitlines() if "logger=portal.request" in line]
    assert f" logger=portal.request request_id={request_id} msg=request method=GET path=/healthz" in line
    assert "s3cr3t" not in log_output.getvalue()
    assert client.get("/healthz")["X-Request-ID"] != request_id  # one per request


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("proxies", "given", "kept"),
    [
        (["127.0.0.1"], "nginx-0a1b2c", True),  # the trusted proxy's id is kept
        ([], "nginx-0a1b2c", False),  # nobody is trusted: a client cannot choose the id in our logs
        (["10.0.0.0/8"], "nginx-0a1b2c", False),  # the peer (127.0.0.1) is not the proxy
        (["127.0.0.1"], "bad id\nlevel=ERROR", False),  # ill-formed: could forge key=value fields
        (["127.0.0.1"], "x" * 65, False),  # too long
    ],
)
def test_an_incoming_id_is_believed_only_from_a_trusted_proxy_and_in_a_safe_shape(
    client, settings, proxies, given, kept
):
    settings.TRUSTED_PROXIES = proxies

    response = client.get("/healthz", HTTP_X_REQUEST_ID=given)

    if kept:
        assert response["X-Request-ID"] == given
    else:
        assert response["X-Request-ID"] != given
        assert len(response["X-Request-ID"]) == 32


def test_json_lines_carry_the_same_fields_and_mask_secrets():
    with requestid.bound("abc-123"):
        record = logging.makeLogRecord(
            {"name": "x", "levelname": "INFO", "msg": "login token=%s", "args": ("f" * 64,), "detail": "a b"}
        )
        requestid.RequestIdFilter().filter(record)
    line = JsonFormatter().format(record)

    assert json.loads(line) | {"ts": "-"} == {
        "ts": "-",
        "level": "INFO",
        "logger": "x",
        "request_id": "abc-123",
        "msg": "login token=********",
        "detail": "a b",
    }


def test_lines_outside_a_request_carry_no_id():
    record = logging.makeLogRecord({"name": "x", "levelname": "INFO", "msg": "beat"})
    requestid.RequestIdFilter().filter(record)

    assert "request_id" not in KeyValueFormatter().format(record)


# --- a real worker -----------------------------------------------------------------------------------------------


def collect(proc: subprocess.Popen) -> list[str]:
    lines: list[str] = []

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("tests.portal.requestid_urls")
def test_the_id_travels_to_the_task_the_request_queues_and_into_the_workers_log_lines(
    client, settings, tmp_path, redis_url, log_output
):
    # given a real worker (prefork, Redis broker) on a queue of its own, logging at INFO
    queue = f"rid-{uuid.uuid4().hex[:8]}"
    env = clean_env(PORTAL_VAR_DIR=str(tmp_path), DATABASE_URL=subprocess_database_url(), CELERY_BROKER_URL=redis_url)
    command = [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", queue, "-c", "1"]
    command += ["--without-mingle", "--without-gossip", "--loglevel", "INFO"]
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = collect(proc)
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    try:
        # a heartbeat queued outside any request: its task line has no id
        with celery_app.connection_for_write(redis_url) as conn:
            heartbeat.apply_async(connection=conn, queue=queue)
        wait_for(lambda: any("task=portal.kernel.tasks.heartbeat" in line for line in output), timeout=60)

        # when a request through a trusted proxy queues a task
        response = client.get(
            "/queue-heartbeat", {"broker": redis_url, "queue": queue}, HTTP_X_REQUEST_ID="edge-7f3a9c"
        )

        # then the request's lines, and the worker's line of that task, carry the proxy's id
        assert response["X-Request-ID"] == "edge-7f3a9c"
        assert 'request_id=edge-7f3a9c msg="queueing a heartbeat"' in log_output.getvalue()
        line = wait_for(
            lambda: next((line for line in output if "request_id=edge-7f3a9c" in line), None),
            timeout=30,
            message=lambda: "".join(output[-20:]),
        )
        assert " logger=portal.task request_id=edge-7f3a9c msg=task task=portal.kernel.tasks.heartbeat " in line
        assert " state=SUCCESS " in line
        first = next(line for line in output if "task=portal.kernel.tasks.heartbeat" in line)
        assert "request_id" not in first
    finally:
        proc.kill()
        proc.wait(timeout=10)


# --- live events -------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_live_event_carries_the_publishers_id_into_the_socket_servers_log_but_not_to_the_browser(
    client, customer_user, log_output, caplog
):
    caplog.set_level(logging.DEBUG, logger="portal.live")
    from portal.kernel.live import apublish
    from tests.factories import DeviceFactory

    device = await sync_to_async(DeviceFactory)(owner=customer_user)
    cookie = await sync_to_async(cookie_for)(client, customer_user)
    ws, connected, _ = await connect(f"/ws/devices/{device.pk}/", ORIGIN, cookie)
    event = {"type": "device.event", "device_id": device.pk, "event": "x", "status": 200, "at": "2026-12-03T10:00Z"}

    with requestid.bound("edge-live-42"):
        await apublish(event)  # type: ignore[arg-type]
    received = await ws.receive_json_from(timeout=2)
    await ws.disconnect()

    assert connected is True
    assert received == event  # no request_id for the browser
    relayed = [line for line in log_output.getvalue().splitlines() if "live event relayed" in line]
    assert relayed and "request_id=edge-live-42" in relayed[0]


@pytest.mark.django_db(transaction=True)
async def test_a_sockets_opening_and_closing_lines_carry_its_handshakes_id(client, customer_user, log_output, caplog):
    import re

    caplog.set_level(logging.DEBUG, logger="portal.live")
    from tests.factories import DeviceFactory

    device = await sync_to_async(DeviceFactory)(owner=customer_user)
    cookie = await sync_to_async(cookie_for)(client, customer_user)
    ws, connected, _ = await connect(f"/ws/devices/{device.pk}/", ORIGIN, cookie)
    await ws.disconnect()
    _, refused_ok, _ = await connect(f"/ws/devices/{device.pk}/", ORIGIN)  # no session cookie

    lines = log_output.getvalue().splitlines()
    opened = [line for line in lines if "live socket opened" in line]
    closed = [line for line in lines if "live socket closed" in line]
    denied = [line for line in lines if "live socket refused" in line]
    assert (connected, refused_ok) == (True, False)
    [ident] = re.findall(r"request_id=([0-9a-f]{32})", opened[0])
    assert f"request_id={ident}" in closed[0]
    assert "code=4401" in denied[0] and f"request_id={ident}" not in denied[0]
