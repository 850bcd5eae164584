#!/usr/bin/env python
"""The CRM.COM ``list`` of Conax provisioning requests at a million rows, against a bare DRF one-row read on the same
server (the read side of issue 18; bench/conax.py measures creations and the drain, this script the list alone).

    .venv/bin/python bench/crm_list.py [--rows 1000000] [--clients 8] [--workers 4] [--queries 2000] [--cards 1000]
        [--server-side-binding] [--prepare-threshold N] [--only "list type"] [--keep] [--reuse]

Creates a throwaway PostgreSQL database (``BENCH_DB``, default ``portal_bench_crm_list``): one unit, one subscription
with one service, ``--cards`` smartcards, a support-staff user, then ``--rows`` requests over the 13 types in one
INSERT … SELECT generate_series (as bench/conax.py's list phase: 1 in 40 REJECTED, the rest COMPLETED, dated up to
now), plus 1 in 1000 PENDING, then VACUUM ANALYZE. Starts the production HTTP server (gunicorn sync workers, code
preloaded), logs in through ``authentication/token`` and, with ``--clients`` client threads (one call in flight
each, httpx keep-alive), runs ``--queries`` calls of each variant:

1. baseline: ``GET /bench/drf-read/<pk>`` (bench/urls.py), a bare DRF view reading one row by primary key;
2. ``list?type=<random of 13>&number_of_results=50`` (the issue's target), with a random offset below 500, with
   ``fields_set``, by ``life_cycle_state`` (REJECTED, PENDING), by ``reference_number``, a deep offset (below
   50 000), and the plain list from a single client (the service time without queueing).

Every answer is checked (status OK and the number of rows expected). Prints p50/p95/p99, requests/s, the ratio of
the p95 to the baseline's, the server's and the PostgreSQL backends' CPU ms per call, PASS/FAIL against
p95 < 50 ms for the type list, and EXPLAIN (ANALYZE, BUFFERS) of every query the list view sends about requests
(captured from the real view in a Django shell, so the plan shown is the one the code runs).

``--server-side-binding`` and ``--prepare-threshold N`` start the server with ``DATABASE_SERVER_SIDE_BINDING=true`` and
``DATABASE_PREPARE_THRESHOLD=N`` (docs/operations.md#database-connections), so one run measures each setting against
the same baseline. ``--only`` runs the variants whose label contains it (the baseline always runs). Loading a million
rows takes minutes: ``--keep`` leaves the database in place and ``--reuse`` takes such a database as it is when it
holds ``--rows`` requests (else it loads afresh), for several short runs one after another.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import itertools
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from common import (  # bench/common.py: scripts run as `python bench/<name>.py`
    PG,
    REPO,
    drop_database,
    free_port,
    fresh_database,
    migrate,
    percentile,
    server_env,
    start_server,
    stop_processes,
)

DB = os.environ.get("BENCH_DB", "portal_bench_crm_list")
USER, PASSWORD = "bench-crm", "bench-crm-password-2026"
CRM = "/crmapi/rest/v2/"
REQUESTS = CRM + "conax_web_services/provisioning_requests/"
SUBSCRIPTION, SERVICE, UNIT = "B0" * 16, "5E" * 16, "0A" * 16
TARGET_MS = 50.0
FIELDS = "number,type,life_cycle_state"


def _request_types() -> list[str]:
    """The 13 types, read from conax/choices.py (``import conax`` would find bench/conax.py first on sys.path)."""
    spec = importlib.util.spec_from_file_location("conax_choices", REPO / "conax" / "choices.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.RequestType.values)


TYPES = _request_types()


@dataclass
class Run:
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    errors: int = 0
    first_error: str = ""

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        return percentile(self.latencies_ms, p)


# --- data ----------------------------------------------------------------------------------------------------------


def load(cards: int, rows: int) -> float:
    """Bulk SQL (loading is not what is measured); seconds taken."""
    started = time.monotonic()
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
        conn.execute("INSERT INTO devices_vendor (name, created_at, updated_at) VALUES ('bench', now(), now())")
        conn.execute(
            "INSERT INTO devices_devicemodel (vendor_id, name, description, clone_rid, clone_code, clone_options, "
            "created_at, updated_at) SELECT id, 'box', '', '', '', '[]', now(), now() FROM devices_vendor"
        )
        conn.execute(
            "INSERT INTO devices_device (model_id, serial_number, extra, state, configuration_version, created_at, "
            "updated_at) SELECT m.id, format('BOX-%%s', n), '', 'notadded', 0, now(), now() "
            "FROM devices_devicemodel m, generate_series(1, %s) n",
            [1000],
        )
        user_id = conn.execute("SELECT id FROM auth_user WHERE username = %s", [USER]).fetchone()[0]
        conn.execute(
            """WITH c AS (SELECT array_agg(id ORDER BY id) AS ids, count(*)::int AS n FROM conax_smartcard)
            INSERT INTO conax_provisioningrequest (uid, type, life_cycle_state, priority, scheduled_date, executed_date,
                process_immediately, parameters_set, ca_pin_encrypted, request, response, reference_number,
                error_code, error_description, provider_error_code, provider_error_description, process_name,
                created_date, updated_date, attempts, sent_at, created_by_user_id, updated_by_user_id,
                created_by_unit_id, updated_by_unit_id, subscription_id, service_id, smartcard_id)
            SELECT upper(md5('list-' || s.n)), (%(types)s::text[])[1 + s.n %% 13], s.state,
                   CASE WHEN s.n %% 10 = 0 THEN 'EXPRESS' ELSE 'REGULAR' END,
                   s.at, CASE WHEN s.state <> 'PENDING' THEN s.at + interval '1 second' END, true,
                   '[{"id": "1", "service_ca_id": "P-BENCH"}]', '', c.ids[1 + s.n %% c.n],
                   CASE WHEN s.state = 'COMPLETED' THEN 'OK' || md5(s.n::text) END,
                   CASE WHEN s.state = 'COMPLETED' THEN md5(s.n::text) END,
                   CASE WHEN s.state = 'REJECTED' THEN 'PROVIDER_REJECTED' END,
                   CASE WHEN s.state = 'REJECTED' THEN 'the head-end refused the request' END,
                   CASE WHEN s.state = 'REJECTED' THEN 'HEADEND_REFUSED' END,
                   CASE WHEN s.state = 'REJECTED' THEN 'refused' END,
                   CASE WHEN s.n %% 3 = 0 THEN 'MANUAL' END,
                   s.at, s.at + interval '1 second', 0, s.at, %(user)s, %(user)s, %(unit)s, %(unit)s,
                   %(subscription)s, %(service)s, c.ids[1 + s.n %% c.n]
              FROM c, (SELECT n, CASE WHEN n %% 1000 = 7 THEN 'PENDING' WHEN n %% 40 = 0 THEN 'REJECTED'
                                      ELSE 'COMPLETED' END AS state,
                              now() - (%(rows)s - n) * interval '10 seconds' AS at
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
        conn.execute("VACUUM ANALYZE")
    return time.monotonic() - started


def loaded_rows() -> int | None:
    """The requests in a database a previous ``--keep`` run left, None when there is none."""
    try:
        with psycopg.connect(f"{PG}/{DB}", connect_timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM conax_provisioningrequest").fetchone()[0]
    except psycopg.Error:
        return None


def create_user(env: dict[str, str]) -> None:
    script = (
        "from django.contrib.auth.models import Group, User; "
        f"u = User.objects.create_user({USER!r}, password={PASSWORD!r}, is_staff=True); "
        "u.groups.add(Group.objects.get(name='support'))"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script], cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL
    )


def reference_numbers(count: int) -> list[str]:
    with psycopg.connect(f"{PG}/{DB}") as conn:
        rows = conn.execute(
            "SELECT reference_number FROM conax_provisioningrequest WHERE reference_number IS NOT NULL "
            "ORDER BY md5(uid) LIMIT %s",
            [count],
        )
        return [row[0] for row in rows]


# --- CPU: the server's processes and the benchmark database's backends ---------------------------------------------


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # ended meanwhile
        return 0
    return int(fields[11]) + int(fields[12])


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        pids.append(todo.pop())
        with contextlib.suppress(OSError):
            todo += map(int, Path(f"/proc/{pids[-1]}/task/{pids[-1]}/children").read_text().split())
    return pids


def _backends() -> list[int]:
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [DB])
        return [row[0] for row in rows]


