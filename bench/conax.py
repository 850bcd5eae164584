#!/usr/bin/env python
"""Conax provisioning requests end to end: CRM.COM API creations, the worker draining them against the HTTP CAS
simulator, and the ``list`` endpoint at a million rows.

    .venv/bin/python bench/conax.py [--requests 10000] [--clients 8] [--workers 4] [--pool threads]
        [--concurrency 16] [--worker-processes 1] [--express-processes 0] [--express-concurrency 2] [--latency 5]
        [--cards 1000] [--backlog 10000] [--express 200] [--express-interval 20] [--list-rows 1000000]
        [--list-queries 2000] [--no-list] [--creations-only]

Creates a throwaway PostgreSQL database (``BENCH_DB``, default ``portal_bench_conax``; one subscription with one
service, ``--cards`` smartcards, a support-staff user; bulk SQL) and starts, as separate processes: the CAS simulator
(``manage.py simulate_cas --auto-register``, ``--latency`` ms before each answer), the production HTTP server (gunicorn
sync workers, code preloaded) and a Celery worker on ``express,regular`` (Redis broker, PostgreSQL), plus, with
``--express-processes``, workers on ``express`` only (the production shape's ``express`` process). Beat does not
run: a request reaches a worker through its own on-commit enqueue, its smartcard's previous request (which queues the
next), or the periodic dispatch task the script sends itself (phase 4). The portal decides what a message carries:
since the pipeline works in batches, one ``conax.tasks.process_requests`` message holds up to ``CAS_BATCH_SIZE``
numbers of one priority (a creation's own enqueue holds one); the same script measures the code before batches, whose
messages held one number each. Then, in one run, with ``--clients`` client threads (one request in flight each, httpx
keep-alive):

1. baseline A: ``POST /bench/drf-create`` (bench/urls.py), a bare DRF view inserting one row, ``--requests`` times,
   once before and once after the creations; its rate is over both;
2. creations: ``--requests`` ``add_subscriptions`` with ``process_immediately: 1`` (every smartcard in turn, one in
   ten EXPRESS); every answer must be ``status.code == "OK"``. creations/s is over the wall time of the calls. The
   worker drains them meanwhile and the script waits until none is PENDING. drain requests/s = requests / (the last
   ``executed_date`` - the first ``created_date``), so it cannot exceed the creation rate; PENDING -> terminal is
   ``executed_date - created_date`` of each request;
3. baseline B: ``--requests`` no-op tasks (``portal.kernel.tasks.noop``) through the same worker pool on ``regular``;
4. backlog: ``--backlog`` due REGULAR ``add_subscriptions`` (bulk SQL, PENDING, never queued, the cards in turn),
   queued by the app's own periodic dispatch (``conax.tasks.requests_dispatch``, sent once: it queues each card's
   first, and each finished request queues its card's next). While they drain, one client creates ``--express``
   EXPRESS requests through the CRM API (``process_immediately``), one every ``--express-interval`` ms. backlog
   drain requests/s = backlog / (the last backlog ``executed_date`` - the dispatch); its ratio to baseline B is the
   drain target (>= 0.5); EXPRESS PENDING -> terminal p99 under that backlog is the latency target (< 300 ms);
5. exactly once: the simulator's ``/admin/stats`` (sends must equal every request made: no duplicate, nothing applied
   twice);
6. list: ``--list-rows`` more requests (bulk SQL, the 13 types, after the drained ones), VACUUM ANALYZE, then
   ``--list-queries`` ``GET list?type=<random>&number_of_results=50`` (plain, with a random offset below 500, with
   ``fields_set``) and a quarter as many from a single client (the service time without queueing); PASS/FAIL against
   p95 < 50 ms, and EXPLAIN ANALYZE of the query the list runs (through ``conax.selectors.request_list``);
   ``--no-list`` leaves it out (bench/crm_list.py measures the list on its own).

``--creations-only`` runs baseline A and the creations (phases 1 and 2) with no worker and no simulator started, in
about two minutes at ``--requests 2000``: each creation still publishes its message after its commit, nobody consumes
it (the queues are purged at the end), so the ratio is the creation's own cost, without the drain competing for the
same cores. It checks that every request is PENDING with ``enqueued_at`` set.

Each phase also shows where the CPU went, in ms per request: the server, the worker, the PostgreSQL backends of the
benchmark's database, backends that ended during the phase (reaped by the postmaster; any database), the simulator,
the client; the machine's busy cores; and the PostgreSQL sessions opened. Exits non-zero on a wrong answer, a request
not COMPLETED, or an exactly-once violation; a list p95, a drain ratio or an EXPRESS p99 off its target is reported,
not an error.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import itertools
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from celery import Celery
from common import (  # bench/common.py: scripts run as `python bench/<name>.py`
    PG,
    REDIS,
    REPO,
    drop_database,
    free_port,
    fresh_database,
    migrate,
    percentile,
    server_env,
    start_server,
    stop_processes,
    wait_port,
)

DB = os.environ.get("BENCH_DB", "portal_bench_conax")
USER, PASSWORD = "bench-crm", "bench-crm-password-2026"
CRM = "/crmapi/rest/v2/"
REQUESTS = CRM + "conax_web_services/provisioning_requests/"
SUBSCRIPTION, SERVICE, UNIT = "B0" * 16, "5E" * 16, "0A" * 16
LIST_TARGET_MS = 50.0
DRAIN_TARGET = 0.5  # backlog drain requests/s over no-op tasks/s
EXPRESS_TARGET_MS = 300.0  # EXPRESS PENDING -> terminal p99 under a REGULAR backlog
LIST_FIELDS = "number,type,life_cycle_state"
STALL_SECONDS = 60


def _request_types() -> list[str]:
    """The 13 types of ``conax.choices.RequestType``, read from its file: ``import conax`` here would import this
    very script (``bench/`` is the first entry of sys.path)."""
    spec = importlib.util.spec_from_file_location("conax_choices", REPO / "conax" / "choices.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.RequestType.values)


TYPES = _request_types()


@dataclass
class Run:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    errors: int = 0
    first_error: str = ""

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def merged(self, other: Run) -> Run:
        first = self.first_error or other.first_error
        return Run(
            self.name,
            self.latencies_ms + other.latencies_ms,
            self.seconds + other.seconds,
            self.errors + other.errors,
            first,
        )

    def line(self, label: str) -> str:
        return (
            f"{label:38} {self.rps:7.0f} req/s  p50 {percentile(self.latencies_ms, 50):6.1f} ms  "
            f"p95 {percentile(self.latencies_ms, 95):6.1f} ms  p99 {percentile(self.latencies_ms, 99):6.1f} ms  "
            f"({len(self.latencies_ms)} requests, {self.errors} wrong answers)"
        )


# --- data ----------------------------------------------------------------------------------------------------------


def load(cards: int) -> None:
    """Bulk SQL: one unit, one service in one subscription, ``cards`` smartcards of that subscription."""
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        conn.execute(
            "INSERT INTO conax_unit (id, name, alternative_code, description, group_name, community_name) "
            "VALUES (%s, 'Bench Unit', 'BU', 'bench', 'Bench Group', 'Bench Community')",
            [UNIT],
        )
        conn.execute(
            "INSERT INTO conax_service (id, code, alternative_code, name, service_ca_id) "
            "VALUES (%s, 'BENCH', NULL, 'Bench service', 'P-BENCH')",
            [SERVICE],
        )
        conn.execute(
            "INSERT INTO conax_subscription (id, number, created_at) VALUES (%s, 'S-BENCH', now())", [SUBSCRIPTION]
        )
        conn.execute(
            "INSERT INTO conax_subscription_services (subscription_id, service_id) VALUES (%s, %s)",
            [SUBSCRIPTION, SERVICE],
        )
        conn.execute(
            "INSERT INTO conax_smartcard (id, serial_number, ca_id, subscription_id) "
            "SELECT upper(md5(random()::text || n)), format('SC-%%s', lpad(n::text, 7, '0')), "
            "format('CA-%%s', lpad(n::text, 7, '0')), %s FROM generate_series(1, %s) n",
            [SUBSCRIPTION, cards],
        )
        conn.execute("VACUUM ANALYZE")


def create_user(env: dict[str, str]) -> None:
    script = (
        "from django.contrib.auth.models import Group, User; "
        f"u = User.objects.create_user({USER!r}, password={PASSWORD!r}, is_staff=True); "
        "u.groups.add(Group.objects.get(name='support'))"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script], cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL
    )


def card_ids() -> list[str]:
    with psycopg.connect(f"{PG}/{DB}") as conn:
        return [row[0] for row in conn.execute("SELECT id FROM conax_smartcard ORDER BY serial_number")]


def load_list_rows(rows: int) -> float:
    """Bulk SQL, one statement: ``rows`` terminal requests over the 13 types (1 in 40 REJECTED), dated up to now,
    with every index maintained as the rows go in (dropping and rebuilding them saved only ~15 %); seconds taken."""
    started = time.monotonic()
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        user_id = conn.execute("SELECT id FROM auth_user WHERE username = %s", [USER]).fetchone()[0]
        conn.execute(
            """WITH c AS (SELECT array_agg(id ORDER BY id) AS ids, count(*)::int AS n FROM conax_smartcard)
            INSERT INTO conax_provisioningrequest (uid, type, life_cycle_state, priority, scheduled_date, executed_date,
                process_immediately, parameters_set, ca_pin_encrypted, request, response, reference_number,
                error_code, error_description, provider_error_code, provider_error_description, process_name,
                created_date, updated_date, attempts, sent_at, created_by_user_id, updated_by_user_id,
                created_by_unit_id, updated_by_unit_id, subscription_id, service_id, smartcard_id)
            SELECT upper(md5('list-' || s.n)), (%(types)s::text[])[1 + s.n %% 13],
                   CASE WHEN s.rejected THEN 'REJECTED' ELSE 'COMPLETED' END,
                   CASE WHEN s.n %% 10 = 0 THEN 'EXPRESS' ELSE 'REGULAR' END,
                   s.at, s.at + interval '1 second', true, '[]', '', c.ids[1 + s.n %% c.n],
                   CASE WHEN s.rejected THEN NULL ELSE 'OK' || md5(s.n::text) END,
                   CASE WHEN s.rejected THEN NULL ELSE md5(s.n::text) END,
                   CASE WHEN s.rejected THEN 'PROVIDER_REJECTED' END,
                   CASE WHEN s.rejected THEN 'the head-end refused the request' END,
                   CASE WHEN s.rejected THEN 'HEADEND_REFUSED' END, CASE WHEN s.rejected THEN 'refused' END,
                   CASE WHEN s.n %% 3 = 0 THEN 'MANUAL' END,
                   s.at, s.at + interval '1 second', 0, s.at, %(user)s, %(user)s, %(unit)s, %(unit)s,
                   %(subscription)s, %(service)s, c.ids[1 + s.n %% c.n]
              FROM c, (SELECT n, n %% 40 = 0 AS rejected, now() - (%(rows)s - n) * interval '10 seconds' AS at
                         FROM generate_series(1, %(rows)s) n) s""",
            {
                "types": TYPES,
                "user": user_id,
                "unit": UNIT,
                "subscription": SUBSCRIPTION,
                "service": SERVICE,
                "rows": rows,
            },
        )
        conn.execute("VACUUM ANALYZE conax_provisioningrequest")
    return time.monotonic() - started


def load_backlog(rows: int) -> None:
    """Bulk SQL: ``rows`` due REGULAR add_subscriptions, PENDING and never queued, over the cards in turn (each card's
    after the requests it has), with the parameters ``conax.services.subscription_change`` gives them."""
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        user_id = conn.execute("SELECT id FROM auth_user WHERE username = %s", [USER]).fetchone()[0]
        conn.execute(
            """WITH c AS (SELECT s.id, s.ca_id, (row_number() OVER (ORDER BY s.serial_number) - 1)::int AS k,
                                 (count(*) OVER ())::int AS n,
                                 coalesce((SELECT max(r.sequence_number) FROM conax_provisioningrequest r
                                            WHERE r.smartcard_id = s.id), 0) AS seq
                            FROM conax_smartcard s)
            INSERT INTO conax_provisioningrequest (uid, type, life_cycle_state, priority, scheduled_date,
                process_immediately, sequence_number, parameters_set, ca_pin_encrypted, created_date, updated_date,
                attempts, created_by_user_id, updated_by_user_id, created_by_unit_id, updated_by_unit_id,
                subscription_id, service_id, smartcard_id)
            SELECT upper(md5('backlog-' || g.i)), 'ADD_SUBSCRIPTIONS', 'PENDING', 'REGULAR', now(), true,
                   c.seq + 1 + g.i / c.n,
                   jsonb_build_array(
                       jsonb_build_object('sub_provisioning_distribution_id', %(subscription)s::text,
                                          'id', upper(md5('backlog-a-' || g.i))),
                       jsonb_build_object('service_ca_id', 'P-BENCH', 'id', upper(md5('backlog-b-' || g.i))),
                       jsonb_build_object('smartcard_ca_id', c.ca_id, 'id', upper(md5('backlog-c-' || g.i)))),
                   '', now(), now(), 0, %(user)s, %(user)s, %(unit)s, %(unit)s, %(subscription)s, %(service)s, c.id
              FROM generate_series(0, %(rows)s - 1) g(i) JOIN c ON c.k = g.i %% c.n
             ORDER BY g.i""",
            {"user": user_id, "unit": UNIT, "subscription": SUBSCRIPTION, "service": SERVICE, "rows": rows},
        )
        conn.execute("VACUUM ANALYZE conax_provisioningrequest")


# --- processes -----------------------------------------------------------------------------------------------------


def start_simulator(port: int, latency: float, env: dict[str, str], log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "simulate_cas",
            "--port",
            str(port),
            "--auto-register",
            "--latency",
            str(latency),
        ],
        cwd=REPO,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    wait_port(port, proc)
    return proc


def start_worker(
    args, env: dict[str, str], name: str, log: Path, queues: str = "express,regular", concurrency: int = 0
) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "-Q",
            queues,
            "--pool",
            args.pool,
            "--concurrency",
            str(concurrency or args.concurrency),
            "--hostname",
            f"{name}@%h",
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "WARNING",
        ],
        cwd=REPO,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


# --- CPU accounting: where the two cores went during a phase --------------------------------------------------------


def _stat(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # the process ended meanwhile
        return ["0"] * 15


def ticks(pids: list[int]) -> dict[int, int]:
    """utime + stime of each process (all its threads)."""
    return {pid: int(fields[11]) + int(fields[12]) for pid in pids for fields in [_stat(pid)]}


def reaped_ticks(pid: int) -> dict[int, int]:
    """cutime + cstime: what the children ``pid`` has reaped used (the postmaster's: ended backends)."""
    fields = _stat(pid)
    return {pid: int(fields[13]) + int(fields[14])}


def tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        pids.append(todo.pop())
        with contextlib.suppress(OSError):  # the process ended meanwhile
            todo += map(int, Path(f"/proc/{pids[-1]}/task/{pids[-1]}/children").read_text().split())
    return pids


def _machine() -> tuple[int, int]:
    """Ticks of the whole machine: busy (user, nice, system, irq, softirq) and steal (taken by the host)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return user + nice + system + irq + softirq, steal


def db_backends() -> list[int]:
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [DB])
        return [row[0] for row in rows]


def postmaster() -> int:
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        return int(_stat(conn.info.backend_pid)[1])  # the parent of a backend


def db_sessions() -> int:
    """Sessions ever opened on the benchmark's database (pg_stat_database.sessions, PostgreSQL 14+)."""
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        return conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", [DB]).fetchone()[0]


@dataclass
class Cpu:
    seconds: dict[str, float]
    wall: float
    busy: float
    steal: float
    sessions: int

    def line(self, requests: int) -> str:
        per = " + ".join(f"{name} {s / requests * 1000:.1f}" for name, s in self.seconds.items())
        ours = sum(self.seconds.values())
        rest = max(0.0, self.busy - ours) / self.wall
        return (
            f"CPU ms/request: {per} = {ours / requests * 1000:.1f}; cores busy {self.busy / self.wall:.2f} of "
            f"{os.cpu_count()} (the above {ours / self.wall:.2f}, everything else {rest:.2f}, steal "
            f"{self.steal / self.wall:.2f}); PostgreSQL sessions opened {self.sessions} "
            f"({self.sessions / requests:.2f} per request)"
        )


class CpuMeter:
    """CPU seconds of each group of processes and of the machine over one call, and the PostgreSQL sessions opened.

    A group is a function returning ticks by key (``ticks``/``reaped_ticks``); a key seen only at the end counts
    from zero (a process born during the call).
    """

    def __init__(self, groups: dict[str, Callable[[], dict[int, int]]]) -> None:
        self.groups, self.hz = groups, os.sysconf("SC_CLK_TCK")

    def _sample(self) -> tuple[dict[str, dict[int, int]], tuple[int, int], int, float]:
        return {name: group() for name, group in self.groups.items()}, _machine(), db_sessions(), time.monotonic()

    def measure(self, fn: Callable[[], object]) -> tuple[object, Cpu]:
        (before, m0, s0, t0), result, (after, m1, s1, t1) = self._sample(), fn(), self._sample()
        seconds = {
            name: sum(value - before[name].get(key, 0) for key, value in group.items()) / self.hz
            for name, group in after.items()
        }
        return result, Cpu(seconds, t1 - t0, (m1[0] - m0[0]) / self.hz, (m1[1] - m0[1]) / self.hz, s1 - s0)


# --- load generation -----------------------------------------------------------------------------------------------

Call = Callable[[httpx.Client, int, random.Random], tuple[bool, str]]


def drive(name: str, base: str, count: int, clients: int, call: Call) -> Run:
    """``count`` calls shared by ``clients`` threads (one in flight each, keep-alive); wall time of the whole."""
    run, lock, numbers = Run(name), threading.Lock(), itertools.count()

    def client(seed: int) -> None:
        rnd = random.Random(seed)
        with httpx.Client(base_url=base, timeout=60) as http:
            while True:
                with lock:
                    n = next(numbers)
                if n >= count:
                    return
                started = time.perf_counter()
                try:
                    ok, detail = call(http, n, rnd)
                except (httpx.HTTPError, ValueError) as exc:
                    ok, detail = False, f"{type(exc).__name__}: {exc}"
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    run.latencies_ms.append(elapsed)
                    if not ok:
                        run.errors += 1
                        run.first_error = run.first_error or detail[:300]

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.seconds = time.perf_counter() - began
    return run


def login(base: str) -> str:
    body = {"username": USER, "password": PASSWORD, "organisation": "portal"}
    answer = httpx.post(f"{base}{CRM}authentication/token", json=body, timeout=30).json()
    if answer["status"]["code"] != "OK":
        raise SystemExit(f"login failed: {answer['status']}")
    return answer["data"]["token"]


def baseline_call(http: httpx.Client, n: int, rnd: random.Random) -> tuple[bool, str]:
    response = http.post("/bench/drf-create", json={"name": f"bench-{uuid.uuid4().hex}"})
    return response.status_code == 201 and len(response.json()["id"]) == 32, response.text


def creation_call(token: str, cards: list[str], immediately: int, every: int = 10) -> Call:
    """add_subscriptions of card ``n`` (in turn), one in ``every`` EXPRESS."""

    def call(http: httpx.Client, n: int, rnd: random.Random) -> tuple[bool, str]:
        body = {
            "token": token,
            "subscription_identifier": {"id": SUBSCRIPTION},
            "service_identifier": {"id": SERVICE},
            "smartcard_identifier": {"id": cards[n % len(cards)]},
            "process_immediately": immediately,
        }
        if n % every == 0:
            body["priority"] = "EXPRESS"
        answer = http.post(REQUESTS + "add_subscriptions", json=body).json()
        return answer["status"]["code"] == "OK", str(answer["status"])

    return call


def list_call(token: str, max_offset: int = 0, fields: str | None = None) -> Call:
    def call(http: httpx.Client, n: int, rnd: random.Random) -> tuple[bool, str]:
        params = {"token": token, "type": rnd.choice(TYPES), "number_of_results": 50}
        if max_offset:
            params["offset"] = rnd.randrange(max_offset)
        if fields:
            params["fields_set"] = fields
        answer = http.get(REQUESTS + "list", params=params).json()
        ok = answer["status"]["code"] == "OK" and len(answer["data"]) == 50
        return ok, f"{answer['status']} with {len(answer['data'] or ())} rows"

    return call


# --- the worker side -----------------------------------------------------------------------------------------------


def purge(app: Celery, *queues: str) -> int:
    """Messages left in the queues by an earlier run that was killed: they name request numbers of another database
    (numbers start at 1 again) and would send one of this run's requests early."""
    with app.connection_for_write() as conn:
        return sum(conn.default_channel.queue_purge(queue) or 0 for queue in queues)


def queued(app: Celery, *queues: str) -> int:
    with app.connection_for_write() as conn:
        return sum(conn.default_channel._size(queue) for queue in queues)  # kombu's Redis channel: every priority


def wait_queues_empty(app: Celery, timeout: float = 300) -> int:
    """Until the worker has taken every message of express/regular; returns how many there were at first."""
    left = first = queued(app, "express", "regular")
    deadline = time.monotonic() + timeout
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = queued(app, "express", "regular")
    time.sleep(0.5)  # the last ones taken are running
    return first


def noop_rate(app: Celery, count: int) -> float:
    started = time.perf_counter()
    results = [app.send_task("portal.kernel.tasks.noop", queue="regular") for _ in range(count)]
    for result in results:
        result.get(timeout=300)
    return count / (time.perf_counter() - started)


def wait_drained(created: int, creating: threading.Event) -> bool:
    """Poll until no request is PENDING (or none finished for STALL_SECONDS after the creations ended)."""
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        last, last_change = -1, time.monotonic()
        while True:
            total, pending = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE life_cycle_state = 'PENDING') FROM conax_provisioningrequest"
            ).fetchone()
            if not creating.is_set() and total >= created and pending == 0:
                return True
            if total - pending != last:
                last, last_change = total - pending, time.monotonic()
            elif not creating.is_set() and time.monotonic() - last_change > STALL_SECONDS:
                return False
            time.sleep(0.1)


