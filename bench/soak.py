"""Soak test of the embedded default: `make run`'s stack for a given time under a steady trickle of work.

Runs ``.venv/bin/python manage.py serve`` (what ``make run`` runs: web, Celery worker with beat, CAS simulator,
simulated set-top boxes, event listener) with ``PORT`` on a free port and ``PORTAL_VAR_DIR`` in a fresh temporary
folder, and drives it for ``--minutes`` with:

- activations: a fresh serial created and enabled through the staff REST API, activated once (200, 40 lowercase
  hex, ``text/plain``), then once more (409);
- set-top-box commands: ``refresh`` and ``reprovision`` on the demo boxes that serve simulates, followed on
  ``GET /api/v1/commands/`` until SUCCEEDED or FAILED;
- Conax requests over the CRM.COM API (``process_immediately``) on the demo smartcards, followed with ``list``
  and ``show`` until COMPLETED or REJECTED.

At the end the trickle stops, the outstanding work gets ``--drain`` seconds to finish, serve is stopped like Ctrl-C
(SIGINT) and a summary is printed: crashes (serve's "stopped" lines, serve exiting by itself), restarts per child,
lost work, memory (RSS of serve and every descendant, from /proc), 5xx answers, latency and rates. Exit status 1
when anything failed (crashes, lost work, an unclean stop, processes left behind, beat silent), 2 when the stack did
not start.

    .venv/bin/python bench/soak.py --minutes 30
    .venv/bin/python bench/soak.py --minutes 2 --kill worker@30   # must FAIL: shows that a crash is caught

The activation trickle makes two attempts per serial from one address: above ~2.4 activations/s the default
per-address limit (``ACTIVATION_RATE_LIMIT_IP`` 300/60) answers 429, which counts as lost work.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, free_port, percentile

STAFF = ("support", "support-demo-2026")  # portal/demo.py
ORGANISATION = "portal"  # CRM_ORGANISATION's default
SMARTCARDS = [f"SC-{n:06d}" for n in range(12)]  # the demo customers' cards (portal/demo.py)
CRM = "/crmapi/rest/v2/"
CRM_REQUESTS = CRM + "conax_web_services/provisioning_requests/"
CIK = re.compile(r"[0-9a-f]{40}")
STOPPED = re.compile(r"serve: (?P<name>\S+) \(pid (?P<pid>\d+)\) stopped: (?P<reason>.*?); restart (?P<k>\d+) in")
BEAT_SENT = re.compile(r"Sending due task (?P<name>\S+)")
LOG_PROBLEM = re.compile(r"level=(ERROR|CRITICAL)|^Traceback|\bCRITICAL\b")
CHILD_NAMES = {
    "simulate_cas": "cas-simulator",
    "celery": "worker",
    "uvicorn": "web",
    "simulate_devices": "box-simulator",
    "listen_devices": "listener",
}
STOP_GRACE = 15.0  # portal.lib.supervise.STOP_GRACE_SECONDS
TRICKLE_KINDS = ("activation", "staff-api", "crm")  # the work's own requests: not logins, setup or polls
COMMAND_DONE = ("SUCCEEDED", "FAILED")
CONAX_DONE = ("COMPLETED", "REJECTED")
SCRUB_ENV = ("DJANGO", "DATABASE", "REDIS", "CELERY", "PORTAL", "CAS_", "SIMULATOR", "CHANNELS", "HOST", "PORT")


# --- what was seen ---------------------------------------------------------------------------------------------------


@dataclass
class Stats:
    """Every answer and every piece of work, shared by the trickle threads (one lock: a few operations a second)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter = field(default_factory=Counter)
    errors_5xx: Counter = field(default_factory=Counter)
    transport: Counter = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    outcomes: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    lost: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    done_seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def answer(self, kind: str, status: int, seconds: float) -> None:
        with self.lock:
            self.latency[kind].append(seconds)
            self.statuses[status] += 1
            if status >= 500:
                self.errors_5xx[kind] += 1

    def failed_transport(self, kind: str, exc: Exception) -> None:
        with self.lock:
            self.transport[f"{kind}: {type(exc).__name__}"] += 1

    def note(self, what: str) -> None:
        with self.lock:
            if len(self.unexpected) < 1000:
                self.unexpected.append(what)

    def outcome(self, work: str, result: str, seconds: float | None = None) -> None:
        with self.lock:
            self.outcomes[work][result] += 1
            if seconds is not None:
                self.done_seconds[work].append(seconds)

    def lose(self, work: str, why: str) -> None:
        with self.lock:
            self.lost[work].append(why)
            self.outcomes[work]["lost"] += 1

    def refuse(self, work: str, why: str) -> None:
        """Work the portal did not take (an error answer, or none): it cannot reach a terminal state, so it is lost."""
        with self.lock:
            self.outcomes[work]["refused"] += 1
        self.lose(work, f"refused: {why}")