def cpu_ms(server_pid: int, fn: Callable[[], Run]) -> tuple[Run, float, float]:
    """The run, and the CPU ms per call of the server (master + workers) and of the database's backends."""
    hz = os.sysconf("SC_CLK_TCK")

    def sample() -> tuple[int, dict[int, int]]:
        return sum(map(_ticks, _tree(server_pid))), {pid: _ticks(pid) for pid in _backends()}

    (server0, pg0), run, (server1, pg1) = sample(), fn(), sample()
    postgres = sum(value - pg0.get(pid, 0) for pid, value in pg1.items())
    calls = max(1, len(run.latencies_ms))
    return run, (server1 - server0) / hz / calls * 1000, postgres / hz / calls * 1000


# --- load generation -----------------------------------------------------------------------------------------------

Call = Callable[[httpx.Client, random.Random], tuple[bool, str]]


def drive(base: str, count: int, clients: int, call: Call) -> Run:
    run, lock, numbers = Run(), threading.Lock(), itertools.count()

    def client(seed: int) -> None:
        rnd = random.Random(seed)
        with httpx.Client(base_url=base, timeout=60) as http:
            while next(numbers) < count:
                started = time.perf_counter()
                try:
                    ok, detail = call(http, rnd)
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


def baseline_call(http: httpx.Client, rnd: random.Random) -> tuple[bool, str]:
    response = http.get(f"/bench/drf-read/{rnd.randint(1, 1000)}")
    return response.status_code == 200 and response.json()["serial_number"].startswith("BOX-"), response.text