def create_and_drain(base: str, args, call: Call) -> tuple[Run, bool]:
    """The creations from the clients while the worker drains; returns once no request is PENDING (or stalled)."""
    creating, drained = threading.Event(), []
    creating.set()
    waiter = threading.Thread(target=lambda: drained.append(wait_drained(args.requests, creating)))
    waiter.start()
    try:
        run = drive("create", base, args.requests, args.clients, call)
    finally:
        creating.clear()
        waiter.join()
    return run, drained[0]


def backlog_and_express(app: Celery, base: str, token: str, cards: list[str], args) -> dict:
    """Queue the backlog through the app's own dispatch and, while it drains, create the EXPRESS requests; returns
    once no request is PENDING (or the drain stalled)."""
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        first = conn.execute("SELECT coalesce(max(number), 0) + 1 FROM conax_provisioningrequest").fetchone()[0]
    load_backlog(args.backlog)
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        after_backlog = conn.execute("SELECT max(number) FROM conax_provisioningrequest").fetchone()[0]
        dispatched = conn.execute("SELECT now()").fetchone()[0]
    app.send_task("conax.tasks.requests_dispatch", queue="regular")
    express = Run("express")
    pending_at_end = 0
    with httpx.Client(base_url=base, timeout=60) as http:
        call = creation_call(token, cards, 1, every=1)
        for n in range(args.express):
            started = time.perf_counter()
            ok, detail = call(http, n * 7919, random.Random(n))  # cards spread, EXPRESS (every=1)
            express.latencies_ms.append((time.perf_counter() - started) * 1000)
            if not ok:
                express.errors += 1
                express.first_error = express.first_error or detail[:300]
            time.sleep(max(0.0, args.express_interval / 1000 - (time.perf_counter() - started)))
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        pending_at_end = conn.execute(
            "SELECT count(*) FROM conax_provisioningrequest WHERE life_cycle_state = 'PENDING' AND number BETWEEN %s "
            "AND %s",
            [first, after_backlog],
        ).fetchone()[0]
    creating = threading.Event()
    drained = wait_drained(0, creating)
    with psycopg.connect(f"{PG}/{DB}") as conn:
        last, retried = conn.execute(
            "SELECT max(executed_date), count(*) FILTER (WHERE attempts > 1) FROM conax_provisioningrequest "
            "WHERE number BETWEEN %s AND %s",
            [first, after_backlog],
        ).fetchone()
        rows = conn.execute(
            "SELECT extract(epoch FROM executed_date - created_date)::float, "
            "extract(epoch FROM sent_at - created_date)::float FROM conax_provisioningrequest "
            "WHERE number > %s AND priority = 'EXPRESS'",
            [after_backlog],
        ).fetchall()
        express_ms = [total * 1000 for total, _ in rows if total is not None]  # None: not terminal (reported)
        express_wait_ms = [wait * 1000 for _, wait in rows if wait is not None]
        express_last = conn.execute(
            "SELECT max(created_date) FROM conax_provisioningrequest WHERE number > %s", [after_backlog]
        ).fetchone()[0]
        states = dict(
            conn.execute(
                "SELECT life_cycle_state, count(*) FROM conax_provisioningrequest WHERE number >= %s GROUP BY 1",
                [first],
            ).fetchall()
        )
    return {
        "states": states,
        "drained": drained,
        "seconds": (last - dispatched).total_seconds() if last else 0.0,
        "retried": retried,
        "pending_at_last_express": pending_at_end,
        "express_created": express,
        "express_ms": express_ms,
        "express_wait_ms": express_wait_ms,
        "express_window_s": (express_last - dispatched).total_seconds() if express_last else 0.0,
    }