class Api:
    """One HTTP client per thread; a connection refused (web restarting: nothing reached the server) is retried."""

    CONNECT_RETRY_SECONDS = 60.0

    def __init__(self, base: str, stats: Stats) -> None:
        self.http = httpx.Client(base_url=base, timeout=30.0)
        self.stats = stats
        self.staff_token = ""
        self.crm_token = ""

    def call(self, kind: str, method: str, url: str, **kwargs) -> httpx.Response | None:
        deadline = time.monotonic() + self.CONNECT_RETRY_SECONDS
        while True:
            started = time.monotonic()
            try:
                response = self.http.request(method, url, **kwargs)
            except httpx.ConnectError as exc:
                self.stats.failed_transport(kind, exc)
                if time.monotonic() > deadline:
                    return None
                time.sleep(1.0)
                continue
            except httpx.TransportError as exc:  # sent, answer unknown: not retried (it may have been done)
                self.stats.failed_transport(kind, exc)
                return None
            self.stats.answer(kind, response.status_code, time.monotonic() - started)
            return response

    # staff REST API
    def staff(self, kind: str, method: str, url: str, **kwargs) -> httpx.Response | None:
        for _ in range(2):
            if not self.staff_token:
                self.staff_login()
            response = self.call(kind, method, url, headers={"Authorization": f"Token {self.staff_token}"}, **kwargs)
            if response is None or response.status_code != 401:
                return response
            self.staff_token = ""  # expired (idle or absolute TTL): log in again once
        return response

    def staff_login(self) -> None:
        response = self.call(
            "staff-login", "POST", "/api/v1/auth/token/", json={"username": STAFF[0], "password": STAFF[1]}
        )
        if response is None or response.status_code != 201:
            raise RuntimeError(f"staff login failed: {response and response.status_code}")
        self.staff_token = response.json()["token"]

    # CRM.COM dialect
    def crm(self, kind: str, method: str, name: str, params: dict) -> dict | None:
        for _ in range(2):
            if not self.crm_token:
                self.crm_login()
            args = {**params, "token": self.crm_token}
            url = CRM_REQUESTS + name
            sent = {"params": args} if method == "GET" else {"json": args}
            response = self.call(kind, method, url, **sent)
            if response is None:
                return None
            body = response.json()
            if body["status"]["code"] != "INVALID_TOKEN":
                return body
            self.crm_token = ""  # CRM tokens live 2 h
        return body

    def crm_login(self) -> None:
        credentials = {"username": STAFF[0], "password": STAFF[1], "organisation": ORGANISATION}
        response = self.call("crm-login", "POST", CRM + "authentication/token", json=credentials)
        if response is None or response.json()["status"]["code"] != "OK":
            raise RuntimeError(f"CRM login failed: {response and response.text[:200]}")
        self.crm_token = response.json()["data"]["token"]


# --- the stack -------------------------------------------------------------------------------------------------------


def serve_env(port: int, var_dir: Path) -> dict[str, str]:
    """The embedded default as ``make run`` sees it: no database, broker or Redis settings from this shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUB_ENV)}
    env.update(PORT=str(port), PORTAL_VAR_DIR=str(var_dir), PYTHONUNBUFFERED="1")
    return env


class Stack:
    """``manage.py serve`` in its own session (SIGINT to its group is Ctrl-C), its output read line by line."""

    def __init__(self, port: int, var_dir: Path) -> None:
        python = REPO / ".venv" / "bin" / "python"
        self.command = [str(python if python.exists() else sys.executable), "manage.py", "serve"]
        self.port, self.var_dir = port, var_dir
        self.log_path = var_dir / "serve.log"
        self.stopped: list[dict] = []
        self.beat = Counter()
        self.problems: list[str] = []
        self.stopping = False
        self.injected: list[str] = []  # children killed on purpose (--kill)
        self.seen: dict[int, str] = {}  # every descendant seen: pid → start time
        self.lock = threading.Lock()
        self.started = threading.Event()  # the worker said "ready"
        self.proc = subprocess.Popen(
            self.command,
            cwd=REPO,
            env=serve_env(port, var_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            text=True,
            errors="replace",
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        with self.log_path.open("w") as log:
            for line in self.proc.stdout:
                log.write(line)
                log.flush()
                self._parse(line.rstrip("\n"))

    def _parse(self, line: str) -> None:
        if self.stopping:
            return
        if match := STOPPED.search(line):
            self.stopped.append({**match.groupdict(), "at": time.monotonic()})
            print(f"  !! {line}", flush=True)
        elif match := BEAT_SENT.search(line):
            self.beat[match["name"]] += 1
        elif LOG_PROBLEM.search(line):
            self.problems.append(line[:300])
        if "ready." in line and "celery@" in line:
            self.started.set()

    def wait_ready(self, base: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StartFailed(f"serve exited with {self.proc.returncode} while starting")
            try:
                ready = httpx.get(base + "/readyz", timeout=2)
                if (
                    ready.status_code == 200
                    and ready.json().get("workers", {}).get("workers_seen")
                    and self.started.is_set()
                ):
                    return
            except (httpx.TransportError, ValueError):
                pass
            time.sleep(0.5)
        raise StartFailed(f"not ready after {timeout:.0f} s")

    def remember(self) -> None:
        """Note serve's descendants as they are now: after serve dies, its children can no longer be found by
        walking down from it, and the stop must still see whether any outlived it."""
        with self.lock:
            self.seen.update({pid: started_at(pid) for pid in descendants(self.proc.pid)})

    def inject_kill(self, name: str) -> None:
        """SIGKILL to serve (``serve``) or one of its children (``--kill``): a fault the summary must then show."""
        if name == "serve":
            self.remember()
            os.kill(self.proc.pid, signal.SIGKILL)
            self.injected.append(name)
            print(f"soak: killed serve (pid {self.proc.pid}) with SIGKILL (--kill)", flush=True)
            return
        for pid in children(self.proc.pid):
            if child_name(pid) == name:
                os.kill(pid, signal.SIGKILL)
                self.injected.append(name)
                print(f"soak: killed {name} (pid {pid}) with SIGKILL (--kill)", flush=True)
                return
        print(f"soak: --kill {name}: serve has no such child now", flush=True)

    def stop(self, timeout: float = 60) -> tuple[int | None, float, list[int]]:
        """SIGINT to serve's process group, as Ctrl-C; its exit code, how long it took, and pids left behind."""
        self.remember()
        with self.lock:
            tree = dict(self.seen)
        self.stopping = True
        started = time.monotonic()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        took = time.monotonic() - started
        # Still the same process (its start time unchanged, not a reused pid): one this script started. Children
        # that serve's end asked to stop (SIGTERM from PR_SET_PDEATHSIG) get the supervisor's own grace to do so.
        deadline = time.monotonic() + STOP_GRACE
        while (left := [pid for pid, since in tree.items() if alive(pid) and started_at(pid) == since]) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.5)
        for pid in left + ([self.proc.pid] if code is None else []):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.reader.join(timeout=5)
        return code, took, left