def list_call(token: str, params: Callable[[random.Random], dict], rows: int = 50) -> Call:
    def call(http: httpx.Client, rnd: random.Random) -> tuple[bool, str]:
        answer = http.get(REQUESTS + "list", params={"token": token, "number_of_results": 50, **params(rnd)}).json()
        ok = answer["status"]["code"] == "OK" and len(answer["data"]) == rows
        return ok, f"{answer['status']} with {len(answer['data'] or ())} rows"

    return call


def variants(token: str, refs: list[str]) -> dict[str, tuple[int, Call]]:
    def by_type(rnd: random.Random) -> dict:
        return {"type": rnd.choice(TYPES)}

    return {
        "list type": (8, list_call(token, by_type)),
        "list type offset<500": (8, list_call(token, lambda r: {**by_type(r), "offset": r.randrange(500)})),
        "list type fields_set": (8, list_call(token, lambda r: {**by_type(r), "fields_set": FIELDS})),
        "list life_cycle_state=REJECTED": (8, list_call(token, lambda r: {"life_cycle_state": "REJECTED"})),
        "list life_cycle_state=PENDING": (8, list_call(token, lambda r: {"life_cycle_state": "PENDING"})),
        "list reference_number": (8, list_call(token, lambda r: {"reference_number": r.choice(refs)}, rows=1)),
        "list type offset<50000": (8, list_call(token, lambda r: {**by_type(r), "offset": r.randrange(50_000)})),
        "list type, 1 client": (1, list_call(token, by_type)),
    }


# --- EXPLAIN of what the view really sends -------------------------------------------------------------------------

EXPLAIN_SCRIPT = """
import json, sys
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from conax.api.crm import provisioning_requests
params = json.loads(sys.argv[-1])
with CaptureQueriesContext(connection) as queries:
    provisioning_requests(RequestFactory().get("/", params), method="list")
plans = []
with connection.cursor() as cursor:
    for query in queries.captured_queries:
        if "conax_provisioningrequest" in query["sql"]:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
            plans.append("\\n".join(row[0] for row in cursor.fetchall()))
print(json.dumps(plans))
"""


