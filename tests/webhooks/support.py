"""A real receiving HTTP server on a loopback socket, in a thread: records what it is sent, answers as told."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from webhooks import services
from webhooks.models import Endpoint

SECRET = "s3cret-for-the-receiver-0123456789"


class Server(ThreadingHTTPServer):
    request_queue_size = 128  # a batch opens up to WEBHOOK_BATCH_THREADS connections at once (the default 5 refuses)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """``mode``: ok (204), fail (500), slow (sleeps ``delay`` then 200), redirect (302 to /elsewhere)."""

    mode: str = "ok"
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    elsewhere: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self, port: int = 0) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                got = Received({k.lower(): v for k, v in self.headers.items()}, body)
                if self.path == "/elsewhere":
                    receiver.elsewhere.append(got)
                    return self._answer(200)
                if receiver.mode == "slow":
                    time.sleep(receiver.delay)
                with receiver.lock:
                    receiver.received.append(got)
                if receiver.mode == "fail":
                    return self._answer(500)
                if receiver.mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                return self._answer(204 if receiver.mode == "ok" else 200)

            def _answer(self, code: int) -> None:
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = Server(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def event_ids(self) -> list[str]:
        with self.lock:
            return [r.event["id"] for r in self.received]


def endpoint(url: str, *types: str) -> Endpoint:
    return services.endpoint_save(
        name=f"crm-{url}", url=url, event_types=list(types or ["device.reenabled", "device.disabled"]), secret=SECRET
    )
