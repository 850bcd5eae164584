#!/usr/bin/env python
"""The Exosite fleet management API at factory size, against bare reads on the same server in the same run.

    .venv/bin/python bench/exosite_manage.py [--serials 100000] [--blob-mib 10] [--devices 100] [--rounds 2]

Creates a throwaway PostgreSQL database, a vendor with a token and a model, and starts the production HTTP server
(gunicorn, code preloaded, ``--workers`` x ``--threads`` gthread). Then:

1. **CSV add**: ``--serials`` serial numbers in one ``POST /provision/manage/model/<model>/`` (``text/csv``): time,
   serials/s; every one is counted in the database afterwards.
2. **Listing**: every serial, in pages of 1000 (``?offset=&limit=1000``): p50/p99 per page, against a bare one-row
   read (``/bench/read/<pk>``) on the same server, interleaved.
3. **Download**: a ``--blob-mib`` MiB blob uploaded once, then downloaded by ``--devices`` concurrent devices at once
   (``GET /provision/download`` with each device's own ``X-Exosite-CIK``), against the same file read as a static
   file (WhiteNoise, sendfile) by as many concurrent clients, ``--rounds`` interleaved rounds: wall time, MiB/s,
   p50/p99 per download, and the server's peak memory (PSS of the whole process tree) during each, which stays flat
   when the blob is streamed. Every body is checked (length and a digest). 4 x 16 server threads by default: each
   holds a PostgreSQL connection (100 would exhaust ``max_connections``), so some of the 100 clients wait for a
   thread, the same for both.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
from common import (  # bench/common.py: scripts run as `python bench/<name>.py`
    PG,
    REPO,
    MemorySampler,
    drop_database,
    free_port,
    fresh_database,
    migrate,
    percentile,
    server_env,
    stop_processes,
)

DB = "portal_bench_exosite"
MIB = 1024 * 1024


def host(path: str) -> str:
    """Devices and vendor tooling name Exosite's host (any Host is answered there); the rest names the portal's."""
    return "m2.exosite.com" if path.startswith("/provision/") else "127.0.0.1"


def request(port: int, method: str, path: str, headers: dict[str, str], body: bytes | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request(method, path, body, {"Host": host(path), "Accept-Encoding": "identity", **headers})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def seed(token: str, devices: int) -> list[str]:
    """A vendor, its token (digest only), a model, and ``devices`` activated devices with known CIKs."""
    ciks = [secrets.token_hex(20) for _ in range(devices)]
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        conn.execute("INSERT INTO devices_vendor (name, created_at, updated_at) VALUES ('bench', now(), now())")
        conn.execute(
            "INSERT INTO devices_devicemodel (vendor_id, name, description, clone_rid, clone_code, clone_options,"
            " created_at, updated_at) SELECT id, 'fw', '', '', '', '[]', now(), now() FROM devices_vendor"
        )
        conn.execute(
            "INSERT INTO devices_vendortoken (vendor_id, name, digest, created_at) SELECT id, 'bench', %s, now() "
            "FROM devices_vendor",
            [hashlib.sha256(token.encode()).hexdigest()],
        )
        for n, cik in enumerate(ciks):
            conn.execute(
                "INSERT INTO devices_device (model_id, serial_number, extra, state, cik_digest, activated_at,"
                " cik_issued_at, configuration_version, created_at, updated_at) SELECT id, %s, '', 'activated', %s,"
                " now(), now(), 0, now(), now() FROM devices_devicemodel WHERE name = 'fw'",
                [f"DEV-{n:04d}", hashlib.sha256(cik.encode()).hexdigest()],
            )
    return ciks


def csv_add(port: int, token: str, serials: int) -> float:
    body = "".join(f"SN-{n:08d},batch-1\n" for n in range(serials)).encode()
    started = time.perf_counter()
    status, data = request(
        port, "POST", "/provision/manage/model/fw/", {"X-Exosite-Token": token, "Content-Type": "text/csv"}, body
    )
    seconds = time.perf_counter() - started
    if status != 205:
        raise SystemExit(f"CSV add answered {status}: {data[:200]!r}")
    with psycopg.connect(f"{PG}/{DB}") as conn:
        count = conn.execute("SELECT count(*) FROM devices_device WHERE serial_number LIKE 'SN-%%'").fetchone()[0]
    if count != serials:
        raise SystemExit(f"CSV add wrote {count} of {serials}")
    rate, size = serials / seconds, len(body) / MIB
    print(f"CSV add: {serials} serials in {seconds:.2f} s = {rate:,.0f} serials/s ({size:.1f} MiB body)")
    bare = bare_insert(serials)
    print(
        f"  bare insert of as many device rows in SQL alone: {bare:.2f} s; "
        f"ratio {seconds / bare:.1f}x (the API parses, validates, writes and audits each one)"
    )
    return seconds


def bare_insert(serials: int) -> float:
    """The baseline of the CSV add: as many device rows (and as many audit rows, which the add also writes) inserted
    by PostgreSQL alone from ``generate_series``, in one transaction, into a second model; removed afterwards."""
    with psycopg.connect(f"{PG}/{DB}") as conn:
        conn.execute(
            "INSERT INTO devices_devicemodel (vendor_id, name, description, clone_rid, clone_code, clone_options,"
            " created_at, updated_at) SELECT id, 'bare', '', '', '', '[]', now(), now() FROM devices_vendor"
        )
        conn.commit()
        started = time.perf_counter()
        with conn.transaction():
            conn.execute(
                "INSERT INTO devices_device (model_id, serial_number, extra, state, configuration_version, created_at,"
                " updated_at) SELECT m.id, 'B-' || lpad(n::text, 8, '0'), 'batch-1', 'notadded', 0, now(), now()"
                " FROM devices_devicemodel m, generate_series(0, %s - 1) n WHERE m.name = 'bare'",
                [serials],
            )
            conn.execute(
                "INSERT INTO auditlog_logentry (content_type_id, object_pk, object_id, object_repr, action,"
                " changes_text, changes, timestamp, additional_data) SELECT 1, d.id::text, d.id, d.serial_number, 0,"
                " '', jsonb_build_object('serial_number', jsonb_build_array(NULL, d.serial_number)), now(),"
                ' \'{"action": "bench"}\' FROM devices_device d JOIN devices_devicemodel m ON m.id = d.model_id'
                " WHERE m.name = 'bare'"
            )
        seconds = time.perf_counter() - started
        conn.execute('DELETE FROM auditlog_logentry WHERE additional_data = \'{"action": "bench"}\'')
        conn.execute(
            "DELETE FROM devices_device WHERE model_id = (SELECT id FROM devices_devicemodel WHERE name = 'bare')"
        )
        conn.execute("DELETE FROM devices_devicemodel WHERE name = 'bare'")
    return seconds


def listing(port: int, token: str, total: int, baseline_pk: int) -> None:
    pages, reads = [], []
    for offset in range(0, total, 1000):
        started = time.perf_counter()
        status, data = request(
            port, "GET", f"/provision/manage/model/fw/?offset={offset}&limit=1000", {"X-Exosite-Token": token}
        )
        pages.append((time.perf_counter() - started) * 1000)
        lines = data.count(b"\n") + 1
        if status != 200 or lines != min(1000, total - offset):
            raise SystemExit(f"page at {offset}: {status}, {lines} lines")
        started = time.perf_counter()
        status, _ = request(port, "GET", f"/bench/read/{baseline_pk}", {})
        reads.append((time.perf_counter() - started) * 1000)
    p50, base = percentile(pages, 50), percentile(reads, 50)
    print(
        f"listing: {len(pages)} pages of 1000: p50 {p50:.1f} ms, p99 {percentile(pages, 99):.1f} ms; "
        f"one-row read p50 {base:.1f} ms; ratio {p50 / base:.1f}x"
    )


def concurrent(port: int, paths_headers: list[tuple[str, dict]], size: int, digest: str, server_pid: int) -> dict:
    sampler = MemorySampler(server_pid)
    sampler.start()
    latencies: list[float] = []
    errors: list[str] = []
    barrier = threading.Barrier(len(paths_headers))

    def one(path: str, headers: dict) -> None:
        barrier.wait()
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        conn.request("GET", path, headers={"Host": host(path), "Accept-Encoding": "identity", **headers})
        response = conn.getresponse()
        h, got = hashlib.sha256(), 0
        while chunk := response.read(256 * 1024):
            h.update(chunk)
            got += len(chunk)
        conn.close()
        latencies.append(time.perf_counter() - started)
        if response.status != 200 or got != size or h.hexdigest() != digest:
            errors.append(f"{response.status} {got}")

    threads = [threading.Thread(target=one, args=item) for item in paths_headers]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    peak = sampler.stop()
    if errors:
        raise SystemExit(f"{len(errors)} downloads failed: {errors[:3]}")
    return {"wall": wall, "p50": percentile(latencies, 50), "p99": percentile(latencies, 99), "peak_mib": peak / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serials", type=int, default=100_000)
    parser.add_argument("--blob-mib", type=int, default=10)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=16, help="per worker; each holds a database connection")
    args = parser.parse_args()

    token = secrets.token_hex(20)
    blob = os.urandom(args.blob_mib * MIB)
    digest = hashlib.sha256(blob).hexdigest()
    with tempfile.TemporaryDirectory(prefix="bench-exosite-") as tmp:
        static = Path(tmp) / "static"
        static.mkdir()
        (static / "blob.bin").write_bytes(blob)  # WhiteNoise serves STATIC_ROOT's files as found at start
        env = server_env(DB, STATIC_ROOT=str(static), EXOSITE_CONTENT_ROOT=str(Path(tmp) / "content"))
        env["EXOSITE_FORM_MAX_BYTES"] = str(64 * MIB)
        fresh_database(DB)
        proc = None
        try:
            migrate(env)
            ciks = seed(token, args.devices)
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "portal.wsgi:application", "--bind", f"127.0.0.1:{port}",
                 "--workers", str(args.workers), "--worker-class", "gthread", "--threads", str(args.threads),
                 "--backlog", "2048", "--preload"],
                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            wait_serving(port, proc)
            csv_add(port, token, args.serials)
            with psycopg.connect(f"{PG}/{DB}") as conn:
                pk = conn.execute("SELECT min(id) FROM devices_device").fetchone()[0]
            listing(port, token, args.serials + args.devices, pk)
            upload(port, token, blob)
            idle = MemorySampler(proc.pid)
            idle.start()
            time.sleep(1)
            print(f"server memory at rest: {idle.stop() / 1024:.0f} MiB PSS")
            exosite_calls = [
                ("/provision/download?vendor=bench&model=fw&id=fw.bin", {"X-Exosite-CIK": cik}) for cik in ciks
            ]
            static_calls = [("/static/blob.bin", {})] * args.devices
            for round_no in range(1, args.rounds + 1):
                base = concurrent(port, static_calls, len(blob), digest, proc.pid)
                exo = concurrent(port, exosite_calls, len(blob), digest, proc.pid)
                total = args.devices * len(blob) / MIB
                print(
                    f"round {round_no}: {args.devices} x {args.blob_mib} MiB — static {base['wall']:.2f} s "
                    f"({total / base['wall']:,.0f} MiB/s, p50 {base['p50']:.2f} s, p99 {base['p99']:.2f} s, peak "
                    f"{base['peak_mib']:.0f} MiB); download {exo['wall']:.2f} s ({total / exo['wall']:,.0f} MiB/s, "
                    f"p50 {exo['p50']:.2f} s, p99 {exo['p99']:.2f} s, peak {exo['peak_mib']:.0f} MiB); "
                    f"time ratio {exo['wall'] / base['wall']:.2f}x, "
                    f"memory ratio {exo['peak_mib'] / base['peak_mib']:.2f}x"
                )
        finally:
            if proc is not None:
                stop_processes([proc])
            drop_database(DB)


def upload(port: int, token: str, blob: bytes) -> None:
    headers = {"X-Exosite-Token": token, "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    status, data = request(port, "POST", "/provision/manage/content/fw/", headers, b"id=fw.bin&meta=firmware")
    if status != 205:
        raise SystemExit(f"content create answered {status}: {data!r}")
    started = time.perf_counter()
    headers = {"X-Exosite-Token": token, "Content-Type": "application/octet-stream"}
    status, data = request(port, "POST", "/provision/manage/content/fw/fw.bin", headers, blob)
    if status != 205:
        raise SystemExit(f"upload answered {status}: {data!r}")
    print(f"upload: {len(blob) / MIB:.0f} MiB in {time.perf_counter() - started:.2f} s")


def wait_serving(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("server exited")
        try:
            if request(port, "GET", "/healthz", {})[0] == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("server did not start")


if __name__ == "__main__":
    main()
