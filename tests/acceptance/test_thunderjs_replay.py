"""ThunderJS (rdkcentral/ThunderJS, the JS client of Thunder boxes) replayed byte for byte against a real simulator.

What ThunderJS puts on the wire, from its source (``src/api/*.js``, ``src/listener.js``) and the ``ws`` 7 library
it depends on (``"ws": "^7.2.3"``):

- Method designator ``[plugin, version, method].join('.')``: ThunderJS *always* sends a version, ``1`` unless the
  ``versions`` option names one for the plugin (or ``default``), or the call's params carry ``version`` (removed
  from the params before sending). ``getVersion.js``, ``makeBody.js``.
- Body ``JSON.stringify({jsonrpc: '2.0', id, method[, params]})``: compact, keys in that order, ``params`` left out
  when absent or an empty object. Ids come from one counter starting at 1 (``makeId.js``).
- Transport: one WebSocket per address ``ws://host:port/jsonrpc``, subprotocol ``notification`` (``connect.js``);
  the ``ws`` handshake sends ``Sec-WebSocket-Version``, ``-Key``, ``Connection``, ``Upgrade``,
  ``Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits``, ``Sec-WebSocket-Protocol``, then Node
  adds ``Host``. Each request is one masked text frame (``ws`` compresses only messages of 1 024 bytes or more).
- Answers (``requestQueueResolver.js``): a message whose ``id`` is truthy resolves its request with ``result`` when
  the key is there (even null), else rejects it with ``error``. Notifications (``notificationListener.js``): no id
  and a ``method``, dispatched to the listeners of exactly that method.
- Events (``listener.js``): ``on(plugin, event)`` calls ``<plugin>.<version>.register`` with
  ``{"event": event, "id": "client.<plugin>.events"}``; notifications then arrive as
  ``client.<plugin>.events.<event>``; ``dispose()`` calls ``unregister`` with the same params.

ThunderJS itself never uses HTTP; the HTTP replay posts the same message bytes to ``POST /jsonrpc`` (Thunder's
HTTP interface), with and without a version, and reads the answer with the same rules.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import unicodedata
import zlib
from dataclasses import dataclass, field

import pytest

from tests.conftest import REPO, clean_env

pytestmark = pytest.mark.slow
DP = "com.comcast.DeviceProvisioning"
TIMEOUT = 10.0
RUN_SECONDS = 0.2
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
UNSUPPORTED = {"code": -32602, "message": "Requested version is not supported."}
UNKNOWN = {"code": -32601, "message": "Unknown method."}


# --- the simulator, a real process -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def boxes():
    """Three boxes of API versions 1, 2 and 3 (box i: 1 + i % 3) in a simulator process; yields their ports."""
    command = [
        sys.executable,
        "manage.py",
        "simulate_devices",
        "--count",
        "3",
        "--port",
        "0",
        "--provision-seconds",
        str(RUN_SECONDS),
    ]
    proc = subprocess.Popen(
        command, cwd=REPO, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        lines = [proc.stdout.readline() for _ in range(4)]
        ports = [int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1)) for line in lines[1:]]
        yield {1: ports[0], 2: ports[1], 3: ports[2]}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()


# --- ThunderJS, message for message -----------------------------------------------------------------------------

_ids = itertools.count(1)  # makeId.js: one counter for the whole client


def get_version(versions: dict | None, plugin: str, params: dict | None) -> int:
    """getVersion.js."""
    if params and params.get("version"):
        return params["version"]
    return (versions.get(plugin) or versions.get("default") or 1) if versions else 1


def make_body(request_id: int, plugin: str, method: str, params: dict | None, version: int) -> dict:
    """makeBody.js (params are copied here; ThunderJS mutates the caller's object)."""
    if params:
        params = dict(params)
        params.pop("version", None)
        if params.get("versionAsParameter"):
            params["version"] = params.pop("versionAsParameter")
    body = {"jsonrpc": "2.0", "id": request_id, "method": f"{plugin}.{version}.{method}"}
    if params or params is False:
        body["params"] = params
    return body


def stringify(body: dict) -> bytes:
    """JSON.stringify: no spaces, non-ASCII left as is."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def parse_like_thunderjs(data: str):
    """requestQueueResolver.js / notificationListener.js: normalize, drop \\x.. escapes, JSON.parse."""
    data = unicodedata.normalize("NFC", data)
    data = re.sub(r"\\\\x([0-9A-Fa-f]{2})", "", data)  # /\\\\x([0-9A-Fa-f]{2})/g
    data = re.sub(r"\\x([0-9A-Fa-f]{2})", "", data)  # /\\x([0-9A-Fa-f]{2})/g
    return json.loads(data)


@dataclass
class Outcome:
    resolved: bool
    value: object


@dataclass
class ThunderJS:
    """One ThunderJS instance on one box: the socket, the request queue and the listeners of the library."""

    port: int
    versions: dict | None = None
    sock: socket.socket | None = None
    handshake: dict[str, str] = field(default_factory=dict)
    pending: dict[int, dict] = field(default_factory=dict)
    listeners: dict[str, list] = field(default_factory=dict)
    _inflate: object = None
    _buffer: bytes = b""

    # the wire

    def connect(self) -> None:
        key = base64.b64encode(os.urandom(16))
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        self.sock.sendall(
            b"GET /jsonrpc HTTP/1.1\r\n"
            b"Sec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: " + key + b"\r\n"
            b"Connection: Upgrade\r\n"
            b"Upgrade: websocket\r\n"
            b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
            b"Sec-WebSocket-Protocol: notification\r\n"
            b"Host: 127.0.0.1:%d\r\n"
            b"\r\n" % self.port
        )
        while b"\r\n\r\n" not in self._buffer:
            self._buffer += self._recv()
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        status, *lines = head.decode("latin-1").split("\r\n")
        self.handshake = {"status": status} | {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines)}
        expected = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()  # noqa: S324 - the RFC's
        # ws 7 refuses the connection unless all of these hold (websocket.js, 'upgrade' handler).
        assert status.startswith("HTTP/1.1 101 ")
        assert self.handshake["upgrade"].lower() == "websocket"
        assert self.handshake["sec-websocket-accept"] == expected
        assert self.handshake.get("sec-websocket-protocol") == "notification"
        extensions = self.handshake.get("sec-websocket-extensions", "")
        if extensions:
            assert extensions.split(";")[0].strip() == "permessage-deflate"
            self._inflate = zlib.decompressobj(-15)

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        assert chunk, "the box closed the connection"
        return chunk

    def _read(self, count: int) -> bytes:
        while len(self._buffer) < count:
            self._buffer += self._recv()
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def send_frame(self, payload: bytes) -> None:
        """A masked text frame, FIN set, uncompressed (ws: below its 1 024-byte threshold)."""
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            header = bytes([0x81, 0x80 | length])
        elif length < 65536:
            header = bytes([0x81, 0x80 | 126]) + length.to_bytes(2, "big")
        else:
            header = bytes([0x81, 0x80 | 127]) + length.to_bytes(8, "big")
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def read_message(self) -> str:
        first, second = self._read(2)
        assert first & 0x0F == 0x1 and first & 0x80, "a whole text frame"
        assert not second & 0x80, "a server never masks"
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(self._read(2), "big")
        elif length == 127:
            length = int.from_bytes(self._read(8), "big")
        payload = self._read(length)
        if first & 0x40:  # RSV1: permessage-deflate
            payload = self._inflate.decompress(payload + b"\x00\x00\xff\xff")
        return payload.decode("utf-8")

    # the library

    def request(self, plugin: str, method: str, params: dict | None = None) -> int:
        request_id = next(_ids)
        body = make_body(request_id, plugin, method, params, get_version(self.versions, plugin, params))
        self.pending[request_id] = body
        self.send_frame(stringify(body))
        return request_id

    def call(self, plugin: str, method: str, params: dict | None = None) -> Outcome:
        request_id = self.request(plugin, method, params)
        return self.until_settled(request_id)

    def until_settled(self, request_id: int) -> Outcome:
        self.sock.settimeout(TIMEOUT)
        while True:
            outcome = self.dispatch(self.read_message())
            if outcome is not None and outcome[0] == request_id:
                return outcome[1]

    def dispatch(self, text: str):
        data = parse_like_thunderjs(text)
        if data.get("id"):
            request = self.pending.pop(data["id"], None)
            assert request is not None, f"no pending request found with id {data['id']}"
            return data["id"], Outcome(True, data["result"]) if "result" in data else Outcome(False, data["error"])
        if data.get("method"):
            for callback in self.listeners.get(data["method"], []):
                callback(data.get("params"))
        return None

    def on(self, plugin: str, event: str, callback) -> Outcome:
        """listener.js ``register``: the request goes out, the callback is kept under the listener id."""
        listener_id = f"client.{plugin}.events.{event}"
        self.listeners.setdefault(listener_id, []).append(callback)
        return self.call(plugin, "register", {"event": event, "id": f"client.{plugin}.events"})

    def dispose(self, plugin: str, event: str) -> Outcome:
        del self.listeners[f"client.{plugin}.events.{event}"]
        return self.call(plugin, "unregister", {"event": event, "id": f"client.{plugin}.events"})

    def wait_for_notification(self, got: queue.Queue):
        self.sock.settimeout(TIMEOUT)
        while got.empty():
            self.dispatch(self.read_message())
        return got.get_nowait()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def thunderjs(boxes):
    opened: list[ThunderJS] = []

    def open_on(version: int, versions: dict | None = None) -> ThunderJS:
        client = ThunderJS(boxes[version], versions)
        client.connect()
        opened.append(client)
        return client

    yield open_on
    for client in opened:
        client.close()


# --- WebSocket --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("api_version", [1, 2, 3])
def test_without_a_version_thunderjs_sends_version_1_and_reaches_every_method_of_the_box(thunderjs, api_version):
    js = thunderjs(api_version)

    answers = {name: js.call(DP, name) for name in ("getApiVersionNumber", "getNetflixESN", "getSOCId")}

    assert js.handshake["status"] == "HTTP/1.1 101 Switching Protocols"
    assert answers["getApiVersionNumber"] == Outcome(True, {"version": str(api_version), "success": True})
    assert answers["getNetflixESN"].resolved is (api_version >= 2)
    assert answers["getSOCId"].resolved is (api_version >= 3)
    for name, needed in (("getNetflixESN", 2), ("getSOCId", 3)):
        if api_version < needed:
            assert answers[name] == Outcome(False, UNKNOWN)


def test_the_frames_carry_thunderjs_bodies():
    assert stringify(make_body(7, DP, "getSOCId", None, 1)) == (
        b'{"jsonrpc":"2.0","id":7,"method":"com.comcast.DeviceProvisioning.1.getSOCId"}'
    )
    assert stringify(make_body(8, DP, "reprovision", {"version": 3, "provisionType": "HARDWARE"}, 3)) == (
        b'{"jsonrpc":"2.0","id":8,"method":"com.comcast.DeviceProvisioning.3.reprovision",'
        b'"params":{"provisionType":"HARDWARE"}}'
    )
    assert stringify(make_body(9, "Provisioning", "state", {}, 1)) == (
        b'{"jsonrpc":"2.0","id":9,"method":"Provisioning.1.state"}'
    )


@pytest.mark.parametrize(
    ("api_version", "configured", "expected"),
    [
        pytest.param(3, 3, Outcome(True, {"socid": "001b08011000082c", "success": True}), id="v3-box-version-3"),
        pytest.param(3, 2, Outcome(True, {"socid": "001b08011000082c", "success": True}), id="v3-box-version-2"),
        pytest.param(2, 3, Outcome(False, UNSUPPORTED), id="v2-box-version-3"),
        pytest.param(1, 2, Outcome(False, UNSUPPORTED), id="v1-box-version-2"),
    ],
)
def test_a_configured_version_is_served_up_to_the_box_api_version(thunderjs, api_version, configured, expected):
    js = thunderjs(api_version, versions={DP: configured})

    assert js.call(DP, "getSOCId") == expected


def test_default_version_option_and_version_in_params(thunderjs):
    js = thunderjs(2, versions={"default": 2})

    by_default = js.call(DP, "getApiVersionNumber")
    per_call = js.call(DP, "provisionCheck", {"version": 1})
    too_high = js.call(DP, "provisionCheck", {"version": 3})

    assert by_default == Outcome(True, {"version": "2", "success": True})
    assert per_call.resolved and per_call.value["success"] is True
    assert too_high == Outcome(False, UNSUPPORTED)


@pytest.mark.parametrize(
    ("plugin", "versions", "start"),
    [
        pytest.param(DP, None, ("reprovision", {"provisionType": "HARDWARE"}), id="device-provisioning-v1"),
        pytest.param(DP, {DP: 3}, ("reprovision", {"provisionType": "HARDWARE"}), id="device-provisioning-v3"),
        pytest.param("Provisioning", None, ("provision", None), id="provisioning-v1"),
    ],
)
def test_events_through_thunderjs_listeners(thunderjs, plugin, versions, start):
    js, witness = thunderjs(3, versions=versions), thunderjs(3, versions=versions)
    got: queue.Queue = queue.Queue()
    witnessed: queue.Queue = queue.Queue()

    registered = js.on(plugin, "provisioningchange", got.put)
    started = js.call(plugin, *start)
    notification = js.wait_for_notification(got)
    unregistered = js.dispose(plugin, "provisioningchange")
    witness.on(plugin, "provisioningchange", witnessed.put)  # a second client, still listening
    again = js.call(plugin, *start)  # a second run: nobody listens on the first client any more
    witness.wait_for_notification(witnessed)  # the run ended and notified its listeners...
    after = js.call(DP, "getApiVersionNumber")  # ...and all the box sent before this answer has been dispatched

    assert registered == Outcome(True, 0)
    assert started.resolved
    assert notification == {"status": 200}
    assert unregistered == Outcome(True, 0)
    assert again.resolved and after.resolved and got.empty()


def test_registering_on_a_version_the_box_lacks_rejects_the_listener(thunderjs):
    js = thunderjs(1, versions={DP: 2})

    assert js.on(DP, "provisioningchange", lambda params: None) == Outcome(False, UNSUPPORTED)


# --- HTTP: the same message bytes, POST /jsonrpc -----------------------------------------------------------------


def http_post(port: int, body: bytes) -> tuple[str, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(
            b"POST /jsonrpc HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (port, len(body), body)
        )
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, payload = reply.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    return status, {k: v.strip() for k, v in (line.split(":", 1) for line in lines)}, payload


@pytest.mark.parametrize(
    ("api_version", "version", "method", "status", "expected"),
    [
        pytest.param(
            3,
            None,
            "getSOCId",
            "200 OK",
            Outcome(True, {"socid": "001b08011000082c", "success": True}),
            id="default-version-1",
        ),
        pytest.param(
            3, 3, "getSOCId", "200 OK", Outcome(True, {"socid": "001b08011000082c", "success": True}), id="version-3"
        ),
        pytest.param(2, 3, "getSOCId", "202 Accepted", Outcome(False, UNSUPPORTED), id="version-above-the-box"),
        pytest.param(2, None, "getSOCId", "202 Accepted", Outcome(False, UNKNOWN), id="method-above-the-box"),
    ],
)
def test_http_carries_the_same_messages(boxes, api_version, version, method, status, expected):
    request_id = next(_ids)
    versions = {DP: version} if version else None
    body = stringify(make_body(request_id, DP, method, None, get_version(versions, DP, None)))

    status_line, headers, payload = http_post(boxes[api_version], body)
    answer = parse_like_thunderjs(payload.decode("utf-8"))

    assert status_line == f"HTTP/1.1 {status}"
    assert headers["Content-Type"] == "application/json"
    assert int(headers["Content-Length"]) == len(payload)
    assert answer["id"] == request_id
    assert (Outcome(True, answer["result"]) if "result" in answer else Outcome(False, answer["error"])) == expected


def test_the_simulator_process_serves_several_thunderjs_clients_at_once(boxes):
    errors: list[BaseException] = []

    def one_client():
        try:
            js = ThunderJS(boxes[3], {DP: 3})
            js.connect()
            for _ in range(20):
                assert js.call(DP, "getApiVersionNumber") == Outcome(True, {"version": "3", "success": True})
            js.close()
        except BaseException as exc:  # collected for the main thread's assertion
            errors.append(exc)

    threads = [threading.Thread(target=one_client) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
