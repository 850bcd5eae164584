"""The HTTP edge on real servers (production's gunicorn, the embedded default's uvicorn): a database that is down,
bodies over a dialect's limit, unknown paths and proxy headers, each answered in the dialect's own format."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest
import redis

from tests.acceptance.test_exosite_c_library import exchange
from tests.conftest import start_embedded_server, start_gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CIK = "0" * 40
TOKEN = "not-a-real-token-but-well-formed-0123456789"


def start(kind: str, var_dir, **env: str):
    return start_embedded_server(var_dir, **env) if kind == "uvicorn" else start_gunicorn(var_dir, **env)


@pytest.fixture(scope="module")
def refused_port() -> int:
    """A port where nothing listens: the database refuses connections."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module", params=["gunicorn", "uvicorn"])
def down_server(request, refused_port, django_db_setup, django_db_blocker, tmp_path_factory):
    url = f"postgres://postgres@127.0.0.1:{refused_port}/portal"
    with django_db_blocker.unblock():
        base, proc = start(request.param, tmp_path_factory.mktemp("down"), DATABASE_URL=url)
    yield base
    proc.terminate()
    proc.wait(timeout=20)


# (method, path, request kwargs, expected status, expected body): each dialect's own "unavailable".
UNAVAILABLE = [
    ("POST", "/provision/activate", {"data": {"vendor": "v", "model": "m", "sn": "s"}}, 503, "service unavailable"),
    (
        "POST",
        "/jsonrpc",
        {
            "json": {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "client.events.1.provisioningchange",
                "params": {"status": 200},
            },
            "headers": {"X-Exosite-CIK": CIK},
        },
        503,
        {"jsonrpc": "2.0", "id": None, "error": {"code": 2, "message": "ERROR_UNAVAILABLE"}},
    ),
    (
        "POST",
        "/v1/Login/",
        {"data": {"username": "u", "password": "p"}},
        503,
        {
            "token": "ERROR",
            "userid": "",
            "userrole": "",
            "status": "FAILURE",
            "error": "SERVICE_UNAVAILABLE",
            "username": "",
            "CONTENT_TYPE": "",
        },
    ),
    ("GET", "/v1/DeviceProvisioningComponents/", {"headers": {"token": TOKEN}}, 503, {"error": "SERVICE_UNAVAILABLE"}),
    (
        "POST",
        "/crmapi/rest/v2/authentication/token",
        {"json": {"username": "u", "password": "p", "organisation": "portal"}},
        503,
        {
            "status": {
                "code": "SERVICE_UNAVAILABLE",
                "message": "the service is temporarily unavailable, retry later",
                "description": None,
            },
            "data": None,
        },
    ),
    (
        "GET",
        "/crmapi/rest/v2/conax_web_services/provisioning_requests/list",
        {"params": {"token": TOKEN}},
        503,
        {
            "status": {
                "code": "SERVICE_UNAVAILABLE",
                "message": "the service is temporarily unavailable, retry later",
                "description": None,
            },
            "data": None,
        },
    ),
    (
        "GET",
        "/api/v1/devices/",
        {"headers": {"Authorization": f"Token {TOKEN}"}},
        503,
        {"detail": "Service temporarily unavailable, try again later."},
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "body"), UNAVAILABLE, ids=[f"{m} {p}" for m, p, *_ in UNAVAILABLE]
)
def test_a_database_that_refuses_connections_gets_each_dialects_unavailable(
    down_server, method, path, kwargs, status, body
):
    response = httpx.request(method, down_server + path, timeout=30, **kwargs)

    assert response.status_code == status
    assert response.headers["Retry-After"] == "5"
    if isinstance(body, str):
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert response.text == body
    else:
        assert response.headers["Content-Type"] == "application/json"
        assert response.json() == body


def test_healthz_stays_up_while_the_database_is_down(down_server):
    assert httpx.get(f"{down_server}/healthz", timeout=10).status_code == 200


def test_a_person_gets_a_page_not_a_traceback_while_the_database_is_down(down_server):
    response = httpx.post(f"{down_server}/admin/login/", data={"username": "u", "password": "p"}, timeout=30)

    # The admin's CSRF check refuses first (403); a page that needs the database answers the 503 page.
    page = httpx.get(f"{down_server}/admin/", timeout=30, headers={"Cookie": f"sessionid={'a' * 32}"})
    assert response.status_code in (403, 503)
    assert page.status_code == 503
    assert "temporarily unavailable" in page.text