def drain_figures() -> dict:
    with psycopg.connect(f"{PG}/{DB}") as conn:
        row = conn.execute(
            """SELECT min(created_date), max(created_date), max(executed_date),
                      percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM executed_date - created_date)),
                      percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM executed_date - created_date)),
                      max(extract(epoch FROM executed_date - created_date)),
                      count(*) FILTER (WHERE attempts > 1), count(*) FILTER (WHERE priority = 'EXPRESS'),
                      percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM executed_date - created_date))
                          FILTER (WHERE priority = 'EXPRESS')
                 FROM conax_provisioningrequest"""
        ).fetchone()
        states = dict(
            conn.execute(
                "SELECT life_cycle_state, count(*) FROM conax_provisioningrequest GROUP BY 1 ORDER BY 1"
            ).fetchall()
        )
        errors = dict(
            conn.execute(
                "SELECT coalesce(provider_error_code, error_code), count(*) FROM conax_provisioningrequest "
                "WHERE life_cycle_state = 'REJECTED' GROUP BY 1"
            ).fetchall()
        )
        entitlements = conn.execute("SELECT count(*) FROM conax_entitlement WHERE active").fetchone()[0]
        tail = conn.execute(
            "SELECT count(*) FROM conax_provisioningrequest WHERE executed_date > %s", [row[1]]
        ).fetchone()[0]
    first, last_created, last_executed, p50, p99, worst, retried, express, express_p99 = row
    return {
        "first_created": first,
        "last_created": last_created,
        "last_executed": last_executed,
        "p50_ms": (p50 or 0) * 1000,
        "p99_ms": (p99 or 0) * 1000,
        "max_ms": (worst or 0) * 1000,
        "retried": retried,
        "express": express,
        "express_p99_ms": (express_p99 or 0) * 1000,
        "states": states,
        "errors": errors,
        "entitlements": entitlements,
        "tail": tail,
    }


