#!/usr/bin/env python
"""The admin's list export (portal/kernel/adminexport.py) at fleet size: the inline path (sent in the request) against
the background-job path (a job row, then the worker's file), and against django-import-export's resource export, the
library issue 14 suggests.

    .venv/bin/python bench/export.py [--rows 100000] [--rounds 2] [--import-export /tmp/bench-iex]

Creates a throwaway PostgreSQL database with ``--rows`` devices (one vendor, one model, some enabled), then, each
case in a fresh process so that its peak memory is its own, ``--rounds`` times interleaved:

1. ``inline-csv``: the device list's CSV export, ``DeviceAdmin.export_view`` as the admin calls it, the stream read
   through to the end (the changelist, ``iterator(chunk_size=2000)``, values as the list shows them);
2. ``inline-xlsx``: the same list as XLSX (xlsxwriter constant-memory, a temporary file, then sent);
3. ``job-csv`` / ``job-xlsx``: the same export over ``ADMIN_EXPORT_INLINE_ROWS`` (set to 0 here): the view answers
   with the redirect to the job's page, then ``adminexport.export_run`` (the worker task's body, run here in the same
   process instead of a worker) writes the file into the exports storage;
4. ``iex-csv`` / ``iex-xlsx``: a django-import-export ``ModelResource`` of the same columns, ``export(queryset)``
   into a tablib Dataset, then its ``csv`` / ``xlsx`` (what import-export's admin ``ExportMixin`` does).

django-import-export is not a dependency of the portal: give ``--import-export`` a directory it is installed in
(``pip install --no-deps --target /tmp/bench-iex django-import-export tablib diff-match-patch``), or the iex cases are
skipped. Prints, per case, the median time to the first byte the browser gets (inline: the first chunk of the
file; job: the redirect to the job's page), the median time to the whole file, the peak resident memory above the
process's size before the export (VmRSS before, ru_maxrss after) and the bytes produced; then the ratios job /
inline and import-export / inline.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from common import PG, REPO, drop_database, fresh_database, migrate, server_env  # bench/common.py

DB = "portal_bench_export"
CASES = ("inline-csv", "inline-xlsx", "job-csv", "job-xlsx", "iex-csv", "iex-xlsx")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--import-export", default="", help="a directory holding django-import-export and tablib")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # one measurement, in a child process
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(args.case, args.import_export)))
        return
    scratch = tempfile.mkdtemp(prefix="bench-export-")  # the job cases' files
    path = os.pathsep.join(filter(None, [str(REPO), args.import_export]))
    env = server_env(DB, PYTHONPATH=path, ADMIN_EXPORT_ROOT=scratch)
    fresh_database(DB)
    try:
        migrate(env)
        seed(args.rows)
        cases = [c for c in CASES if args.import_export or not c.startswith("iex")]
        results: dict[str, list[dict]] = {case: [] for case in cases}
        for _ in range(args.rounds):
            for case in cases:
                results[case].append(run(case, args.import_export, env))
        report(results, args.rows)
    finally:
        drop_database(DB)
        shutil.rmtree(scratch, ignore_errors=True)


def seed(rows: int) -> None:
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        conn.execute("INSERT INTO devices_vendor (name, created_at, updated_at) VALUES ('acme', now(), now())")
        conn.execute(
            "INSERT INTO devices_devicemodel (vendor_id, name, description, created_at, updated_at) "
            "SELECT id, 'stb-4k', '', now(), now() FROM devices_vendor"
        )
        conn.execute(
            """
            INSERT INTO devices_device (model_id, serial_number, extra, state, enabled_at, activation_expires_at,
                                        configuration_version, created_at, updated_at)
            SELECT m.id, 'SN' || lpad(n::text, 9, '0'), 'lot ' || (n %% 50),
                   CASE WHEN n %% 3 = 0 THEN 'notactivated' ELSE 'notadded' END,
                   CASE WHEN n %% 3 = 0 THEN now() END, CASE WHEN n %% 3 = 0 THEN now() + interval '1 day' END,
                   0, now(), now()
              FROM devices_devicemodel m, generate_series(1, %s) n
            """,
            [rows],
        )
        conn.execute("ANALYZE")


def run(case: str, import_export: str, env: dict[str, str]) -> dict:
    command = [sys.executable, str(Path(__file__)), "--case", case, "--import-export", import_export]
    done = subprocess.run(command, cwd=REPO, env=env, check=False, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{case} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(case: str, import_export: str) -> dict:
    """One export in this (fresh) process: seconds to the first byte and to the whole file, the peak resident memory
    it added, the bytes it produced."""
    import django

    # This script's own directory holds bench/conax.py, bench/components.py…: the apps must win.
    sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p).resolve() != Path(__file__).resolve().parent]
    if import_export:
        sys.path.append(import_export)
    django.setup()
    export = {"inline": _inline, "job": _job, "iex": _import_export}[case.split("-")[0]](case)
    before = _rss_kib()
    started = time.perf_counter()
    first, size, rows = export()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "first_byte": first - started if first else seconds,
        "seconds": seconds,
        "peak_mib": max(peak - before, 0) / 1024,
        "bytes": size,
        "rows": rows,
    }


def _request():
    from django.contrib.auth import get_user_model
    from django.test import RequestFactory

    user, _ = get_user_model().objects.get_or_create(username="bench-export", is_staff=True, is_superuser=True)
    request = RequestFactory().get("/admin/devices/device/export/")
    request.user = user
    return request


def _device_admin():
    from django.contrib import admin

    from devices.models import Device

    return admin.site._registry[Device]


def _inline(case: str):
    from django.conf import settings

    settings.ADMIN_EXPORT_INLINE_ROWS = 10**9
    device_admin, request, fmt = _device_admin(), _request(), case.split("-")[1]

    def export() -> tuple[float | None, int, int]:
        response = device_admin.export_view(request, fmt)
        size, first = 0, None
        for chunk in response.streaming_content:
            first = first or time.perf_counter()
            size += len(chunk)
        return first, size, _exported_rows()

    return export


def _job(case: str):
    from django.conf import settings

    from portal.kernel import adminexport, tasks
    from portal.kernel.models import exports_storage

    settings.ADMIN_EXPORT_INLINE_ROWS = 0  # the files go to ADMIN_EXPORT_ROOT, a scratch directory main() removes
    queued: list[int] = []
    tasks.export_run.delay = queued.append  # the worker's part runs below, in this process, timed
    device_admin, request, fmt = _device_admin(), _request(), case.split("-")[1]

    def export() -> tuple[float | None, int, int]:
        response = device_admin.export_view(request, fmt)
        assert response.status_code == 302, response.status_code
        first = time.perf_counter()  # the browser has its answer: the job's page
        job = adminexport.export_run(job_id=queued[-1])
        size = exports_storage().size(job.file.name) if job and job.file else 0
        return first, size, job.done if job else 0

    return export


def _exported_rows() -> int:
    """The rows the export counted, from its audit entry."""
    from auditlog.models import LogEntry

    return LogEntry.objects.filter(action=LogEntry.Action.ACCESS).latest("pk").additional_data["rows"]


def _import_export(case: str):
    from import_export import fields, resources

    from devices.models import Device

    class DeviceResource(resources.ModelResource):
        # The device list's columns, as import-export reads them (raw values, no labels).
        model_name = fields.Field(attribute="model__name", column_name="Model")
        owner = fields.Field(attribute="owner__username", column_name="Owner")

        class Meta:
            model = Device
            fields = ("serial_number", "model_name", "state", "cik_first_used_at", "owner", "activation_expires_at")
            export_order = fields

    queryset = Device.objects.select_related("model__vendor", "owner").order_by("-pk")
    fmt = case.split("-")[1]

    def export() -> tuple[float | None, int, int]:
        dataset = DeviceResource().export(queryset=queryset)
        data = dataset.csv if fmt == "csv" else dataset.xlsx
        return None, len(data.encode() if isinstance(data, str) else data), len(dataset)

    return export


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def report(results: dict[str, list[dict]], rows: int) -> None:
    print(f"{rows} devices; median of {len(next(iter(results.values())))} runs, each in a fresh process")
    print(f"{'case':<12} {'1st byte s':>10} {'file s':>8} {'peak MiB':>9} {'MB out':>7} {'rows':>8}")
    medians = {}
    for case, runs in results.items():
        first = statistics.median(r["first_byte"] for r in runs)
        seconds = statistics.median(r["seconds"] for r in runs)
        peak = statistics.median(r["peak_mib"] for r in runs)
        medians[case] = (first, seconds, peak)
        print(f"{case:<12} {first:10.2f} {seconds:8.2f} {peak:9.1f} {runs[0]['bytes'] / 1e6:7.1f} {runs[0]['rows']:8d}")
    for fmt in ("csv", "xlsx"):
        (i_first, i_s, i_m), (j_first, j_s, _) = medians[f"inline-{fmt}"], medians[f"job-{fmt}"]
        print(
            f"{fmt}: job / inline = {j_first / max(i_first, 1e-6):.3f}x the time to the first byte, "
            f"{j_s / i_s:.2f}x the time to the whole file"
        )
        if f"iex-{fmt}" in medians:
            _, iex_s, iex_m = medians[f"iex-{fmt}"]
            ratio_memory = iex_m / max(i_m, 0.1)
            print(f"{fmt}: import-export / inline = {iex_s / i_s:.2f}x the time, {ratio_memory:.1f}x the peak memory")


if __name__ == "__main__":
    main()