def explain(env: dict[str, str], params: dict) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); exec({EXPLAIN_SCRIPT!r})", json.dumps(params)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- main ----------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="provisioning requests in the table")
    parser.add_argument("--cards", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8, help="client threads of the concurrent variants")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync worker processes")
    parser.add_argument("--queries", type=int, default=2000, help="calls per variant (a quarter for 1 client)")
    parser.add_argument("--server-side-binding", action="store_true", help="DATABASE_SERVER_SIDE_BINDING=true")
    parser.add_argument("--prepare-threshold", type=int, help="DATABASE_PREPARE_THRESHOLD (with the binding)")
    parser.add_argument("--only", default="", help="run only the variants whose label contains this")
    parser.add_argument("--keep", action="store_true", help="leave the database for a later --reuse")
    parser.add_argument("--reuse", action="store_true", help="take the database --keep left if it has --rows")
    args = parser.parse_args()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = server_env(DB, LOG_LEVEL="WARNING", **binding_env(args))
    server = None
    out: dict = {"load_s": 0.0}
    reused = args.reuse and loaded_rows() == args.rows
    if not reused:
        fresh_database(DB)
    try:
        if not reused:
            migrate(env)
            create_user(env)
            out["load_s"] = load(args.cards, args.rows)
        refs = reference_numbers(5000)
        server = start_server(port, args.workers, 1, env)
        login = {"username": USER, "password": PASSWORD, "organisation": "portal"}
        token = httpx.post(f"{base}{CRM}authentication/token", json=login, timeout=30).json()["data"]["token"]
        calls = variants(token, refs)
        drive(base, 400, args.clients, baseline_call)  # warm-up: the workers' connections, imports, caches
        drive(base, 400, args.clients, calls["list type"][1])
        out["runs"] = {
            "baseline (bare DRF one-row read)": cpu_ms(
                server.pid, lambda: drive(base, args.queries, args.clients, baseline_call)
            )
        }
        for label, (clients, call) in calls.items():
            if args.only not in label:
                continue
            count = args.queries if clients > 1 else max(200, args.queries // 4)
            n = args.clients if clients > 1 else 1
            out["runs"][label] = cpu_ms(server.pid, lambda c=call, k=count, n=n: drive(base, k, n, c))
        explained = {"type": "CANCEL_SUBSCRIPTIONS", "number_of_results": 50}
        out["explain"] = {
            "type, offset 0": explain(env, {**explained, "token": token}),
            "type, offset 450": explain(env, {**explained, "offset": 450, "token": token}),
            "life_cycle_state=REJECTED": explain(env, {"life_cycle_state": "REJECTED", "token": token}),
        }
    finally:
        if server is not None:
            stop_processes([server])
        if not args.keep:
            drop_database(DB)
    report(args, out)


def binding_env(args) -> dict[str, str]:
    env = {"DATABASE_SERVER_SIDE_BINDING": "true"} if args.server_side_binding else {}
    if args.prepare_threshold is not None:
        env["DATABASE_PREPARE_THRESHOLD"] = str(args.prepare_threshold)
    return env


def report(args, out: dict) -> None:
    loaded = f"loaded in {out['load_s']:.0f} s by bulk SQL" if out["load_s"] else "the database a --keep run left"
    print(
        f"data: {args.rows} provisioning requests (13 types, 1 in 40 REJECTED, 1 in 1000 PENDING; {loaded}); "
        f"gunicorn sync x{args.workers}; {args.clients} client threads (httpx keep-alive); {os.cpu_count()} shared "
        f"cores (load average {os.getloadavg()[0]:.1f}); database options: {binding_env(args) or 'defaults'}"
    )
    base_run = out["runs"]["baseline (bare DRF one-row read)"][0]
    failures = []
    for label, (run, server_ms, pg_ms) in out["runs"].items():
        print(
            f"{label:34} {run.rps:6.0f} req/s  p50 {run.pct(50):6.1f}  p95 {run.pct(95):6.1f}  p99 {run.pct(99):6.1f}"
            f" ms  p95/baseline {run.pct(95) / base_run.pct(95):5.2f}  CPU ms/call: server {server_ms:5.2f}, "
            f"postgres {pg_ms:5.2f}  ({len(run.latencies_ms)} calls, {run.errors} wrong)"
        )
        if run.errors:
            failures.append(f"{label}: {run.errors} wrong answers, first: {run.first_error}")
    if "list type" in out["runs"]:
        target = out["runs"]["list type"][0].pct(95)
        print(
            f"target: list by type, {args.clients} clients, p95 {target:.1f} ms < {TARGET_MS:.0f} ms: "
            f"{'PASS' if target < TARGET_MS else 'FAIL'}"
        )
    for label, plans in out["explain"].items():
        for n, plan in enumerate(plans, 1):
            print(f"EXPLAIN (ANALYZE, BUFFERS), list {label}, query {n} of {len(plans)}:")
            print(*(f"    {line}" for line in plan.splitlines()), sep="\n")
    if failures:
        raise SystemExit("FAILED: " + " | ".join(failures))


if __name__ == "__main__":
    main()