def explain(env: dict[str, str], offset: int) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the query ``list`` runs, through the same selector, in a Django shell."""
    script = (
        "from conax import selectors; "
        f"print(selectors.request_list(filters={{'type': 'CANCEL_SUBSCRIPTIONS'}})[{offset}:{offset + 50}]"
        ".explain(analyze=True, buffers=True))"
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.rstrip()


# --- main ----------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000, help="creations (and baseline calls, no-op tasks)")
    parser.add_argument("--clients", type=int, default=8, help="client threads (one request in flight each)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync worker processes")
    parser.add_argument("--pool", default="threads", choices=["threads", "prefork", "solo"], help="Celery pool")
    parser.add_argument("--concurrency", type=int, default=16, help="Celery pool size (threads or processes)")
    parser.add_argument("--worker-processes", type=int, default=1, help="Celery worker processes of that pool")
    parser.add_argument(
        "--express-processes",
        type=int,
        default=0,
        help="more Celery worker processes on the express queue only (the production shape's `express` worker)",
    )
    parser.add_argument("--express-concurrency", type=int, default=2, help="pool size of each express-only worker")
    parser.add_argument("--latency", type=float, default=5.0, help="ms the simulator waits before each answer")
    parser.add_argument("--cards", type=int, default=1000, help="smartcards the creations go round")
    parser.add_argument("--backlog", type=int, default=10_000, help="REGULAR requests of the backlog phase")
    parser.add_argument("--express", type=int, default=200, help="EXPRESS requests created during the backlog")
    parser.add_argument("--express-interval", type=float, default=20.0, help="ms between two EXPRESS creations")
    parser.add_argument("--list-rows", type=int, default=1_000_000, help="requests added for the list test")
    parser.add_argument("--list-queries", type=int, default=2000, help="list calls per variant")
    parser.add_argument("--no-list", action="store_true", help="skip the list phase (bench/crm_list.py measures it)")
    parser.add_argument(
        "--creations-only",
        action="store_true",
        help="baseline A and the creations only, no worker (nothing drains): the creation's own cost",
    )
    args = parser.parse_args()
    if args.creations_only:
        creations_only(args)
        return

    logs = Path(tempfile.mkdtemp(prefix="bench-conax-"))
    sim_port, port = free_port(), free_port()
    sim_url, base = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{port}"
    env = server_env(
        DB, CELERY_BROKER_URL=REDIS, CAS_GATEWAY_URL=sim_url, CAS_DISPATCH_GRACE_SECONDS="600", LOG_LEVEL="WARNING"
    )
    worker_env = {**env, "CELERY_RESULT_BACKEND": REDIS}  # the no-op baseline waits on its results
    procs: list[subprocess.Popen] = []
    out: dict = {"args": args}
    fresh_database(DB)
    try:
        migrate(env)
        load(args.cards)
        create_user(env)
        cards = card_ids()
        app = Celery(broker=REDIS, backend=REDIS)
        out["purged"] = purge(app, "express", "regular")
        simulator = start_simulator(sim_port, args.latency, env, logs / "simulator.log")
        procs.append(simulator)
        workers = [
            start_worker(args, worker_env, f"bench{n}", logs / f"worker{n}.log") for n in range(args.worker_processes)
        ]
        workers += [
            start_worker(args, worker_env, f"express{n}", logs / f"express{n}.log", "express", args.express_concurrency)
            for n in range(args.express_processes)
        ]
        procs += workers
        server = start_server(port, args.workers, 1, env)
        procs.append(server)
        pg_master = postmaster()
        meter = CpuMeter(
            {
                "server": lambda: ticks(tree(server.pid)),
                "worker": lambda: ticks([pid for worker in workers for pid in tree(worker.pid)]),
                "postgres": lambda: ticks(db_backends()),
                "ended postgres backends (any db)": lambda: reaped_ticks(pg_master),
                "simulator": lambda: ticks(tree(simulator.pid)),
                "client": lambda: ticks([os.getpid()]),
            }
        )
        token = login(base)

        # Warm-up: the pool's threads or processes and their connections; the server's workers, imports, caches.
        noop_rate(app, 200)
        warm = min(400, args.requests)
        drive("warm-up", base, warm, args.clients, baseline_call)
        drive("warm-up", base, warm, args.clients, creation_call(token, cards, 0))  # not dispatched; deleted
        with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
            conn.execute("DELETE FROM conax_provisioningrequest")

        before, out["cpu_baseline"] = meter.measure(
            lambda: drive("baseline", base, args.requests, args.clients, baseline_call)
        )
        (out["create"], out["drained"]), out["cpu_create"] = meter.measure(
            lambda: create_and_drain(base, args, creation_call(token, cards, 1))
        )
        out["drain"] = drain_figures()
        out["leftover_tasks"] = wait_queues_empty(app)  # the baselines after this must not compete with them
        after = drive("baseline", base, args.requests, args.clients, baseline_call)
        out["baseline_runs"] = (before, after)
        out["baseline"] = before.merged(after)
        out["noop"], out["cpu_noop"] = meter.measure(lambda: noop_rate(app, args.requests))
        out["backlog"], out["cpu_backlog"] = meter.measure(lambda: backlog_and_express(app, base, token, cards, args))
        out["stats"] = httpx.get(f"{sim_url}/admin/stats", timeout=30).json()

        if not args.no_list:
            out["list_load_s"] = load_list_rows(args.list_rows)
            drive("warm-up", base, 200, args.clients, list_call(token))
            lists = {
                f"list, {args.clients} clients": (args.clients, list_call(token)),
                f"list offset<500, {args.clients} clients": (args.clients, list_call(token, max_offset=500)),
                f"list fields_set, {args.clients} clients": (args.clients, list_call(token, fields=LIST_FIELDS)),
                "list, 1 client": (1, list_call(token)),
            }
            out["lists"] = {}
            for label, (clients, call) in lists.items():
                count = args.list_queries if clients > 1 else max(200, args.list_queries // 4)
                out["lists"][label] = meter.measure(lambda c=clients, f=call, k=count: drive("list", base, k, c, f))
            out["explain"] = {offset: explain(env, offset) for offset in (0, 450)}
    except BaseException:
        for log in sorted(logs.iterdir()):
            tail = log.read_text(errors="replace").splitlines()[-20:]
            print(f"--- {log.name} (last lines)", *tail, sep="\n", file=sys.stderr)
        raise
    finally:
        stop_processes(procs)
        drop_database(DB)
        shutil.rmtree(logs, ignore_errors=True)
    report(out)


def creations_only(args) -> None:
    """Baseline A and the creations (``process_immediately``), with no worker and no simulator: each creation still
    publishes its message to Redis after its commit, but nothing consumes it, so the two cores go to the server,
    PostgreSQL and the clients only (the full run measures the creations while the worker drains on the same
    cores). Every request must end PENDING with ``enqueued_at`` set, one message each waiting; the queues are
    purged at the end."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = server_env(DB, CELERY_BROKER_URL=REDIS, CAS_DISPATCH_GRACE_SECONDS="600", LOG_LEVEL="WARNING")
    procs: list[subprocess.Popen] = []
    fresh_database(DB)
    app = Celery(broker=REDIS)
    try:
        migrate(env)
        load(args.cards)
        create_user(env)
        cards = card_ids()
        purged = purge(app, "express", "regular")
        server = start_server(port, args.workers, 1, env)
        procs.append(server)
        meter = CpuMeter(
            {
                "server": lambda: ticks(tree(server.pid)),
                "postgres": lambda: ticks(db_backends()),
                "client": lambda: ticks([os.getpid()]),
            }
        )
        token = login(base)
        warm = min(400, args.requests)
        drive("warm-up", base, warm, args.clients, baseline_call)
        drive("warm-up", base, warm, args.clients, creation_call(token, cards, 1))
        with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
            conn.execute("DELETE FROM conax_provisioningrequest")
        purge(app, "express", "regular")
        before, cpu_baseline = meter.measure(
            lambda: drive("baseline", base, args.requests, args.clients, baseline_call)
        )
        create, cpu_create = meter.measure(
            lambda: drive("create", base, args.requests, args.clients, creation_call(token, cards, 1))
        )
        after = drive("baseline", base, args.requests, args.clients, baseline_call)
        messages = queued(app, "express", "regular")
        with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
            rows = conn.execute(
                "SELECT life_cycle_state, count(*), count(enqueued_at) FROM conax_provisioningrequest GROUP BY 1"
            ).fetchall()
    finally:
        stop_processes(procs)
        with contextlib.suppress(Exception):  # Redis gone: nothing to purge
            purge(app, "express", "regular")
        drop_database(DB)
    baseline = before.merged(after)
    load_avg = os.getloadavg()
    print(
        f"creations only: no worker, no simulator; gunicorn sync x{args.workers}; {args.clients} client threads; "
        f"{os.cpu_count()} shared cores (load average at the end {load_avg[0]:.1f} / {load_avg[1]:.1f} / "
        f"{load_avg[2]:.1f})"
    )
    print(baseline.line("baseline A: bare DRF create of one row"))
    print(f"{'':38} (before the creations {before.rps:.0f} req/s, after {after.rps:.0f} req/s)")
    print(f"{'':38} {cpu_baseline.line(args.requests)}")
    print(create.line(f"creations (add_subscriptions, {args.requests})"))
    print(f"{'':38} {cpu_create.line(args.requests)}")
    print(f"requests (state, count, with enqueued_at): {rows}; messages waiting: {messages}")
    if purged:
        print(f"(purged {purged} messages an earlier run left in the express/regular queues)")
    print(f"ratio: creations/s / bare DRF creates/s = {create.rps / baseline.rps:.2f}")
    failures = [
        f"{run.name}: {run.errors} wrong answers, first: {run.first_error}" for run in (create, baseline) if run.errors
    ]
    if rows != [("PENDING", args.requests, args.requests)]:
        failures.append(f"every request PENDING and queued expected, found {rows}")
    if failures:
        raise SystemExit("FAILED: " + " | ".join(failures))