class StartFailed(Exception):
    pass


# --- processes and memory ----------------------------------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat from the field after the command name on (which may hold spaces and parentheses)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def alive(pid: int) -> bool:
    fields = _stat(pid)
    return bool(fields) and fields[0] != "Z"


def started_at(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22): with the pid, it names one process."""
    fields = _stat(pid)
    return fields[19] if len(fields) > 19 else ""


def children(pid: int) -> list[int]:
    """Children of every thread of ``pid`` (a child started from another thread is listed under that thread)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    out, todo = [], children(pid)
    while todo:
        child = todo.pop()
        out.append(child)
        todo += children(child)
    return out


def rss_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else 0


def child_name(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return f"pid {pid}"
    words = [a.decode(errors="replace") for a in argv]
    for word in words:
        for needle, name in CHILD_NAMES.items():
            if word.endswith(needle):
                return name
    return Path(words[0]).name if words and words[0] else f"pid {pid}"


def memory(serve_pid: int) -> dict[str, int]:
    """RSS in KiB of serve itself and of each direct child's whole tree (a worker and its pool processes)."""
    out = {"serve": rss_kib(serve_pid)}
    for child in children(serve_pid):
        name = child_name(child)
        out[name] = out.get(name, 0) + rss_kib(child) + sum(rss_kib(p) for p in descendants(child))
    return out


def disk(var_dir: Path) -> dict[str, int]:
    """Bytes of the SQLite database (with its WAL) and of the broker folder, and the broker's file count: what a
    run of days could pile up on disk."""
    database = sum(p.stat().st_size for p in var_dir.glob("portal.sqlite3*") if p.is_file())
    broker = [p for p in (var_dir / "broker").rglob("*") if p.is_file()] if (var_dir / "broker").exists() else []
    sizes = []
    for path in broker:
        with contextlib.suppress(OSError):  # consumed while we look
            sizes.append(path.stat().st_size)
    return {"database": database, "broker": sum(sizes), "broker_files": len(sizes)}


class MemoryWatch(threading.Thread):
    """A sample of the tree's RSS every ``every`` seconds: (seconds since start, per-child KiB)."""

    def __init__(self, stack: Stack, every: float = 10.0) -> None:
        super().__init__(daemon=True)
        self.stack, self.pid, self.every = stack, stack.proc.pid, every
        self.samples: list[tuple[float, dict[str, int]]] = []
        self.halt = threading.Event()
        self.t0 = time.monotonic()
        self.start_sample: dict[str, int] = {}  # taken once the warm-up is over
        self.start_disk: dict[str, int] = {}

    def run(self) -> None:
        while not self.halt.is_set():
            self.sample()
            self.halt.wait(self.every)

    def sample(self) -> dict[str, int]:
        now = memory(self.pid)
        self.stack.remember()
        self.samples.append((time.monotonic() - self.t0, now))
        return now


# --- the trickle -------------------------------------------------------------------------------------------------


def paced(stop: threading.Event, interval: float):
    """Yields every ``interval`` seconds until ``stop``; a late tick is not made up for (no bursts after a stall)."""
    due = time.monotonic()
    for n in itertools.count():
        if stop.wait(max(0.0, due - time.monotonic())):
            return
        yield n
        due = max(due + interval, time.monotonic())


@dataclass
class Context:
    base: str
    stats: Stats
    stop: threading.Event
    model_id: int = 0
    vendor: str = ""
    model: str = ""
    boxes: list[int] = field(default_factory=list)
    commands: dict[int, float] = field(default_factory=dict)  # id → when submitted (monotonic)
    conax: dict[str, float] = field(default_factory=dict)
    pending_lock: threading.Lock = field(default_factory=threading.Lock)


def activations(ctx: Context, interval: float, run_id: str) -> None:
    api = Api(ctx.base, ctx.stats)
    for n in paced(ctx.stop, interval):
        serial = f"SOAK-{run_id}-{n:07d}"
        try:
            _activate_one(ctx, api, serial)
        except (RuntimeError, ValueError, KeyError) as exc:
            ctx.stats.refuse("activation", f"{serial}: {exc}")


def _activate_one(ctx: Context, api: Api, serial: str) -> None:
    created = api.staff(
        "staff-api", "POST", "/api/v1/devices/", json={"model_id": ctx.model_id, "serial_number": serial}
    )
    if created is None or created.status_code != 201:
        ctx.stats.refuse("activation", f"create {serial}: {created and created.status_code}")
        return
    device_id = created.json()["id"]
    enabled = api.staff("staff-api", "POST", f"/api/v1/devices/{device_id}/enable/", json={})
    if enabled is None or enabled.status_code != 200 or enabled.json().get("state") != "notactivated":
        ctx.stats.refuse(
            "activation", f"enable {serial}: {enabled and enabled.status_code} {enabled and enabled.text[:200]}"
        )
        return
    form = {"vendor": ctx.vendor, "model": ctx.model, "sn": serial}
    started = time.monotonic()
    first = api.call("activation", "POST", "/provision/activate", data=form)
    if problem := _first_activation_problem(first):
        ctx.stats.lose("activation", f"{serial}: {problem}")
        return
    second = api.call("activation", "POST", "/provision/activate", data=form)
    if second is None or second.status_code != 409:
        ctx.stats.lose("activation", f"{serial}: second attempt answered {second and second.status_code}, not 409")
        return
    ctx.stats.outcome("activation", "ok", time.monotonic() - started)


def _first_activation_problem(response: httpx.Response | None) -> str | None:
    if response is None:
        return "no answer"
    if response.status_code != 200:
        return f"answered {response.status_code}: {response.text[:100]!r}"
    if not response.headers.get("content-type", "").startswith("text/plain"):
        return f"content type {response.headers.get('content-type')!r}"
    if not CIK.fullmatch(response.text):
        return f"body is not 40 lowercase hex ({len(response.text)} characters)"
    return None


def commands(ctx: Context, interval: float) -> None:
    api = Api(ctx.base, ctx.stats)
    for n in paced(ctx.stop, interval):
        device_id = ctx.boxes[n % len(ctx.boxes)]
        kind, body = ("refresh", None) if n % 2 == 0 else ("reprovision", {"provision_type": "HARDWARE"})
        response = api.staff("staff-api", "POST", f"/api/v1/devices/{device_id}/{kind}/", json=body or {})
        if response is None or response.status_code != 202:
            ctx.stats.refuse("command", f"{kind} on device {device_id}: {response and response.status_code}")
            continue
        with ctx.pending_lock:
            ctx.commands[response.json()["id"]] = time.monotonic()
        ctx.stats.outcome("command", f"submitted {kind}")


CONAX_METHODS = (
    ("send_mail_message_to_client", lambda n: {"message": f"soak mail {n}"}),
    ("send_bark_message_to_client", lambda n: {"message": f"soak bark {n}", "duration": 5}),
    ("get_active_subscriptions", lambda n: {}),
    ("get_pairing_status_for_card", lambda n: {}),
)


def conax(ctx: Context, interval: float) -> None:
    api = Api(ctx.base, ctx.stats)
    for n in paced(ctx.stop, interval):
        method, extra = CONAX_METHODS[n % len(CONAX_METHODS)]
        card = SMARTCARDS[n % len(SMARTCARDS)]
        params = {"smartcard_identifier": {"serial_number": card}, "process_immediately": 1, **extra(n)}
        try:
            body = api.crm("crm", "POST", method, params)
        except (RuntimeError, ValueError) as exc:
            body = None
            ctx.stats.note(f"conax {method}: {exc}")
        if (
            body is None
            or body["status"]["code"] != "OK"
            or body["data"]["life_cycle_state"] not in ("PENDING", *CONAX_DONE)
        ):
            ctx.stats.refuse("conax", f"{method} on {card}: {body and body['status']}")
            continue
        with ctx.pending_lock:
            ctx.conax[body["data"]["id"]] = time.monotonic()
        ctx.stats.outcome("conax", f"submitted {method}")


# --- following the work to its end -------------------------------------------------------------------------------


def follow(ctx: Context, done: threading.Event, every: float) -> None:
    """Until ``done``: resolve the submitted commands and Conax requests that reached a terminal state."""
    api = Api(ctx.base, ctx.stats)
    while not done.wait(every):
        try:
            follow_commands(ctx, api)
            follow_conax(ctx, api)
        except (RuntimeError, ValueError, KeyError) as exc:
            ctx.stats.note(f"follow: {exc}")


def follow_commands(ctx: Context, api: Api) -> None:
    """Page ``GET /api/v1/commands/`` (newest first) down to the oldest outstanding command."""
    with ctx.pending_lock:
        outstanding = dict(ctx.commands)
    if not outstanding:
        return
    oldest, url = min(outstanding), "/api/v1/commands/?limit=1000"
    while url:
        response = api.staff("poll", "GET", url)
        if response is None or response.status_code != 200:
            return
        page = response.json()
        for row in page["results"]:
            if row["id"] in outstanding and row["state"] in COMMAND_DONE:
                _command_done(ctx, row)
        if not page["results"] or min(row["id"] for row in page["results"]) <= oldest:
            return
        url = page["next"]


def _command_done(ctx: Context, row: dict) -> None:
    with ctx.pending_lock:
        if ctx.commands.pop(row["id"], None) is None:
            return
    took = datetime.fromisoformat(row["finished_at"]) - datetime.fromisoformat(row["created_at"])
    ctx.stats.outcome("command", row["state"], took.total_seconds())
    if row["state"] == "FAILED":
        ctx.stats.note(f"command {row['id']} ({row['kind']}) FAILED: {row['last_error'][:200]}")


def follow_conax(ctx: Context, api: Api) -> None:
    """The PENDING list (paged); each outstanding request not on it is confirmed with ``show``."""
    polled_at = time.monotonic()
    with ctx.pending_lock:
        outstanding = {uid: at for uid, at in ctx.conax.items() if at < polled_at}
    if not outstanding:
        return
    pending, offset = set(), 0
    while True:
        body = api.crm(
            "poll",
            "GET",
            "list",
            {"life_cycle_state": "PENDING", "fields_set": "id", "number_of_results": 1000, "offset": offset},
        )
        if body is None or body["status"]["code"] != "OK":
            return
        pending |= {row["id"] for row in body["data"]}
        if len(body["data"]) < 1000:
            break
        offset += 1000
    for uid in outstanding.keys() - pending:
        body = api.crm("poll", "GET", "show", {"id": uid, "fields_set": "id,life_cycle_state,error_code"})
        state = body and body["status"]["code"] == "OK" and body["data"]["life_cycle_state"]
        if state in CONAX_DONE:
            with ctx.pending_lock:
                submitted = ctx.conax.pop(uid)
            ctx.stats.outcome("conax", state, time.monotonic() - submitted)
            if state == "REJECTED":
                ctx.stats.note(f"conax {uid} REJECTED: {body['data']['error_code']}")


# --- setup, run, report ----------------------------------------------------------------------------------------


def setup(ctx: Context, run_id: str, boxes_wanted: int) -> None:
    """A vendor and model of the soak's own for the fresh serials; the demo boxes that serve simulates."""
    api = Api(ctx.base, ctx.stats)
    ctx.vendor, ctx.model = f"soak{run_id}".lower(), "soak-box"
    vendor = api.staff("setup", "POST", "/api/v1/vendors/", json={"name": ctx.vendor})
    model = api.staff(
        "setup", "POST", "/api/v1/device-models/", json={"vendor_id": vendor.json()["id"], "name": ctx.model}
    )
    ctx.model_id = model.json()["id"]
    listed = api.staff("setup", "GET", "/api/v1/devices/?vendor=acme&model=stb-4k&state=activated&limit=100")
    for device in listed.json()["results"]:
        if api.staff("setup", "GET", f"/api/v1/devices/{device['id']}/box/").status_code == 200:
            ctx.boxes.append(device["id"])
        if len(ctx.boxes) == boxes_wanted:
            break
    if not ctx.boxes:
        raise StartFailed("no demo set-top box is registered (did serve start its box simulator?)")
    api.crm_login()


def kill_spec(value: str) -> tuple[str, float]:
    name, _, at = value.partition("@")
    if name not in (*CHILD_NAMES.values(), "serve"):
        raise argparse.ArgumentTypeError(f"unknown child {name!r}: serve, {', '.join(CHILD_NAMES.values())}")
    try:
        return name, float(at or 30)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{at!r} is not a number of seconds") from exc


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long the trickle runs (default 30)")
    parser.add_argument(
        "--warmup",
        type=float,
        default=60.0,
        help="seconds of trickle before the starting memory is taken (default 60, at most a third of the run)",
    )
    parser.add_argument("--drain", type=float, default=180.0, help="seconds the outstanding work may take at the end")
    parser.add_argument("--activations", type=float, default=1.0, help="activations per second (default 1; 0: none)")
    parser.add_argument(
        "--command-every", type=float, default=5.0, help="seconds between box commands (default 5; 0: none)"
    )
    parser.add_argument(
        "--conax-every", type=float, default=2.0, help="seconds between Conax requests (default 2; 0: none)"
    )
    parser.add_argument("--poll", type=float, default=2.0, help="seconds between polls of the outstanding work")
    parser.add_argument("--boxes", type=int, default=5, help="demo boxes to command (serve simulates 5)")
    parser.add_argument(
        "--kill",
        action="append",
        type=kill_spec,
        default=[],
        metavar="CHILD@SECONDS",
        help="SIGKILL one of serve's children (web, worker, cas-simulator, box-simulator, listener) or serve itself "
        "that many seconds into the trickle, to check that the soak reports it (repeatable; the run then fails)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary PORTAL_VAR_DIR (serve.log in it)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    var_dir = Path(tempfile.mkdtemp(prefix="portal-soak-"))
    port = free_port()
    run_id = f"{int(time.time()) % 100000:05d}"
    print(f"soak: serve on 127.0.0.1:{port}, PORTAL_VAR_DIR={var_dir}, trickle {args.minutes:g} min", flush=True)
    stack = Stack(port, var_dir)
    try:
        return run(args, stack, var_dir, port, run_id)
    finally:
        if stack.proc.poll() is None:
            stack.stop()
        if args.keep:
            print(f"soak: kept {var_dir} (serve.log)")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)


def run(args: argparse.Namespace, stack: Stack, var_dir: Path, port: int, run_id: str) -> int:
    base = f"http://127.0.0.1:{port}"
    stats = Stats()
    ctx = Context(base=base, stats=stats, stop=threading.Event())
    t_start = time.monotonic()
    try:
        stack.wait_ready(base)
        setup(ctx, run_id, args.boxes)
    except (StartFailed, RuntimeError, ValueError, KeyError, AttributeError) as exc:
        print(f"soak: the stack did not start: {exc}", file=sys.stderr)
        tail = stack.log_path.read_text(errors="replace").splitlines()[-40:] if stack.log_path.exists() else []
        print("\n".join(f"  | {line}" for line in tail), file=sys.stderr)
        stack.stop()
        return 2
    print(f"soak: ready after {time.monotonic() - t_start:.1f} s; boxes (device ids) {ctx.boxes}", flush=True)
    result = trickle(args, stack, ctx, run_id)
    code, took, left = stack.stop()
    result.update(stop_code=code, stop_seconds=took, orphans=left)
    return report(args, stack, ctx, result)


def trickle(args: argparse.Namespace, stack: Stack, ctx: Context, run_id: str) -> dict:
    duration = args.minutes * 60
    warmup = min(args.warmup, duration / 3)
    watch = MemoryWatch(stack)
    done = threading.Event()
    streams = [
        (activations, (ctx, 1 / args.activations, run_id)) if args.activations > 0 else None,
        (commands, (ctx, args.command_every)) if args.command_every > 0 else None,
        (conax, (ctx, args.conax_every)) if args.conax_every > 0 else None,
    ]
    threads = [threading.Thread(target=target, args=a, daemon=True) for target, a in filter(None, streams)]
    follower = threading.Thread(target=follow, args=(ctx, done, args.poll), daemon=True)
    t0 = time.monotonic()
    for thread in [*threads, follower]:
        thread.start()
    watch.start()
    exited_early = _watch_run(stack, ctx, (t0, warmup, duration), watch, kills=list(args.kill))
    start_mem, start_disk = watch.start_sample, watch.start_disk
    ctx.stop.set()
    for thread in threads:
        thread.join(timeout=60)
    end_mem = watch.sample() if not exited_early else {}
    end_disk = disk(stack.var_dir)
    trickle_seconds = time.monotonic() - t0
    drained = _drain(ctx, stack, args.drain) if not exited_early else 0.0
    done.set()
    follower.join(timeout=60)
    watch.halt.set()
    with ctx.pending_lock:
        for cid in ctx.commands:
            ctx.stats.lose("command", f"command {cid} still QUEUED/SENT after the drain")
        for uid in ctx.conax:
            ctx.stats.lose("conax", f"request {uid} still PENDING after the drain")
    return {
        "start_mem": start_mem,
        "end_mem": end_mem,
        "start_disk": start_disk,
        "end_disk": end_disk,
        "trickle_seconds": trickle_seconds,
        "drain_seconds": drained,
        "exited_early": exited_early,
        "warmup": warmup,
        "samples": watch.samples,
    }


def _watch_run(
    stack: Stack, ctx: Context, times: tuple[float, float, float], watch: MemoryWatch, kills: list[tuple[str, float]]
) -> bool:
    """Until the trickle's time is up; the starting memory after the warm-up; the faults ``--kill`` asked for.
    True if serve exited by itself."""
    t0, warmup, duration = times
    next_progress = t0 + 60
    while (now := time.monotonic()) < t0 + duration:
        if stack.proc.poll() is not None:
            print(f"  !! serve exited by itself with {stack.proc.returncode}", flush=True)
            return True
        for name, at in [kill for kill in kills if now >= t0 + kill[1]]:
            kills.remove((name, at))
            stack.inject_kill(name)
        if not watch.start_sample and now >= t0 + warmup:
            watch.start_sample, watch.start_disk = watch.sample(), disk(stack.var_dir)
            print(f"soak: warm-up done, RSS {sum(watch.start_sample.values()) / 1024:.1f} MB", flush=True)
        if now >= next_progress:
            _progress(ctx, stack, now - t0, watch)
            next_progress += 60
        time.sleep(0.5)
    return False


def _progress(ctx: Context, stack: Stack, elapsed: float, watch: MemoryWatch) -> None:
    outcomes = ctx.stats.outcomes
    with ctx.pending_lock:
        waiting = (len(ctx.commands), len(ctx.conax))
    rss = sum(watch.samples[-1][1].values()) / 1024 if watch.samples else 0
    print(
        f"soak: {elapsed / 60:5.1f} min  activations ok {outcomes['activation']['ok']}  commands waiting "
        f"{waiting[0]}  conax waiting {waiting[1]}  5xx {sum(ctx.stats.errors_5xx.values())}  stopped lines "
        f"{len(stack.stopped)}  RSS {rss:.1f} MB",
        flush=True,
    )


def _drain(ctx: Context, stack: Stack, limit: float) -> float:
    started = time.monotonic()
    print("soak: trickle stopped, draining the outstanding work", flush=True)
    while time.monotonic() - started < limit and stack.proc.poll() is None:
        with ctx.pending_lock:
            if not ctx.commands and not ctx.conax:
                break
        time.sleep(0.5)
    return time.monotonic() - started


# --- the summary -------------------------------------------------------------------------------------------------


def mb(kib: float) -> str:
    return f"{kib / 1024:.1f} MB"


def _ms(values: list[float]) -> str:
    if not values:
        return "-"
    return f"p50 {percentile(values, 50) * 1000:.0f} ms, p99 {percentile(values, 99) * 1000:.0f} ms (n={len(values)})"


def _s(values: list[float]) -> str:
    if not values:
        return "-"
    return f"p50 {percentile(values, 50):.1f} s, p99 {percentile(values, 99):.1f} s"


def _slope_mb_per_hour(samples: list[tuple[float, dict[str, int]]], after: float) -> float | None:
    points = [(t, sum(m.values()) / 1024) for t, m in samples if t >= after]
    if len(points) < 3:
        return None
    n = len(points)
    mean_t, mean_m = sum(t for t, _ in points) / n, sum(m for _, m in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (m - mean_m) for t, m in points) / var * 3600 if var else None


def report(args: argparse.Namespace, stack: Stack, ctx: Context, r: dict) -> int:
    stats, out = ctx.stats, ctx.stats.outcomes
    crashes = len(stack.stopped) + (1 if r["exited_early"] else 0)
    restarts = Counter(line["name"] for line in stack.stopped)
    lost = {work: len(why) for work, why in stats.lost.items()}
    all_latency = [s for kind in TRICKLE_KINDS for s in stats.latency.get(kind, [])]
    minutes = r["trickle_seconds"] / 60
    failures = _failures(crashes, sum(lost.values()), r, stack)
    lines = [
        f"stack        : manage.py serve (embedded default), trickle {minutes:.1f} min, "
        f"drain {r['drain_seconds']:.0f} s",
        f"crashes      : {crashes}  (serve 'stopped' lines {len(stack.stopped)}; serve exited by itself: "
        f"{'yes' if r['exited_early'] else 'no'}"
        + (f"; injected by --kill: {', '.join(stack.injected)}" if stack.injected else "")
        + ")",
        "restarts     : " + ", ".join(f"{name} {restarts.get(name, 0)}" for name in CHILD_NAMES.values()),
        f"lost work    : {sum(lost.values())}  (activations {lost.get('activation', 0)}, commands "
        f"{lost.get('command', 0)}, conax {lost.get('conax', 0)})",
        *_work_lines(out, stats, r["trickle_seconds"]),
        *_memory_lines(r),
        f"errors       : 5xx {sum(stats.errors_5xx.values())}"
        + (f" ({dict(stats.errors_5xx)})" if stats.errors_5xx else "")
        + f", transport {sum(stats.transport.values())}"
        + (f" ({dict(stats.transport)})" if stats.transport else "")
        + f", status counts {dict(sorted(stats.statuses.items()))}",
        f"latency      : {_ms(all_latency)} over the trickle's requests ({', '.join(TRICKLE_KINDS)})",
        *(f"  {kind:<11}: {_ms(values)}" for kind, values in sorted(stats.latency.items())),
        f"beat         : {sum(stack.beat.values())} due tasks sent ("
        + ", ".join(f"{k} {v}" for k, v in sorted(stack.beat.items()))
        + ")",
        f"server log   : {len(stack.problems)} ERROR/CRITICAL/Traceback lines",
        f"stop         : SIGINT to serve's group -> exit {r['stop_code']} in {r['stop_seconds']:.1f} s; processes "
        f"left behind {len(r['orphans'])}",
        f"result       : {'PASS' if not failures else 'FAIL (' + '; '.join(failures) + ')'}",
    ]
    _details(stack, stats)
    print("\n==== soak summary ====")
    print("\n".join(lines))
    print("======================")
    return 1 if failures else 0


def _work_lines(out: dict[str, Counter], stats: Stats, seconds: float) -> list[str]:
    act, cmd, cax = out["activation"], out["command"], out["conax"]

    def accepted(counts: Counter) -> tuple[int, str]:
        kinds = {k.split()[1]: v for k, v in sorted(counts.items()) if k.startswith("submitted ")}
        return sum(kinds.values()), ", ".join(f"{k} {v}" for k, v in kinds.items())

    (n_cmd, kinds), (n_cax, methods) = accepted(cmd), accepted(cax)
    return [
        f"activations  : {act['ok'] + act['lost']} tried: ok {act['ok']} (200 + 40-hex CIK, then 409), lost "
        f"{act['lost']} (of them refused at create/enable {act['refused']}); {act['ok'] / seconds:.2f}/s; both "
        f"attempts {_ms(stats.done_seconds['activation'])}",
        f"commands     : {n_cmd} accepted ({kinds}), {cmd['refused']} refused: SUCCEEDED {cmd['SUCCEEDED']}, "
        f"FAILED {cmd['FAILED']}, open after the drain {cmd['lost'] - cmd['refused']}; {n_cmd / seconds:.2f}/s; "
        f"created to finished {_s(stats.done_seconds['command'])}",
        f"conax        : {n_cax} accepted ({methods}), {cax['refused']} refused: COMPLETED {cax['COMPLETED']}, "
        f"REJECTED {cax['REJECTED']}, PENDING after the drain {cax['lost'] - cax['refused']}; "
        f"{n_cax / seconds:.2f}/s; accepted to terminal (as polled) {_s(stats.done_seconds['conax'])}",
    ]


def _memory_lines(r: dict) -> list[str]:
    start, end = r["start_mem"], r["end_mem"]
    if not start or not end:
        return ["memory (RSS) : not measured (the run ended before the warm-up was over)"]
    total_start, total_end = sum(start.values()), sum(end.values())
    growth = total_end - total_start
    peak = max(sum(m.values()) for _, m in r["samples"]) if r["samples"] else total_end
    # A trend over a few minutes says little: given from 5 minutes of measurement on.
    long_enough = r["trickle_seconds"] - r["warmup"] >= 300
    slope = _slope_mb_per_hour(r["samples"], r["warmup"]) if long_enough else None
    names = list(dict.fromkeys([*start, *end]))
    per_child = ", ".join(f"{n} {start.get(n, 0) / 1024:.0f}->{end.get(n, 0) / 1024:.0f}" for n in names)
    return [
        f"memory (RSS) : serve + descendants {mb(total_start)} after {r['warmup']:.0f} s warm-up -> {mb(total_end)} "
        f"at the end: {growth / 1024:+.1f} MB ({growth / total_start * 100:+.1f} %); peak {mb(peak)}; trend "
        + (f"{slope:+.1f} MB/h (least squares, 10 s samples)" if slope is not None else "- (under 5 min measured)"),
        f"  by child MB: {per_child}",
        _disk_line(r["start_disk"], r["end_disk"]),
    ]


def _disk_line(start: dict[str, int], end: dict[str, int]) -> str:
    return (
        f"disk         : database {mb(start['database'] / 1024)} -> {mb(end['database'] / 1024)}; broker folder "
        f"{start['broker_files']} -> {end['broker_files']} files ({start['broker'] / 1024:.0f} -> "
        f"{end['broker'] / 1024:.0f} KB)"
    )


def _failures(crashes: int, lost: int, r: dict, stack: Stack) -> list[str]:
    failures = []
    if crashes:
        failures.append(f"{crashes} crashes")
    if lost:
        failures.append(f"{lost} lost")
    if r["stop_code"] != 0 and not r["exited_early"]:
        failures.append(f"serve's exit after SIGINT: {r['stop_code']}")
    if r["orphans"]:
        failures.append(f"{len(r['orphans'])} processes left behind")
    if not stack.beat:
        failures.append("beat sent no task")
    return failures


def _details(stack: Stack, stats: Stats) -> None:
    """What went wrong, in detail, before the summary block."""
    for line in stack.stopped:
        print(f"stopped: {line['name']} (pid {line['pid']}): {line['reason']}")
    for work, whys in stats.lost.items():
        for why in whys[:20]:
            print(f"lost {work}: {why}")
    for what in stats.unexpected[:30]:
        print(f"note: {what}")
    for line in list(dict.fromkeys(stack.problems))[:15]:
        print(f"server log: {line}")


if __name__ == "__main__":
    sys.exit(main())