class BlackHole:
    """A "database" that accepts TCP connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.mark.parametrize("kind", ["gunicorn", "uvicorn"])
def test_a_database_that_never_answers_holds_a_request_for_the_connect_timeout_then_none(kind, tmp_path, db):
    hole = BlackHole()
    try:
        base, proc = start(
            kind, tmp_path, DATABASE_URL=f"postgres://postgres@127.0.0.1:{hole.port}/portal", DATABASE_RETRY_AFTER="30"
        )
        try:
            form = {"vendor": "v", "model": "m", "sn": "s"}
            durations = []
            for _ in range(4):
                started = time.monotonic()
                response = httpx.post(f"{base}/provision/activate", data=form, timeout=30)
                durations.append(time.monotonic() - started)
                assert response.status_code == 503
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    finally:
        hole.close()
    # gunicorn runs four processes, each with its own breaker: each may wait once, for the 2 s connect timeout.
    assert all(duration < 4 for duration in durations), durations
    assert sum(duration < 0.5 for duration in durations) >= (3 if kind == "uvicorn" else 0), durations


@pytest.fixture(scope="module", params=["gunicorn", "uvicorn"])
def up_server(request, django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock():
        base, proc = start(request.param, tmp_path_factory.mktemp("up"))
    yield base
    proc.terminate()
    proc.wait(timeout=20)


def chunked_post(base: str, path: str, content_type: str, total: int, chunk: int = 64 * 1024) -> tuple[bytes, int]:
    """POST a chunked body of ``total`` bytes while reading the answer; (answer, bytes sent before it came)."""
    host, port = base.removeprefix("http://").split(":")
    answer = bytearray()
    answered = threading.Event()
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:

        def read() -> None:
            try:
                while data := sock.recv(65536):
                    answer.extend(data)
                    head, sep, body = bytes(answer).partition(b"\r\n\r\n")
                    if sep and len(body) >= _length(head):
                        break
            except OSError:
                pass
            answered.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        piece = f"{chunk:x}\r\n".encode() + b"a" * chunk + b"\r\n"
        try:
            while sent < total and not answered.is_set():
                sock.sendall(piece)
                sent += chunk
            if not answered.is_set():
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed
        reader.join(timeout=30)
    return bytes(answer), sent


def _length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            return int(value)
    return 1


# Activation and /jsonrpc refuse in their views, in their own words (400; JSON-RPC on 202), and log the attempt.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("path", "content_type", "status", "body"),
    [
        ("/provision/activate", "application/x-www-form-urlencoded", b"400", b"\r\n\r\nbody too large"),
        ("/jsonrpc", "application/json", b"202", b'"Invalid Request: body too large"'),
        ("/crmapi/rest/v2/authentication/token", "application/json", b"413", b'"INVALID_REQUEST"'),
        ("/api/v1/auth/token/", "application/json", b"413", b'{"detail": "Request body too large."}'),
    ],
    ids=["activation", "jsonrpc", "crm", "rest"],
)
def test_a_chunked_body_over_the_limit_is_refused_while_streaming(up_server, path, content_type, status, body):
    total = 200 * 1024 * 1024
    answer, sent = chunked_post(up_server, path, content_type, total=total)

    assert answer.split(b" ")[1] == status, answer[:300]
    assert body in answer
    assert sent < 50 * 1024 * 1024, "the answer came only after far more than the limit was sent"


@pytest.mark.django_db(transaction=True)  # the refusal is logged as an activation attempt
def test_a_chunked_body_within_the_limit_is_read_on_every_server(up_server):
    answer, _ = chunked_post(up_server, "/provision/activate", "application/x-www-form-urlencoded", total=64, chunk=32)

    # 64 bytes of "a": a form without the activation fields, read as such (not an empty body).
    assert answer.split(b" ")[1] == b"400", answer
    assert answer.endswith(b"missing field vendor")


FORM = "application/x-www-form-urlencoded"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("path", "sent_type", "status", "content_type", "body"),
    [
        ("/provision/activate", FORM, 400, "text/plain; charset=utf-8", "body too large"),
        (
            "/jsonrpc",
            "application/json",
            202,
            "application/json",
            json.dumps(
                {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Invalid Request: body too large"}}
            ),
        ),
        (
            "/v1/DeviceProvisioningComponents/",
            "application/json",
            200,
            "application/json",
            json.dumps({"error": "INVALID_REQUEST_PRAM"}),
        ),
        (
            "/api/v1/devices/",
            "application/json",
            413,
            "application/json",
            json.dumps({"detail": "Request body too large."}),
        ),
    ],
    ids=["activation", "jsonrpc", "v1", "rest"],
)
def test_a_declared_body_over_the_limit_is_refused_without_reading_it(
    up_server, path, sent_type, status, content_type, body
):
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {sent_type}\r\nContent-Length: {10**9}\r\n\r\n"
    ).encode() + b"a" * 20_000

    answer = exchange(up_server, request)

    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == str(status).encode(), answer[:300]
    assert f"\r\nContent-Type: {content_type}\r\n".encode() in head
    assert payload.decode() == body


@pytest.mark.parametrize(
    ("path", "status", "content_type"),
    [
        ("/provision/nothing-here", 404, "text/plain; charset=utf-8"),
        ("/crmapi/rest/v2/no/such/resource", 404, "application/json"),
        ("/crmapi", 404, "application/json"),
        ("/v1/NoSuchApi/", 200, "application/json"),
        ("/api/v1/no-such-collection/", 404, "application/json"),
    ],
    ids=["activation", "crm", "crm-bare-prefix", "v1", "rest"],
)
def test_an_unknown_path_answers_in_its_dialect(up_server, path, status, content_type):
    response = httpx.get(up_server + path, timeout=10)

    assert response.status_code == status
    assert response.headers["Content-Type"] == content_type
    assert "<html" not in response.text.lower()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)  # the server process logs the attempts: committed rows
@pytest.mark.parametrize("kind", ["gunicorn", "uvicorn"])
def test_a_rotating_x_forwarded_for_does_not_escape_the_activation_rate_limit(kind, tmp_path, redis_url):
    redis.Redis.from_url(redis_url).flushdb()
    base, proc = start(kind, tmp_path, ACTIVATION_RATE_LIMIT_IP="5/60", REDIS_URL=redis_url)
    form = {"vendor": "v", "model": "m", "sn": "s"}
    try:
        codes = [
            httpx.post(
                f"{base}/provision/activate",
                data=form,
                timeout=10,
                headers={"X-Forwarded-For": f"10.0.{n // 250}.{n % 250 + 1}"},
            ).status_code
            for n in range(12)
        ]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        redis.Redis.from_url(redis_url).flushdb()

    assert codes[:5] == [403] * 5
    assert set(codes[5:]) == {429}