def report(out: dict) -> None:
    args, create, baseline, drain, stats = out["args"], out["create"], out["baseline"], out["drain"], out["stats"]
    n, load = args.requests, os.getloadavg()
    express_only = (
        f" + {args.express_processes} worker(s) on express only (--pool {args.pool} --concurrency "
        f"{args.express_concurrency})"
        if args.express_processes
        else ""
    )
    print(
        f"setup: 1 subscription, 1 service, {args.cards} smartcards; PostgreSQL (synchronous_commit on), Redis "
        f"broker; gunicorn sync x{args.workers}; celery --pool {args.pool} --concurrency {args.concurrency}"
        f"{f' x{args.worker_processes} processes' if args.worker_processes > 1 else ''} on express,regular"
        f"{express_only}"
        f" (no beat); HTTP CAS simulator, {args.latency:g} ms latency, auto-register; {args.clients} client threads "
        f"(httpx keep-alive); {os.cpu_count()} shared cores, everything on this machine (load average at the end "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f})"
    )
    first, second = out["baseline_runs"]
    print(baseline.line("baseline A: bare DRF create of one row"))
    print(f"{'':38} (before the creations {first.rps:.0f} req/s, after the drain {second.rps:.0f} req/s)")
    print(f"{'':38} {out['cpu_baseline'].line(n)}")
    print(create.line(f"creations (add_subscriptions, {n})"))
    span = (drain["last_executed"] - drain["first_created"]).total_seconds() if drain["last_executed"] else 0.0
    lag = (drain["last_executed"] - drain["last_created"]).total_seconds() if drain["last_executed"] else 0.0
    drain_rate = n / span if span else 0.0
    print(
        f"drain: {drain_rate:.0f} requests/s = {n} / {span:.2f} s from the first request's created_date to the last "
        f"executed_date (creations took {create.seconds:.2f} s; the queue emptied {lag:.2f} s after the last "
        "creation)"
    )
    if lag > 0.5:
        print(
            f"       the worker alone once the creations ended: {drain['tail']} requests in {lag:.2f} s = "
            f"{drain['tail'] / lag:.0f} requests/s"
        )
    print(f"creations + drain, {out['cpu_create'].line(n)}")
    print(
        f"PENDING -> terminal (executed_date - created_date): p50 {drain['p50_ms']:.0f} ms  p99 "
        f"{drain['p99_ms']:.0f} ms  max {drain['max_ms']:.0f} ms; EXPRESS ({drain['express']}) p99 "
        f"{drain['express_p99_ms']:.0f} ms; claimed more than once: {drain['retried']}"
    )
    print(
        f"tasks still queued when the last request had completed: {out['leftover_tasks']} (wake-ups for requests "
        "done already: a card's finished request queues its next one, which also has its own task)"
    )
    print(f"baseline B: no-op tasks through the same pool: {out['noop']:.0f} tasks/s; {out['cpu_noop'].line(n)}")
    print(
        f"ratios: creations/s / bare DRF creates/s = {create.rps / baseline.rps:.2f}; "
        f"drain requests/s / no-op tasks/s = {drain_rate / out['noop']:.2f}"
    )
    backlog = out["backlog"]
    backlog_rate = args.backlog / backlog["seconds"] if backlog["seconds"] else 0.0
    ratio = backlog_rate / out["noop"] if out["noop"] else 0.0
    print(
        f"backlog: {args.backlog} REGULAR requests queued by one periodic dispatch drained at {backlog_rate:.0f} "
        f"requests/s ({backlog['seconds']:.2f} s; claimed more than once: {backlog['retried']}; drained: "
        f"{'yes' if backlog['drained'] else 'NO (stalled)'}); / no-op tasks/s = {ratio:.2f} (target >= "
        f"{DRAIN_TARGET}: {'PASS' if ratio >= DRAIN_TARGET else 'FAIL'})"
    )
    print(f"{'':9}{out['cpu_backlog'].line(args.backlog + args.express)}")
    express_ms, made = backlog["express_ms"], backlog["express_created"]
    p99 = percentile(express_ms, 99)
    print(
        f"EXPRESS under the backlog: {len(express_ms)} created over {backlog['express_window_s']:.1f} s after the "
        f"dispatch ({made.errors} wrong answers), {backlog['pending_at_last_express']} backlog requests still "
        f"PENDING after the last; PENDING -> terminal p50 {percentile(express_ms, 50):.0f} ms  p95 "
        f"{percentile(express_ms, 95):.0f} ms  p99 {p99:.0f} ms  max {max(express_ms, default=0):.0f} ms (target "
        f"p99 < {EXPRESS_TARGET_MS:.0f} ms: {'PASS' if p99 < EXPRESS_TARGET_MS else 'FAIL'})"
    )
    wait = backlog["express_wait_ms"]
    print(
        f"{'':9}of which waiting to be claimed (created_date -> sent_at): p50 {percentile(wait, 50):.0f} ms  p99 "
        f"{percentile(wait, 99):.0f} ms"
    )
    rejections = f" rejections {drain['errors']}" if drain["errors"] else ""
    print(
        f"final states: {drain['states']}{rejections}; active entitlements {drain['entitlements']}; drained: "
        f"{'yes' if out['drained'] else 'NO (stalled)'}"
    )
    if out["purged"]:
        print(f"(purged {out['purged']} messages an earlier run left in the express/regular queues)")
    expected = n + args.backlog + args.express
    print(
        f"exactly once (simulator /admin/stats): sends {stats['sends']} (expected {expected}), duplicates "
        f"{stats['duplicates']}, lookups {stats['lookups']}, unavailable {stats['unavailable']}, keys "
        f"{stats['keys']}, applied_more_than_once {stats['applied_more_than_once'] or '[]'}"
    )
    if "lists" in out:
        report_lists(out)

    failures = []
    for run in (create, baseline, *(run for run, _ in out.get("lists", {}).values())):
        if run.errors:
            failures.append(f"{run.name}: {run.errors} wrong answers, first: {run.first_error}")
    if not out["drained"] or set(drain["states"]) != {"COMPLETED"}:
        failures.append(f"not all COMPLETED: {drain['states']}")
    if backlog["express_created"].errors:
        failures.append(f"express: {backlog['express_created'].errors} wrong answers")
    if not backlog["drained"] or set(backlog["states"]) != {"COMPLETED"}:
        failures.append(f"backlog and EXPRESS: not all COMPLETED: {backlog['states']}")
    if stats["sends"] != expected or stats["duplicates"] or stats["applied_more_than_once"]:
        failures.append("exactly once: sends != requests, or duplicates, or applied more than once")
    if failures:
        raise SystemExit("FAILED: " + " | ".join(failures))


def report_lists(out: dict) -> None:
    args, n = out["args"], out["args"].requests
    print(
        f"list: {args.list_rows} requests added in {out['list_load_s']:.0f} s (bulk SQL), {args.list_rows + n} in "
        f"the table; GET list?type=<random of 13>&number_of_results=50; target p95 < {LIST_TARGET_MS:.0f} ms "
        f"(fields_set={LIST_FIELDS})"
    )
    slow = []
    for label, (run, cpu) in out["lists"].items():
        p95 = percentile(run.latencies_ms, 95)
        print(f"{run.line(label)}  {'PASS' if p95 < LIST_TARGET_MS else 'FAIL'}")
        print(f"{'':38} {cpu.line(len(run.latencies_ms))}")
        if p95 >= LIST_TARGET_MS:
            slow.append(f"{label} p95 {p95:.1f} ms")
    keep = ("Limit", "Buffers", "Index Scan using", "Rows Removed by Filter", "Execution Time")  # first of each
    for offset, plan in out["explain"].items():
        texts = [line.strip().removeprefix("->").strip() for line in plan[plan.find("Limit") :].splitlines()]
        summary = [found for prefix in keep if (found := next((t for t in texts if t.startswith(prefix)), None))]
        print(f"EXPLAIN ANALYZE of the list query (type=CANCEL_SUBSCRIPTIONS, offset {offset}): " + "; ".join(summary))
    if slow:
        print(
            "full plan (offset 0):",
            *(f"    {line}" for line in out["explain"][0][out["explain"][0].find("Limit") :].splitlines()),
            sep="\n",
        )
    print(f"list target p95 < {LIST_TARGET_MS:.0f} ms: " + (f"FAIL ({'; '.join(slow)})" if slow else "PASS"))


if __name__ == "__main__":
    main()
