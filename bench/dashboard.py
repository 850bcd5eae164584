#!/usr/bin/env python
"""The admin's fleet dashboard at fleet size, against the stock admin index on the same data, in the same run.

    .venv/bin/python bench/dashboard.py [--devices 100000] [--rounds 20]

Creates a throwaway PostgreSQL database with ``--devices`` devices (and, in proportion, set-top boxes, their
provision types, commands, Conax requests and activation attempts spread over three days: ``build_fleet``, which
tests/portal/test_fleet_scale.py uses too), logs a support-staff user in, and times, interleaved, ``--rounds`` reads
of: the stock admin index (the app list alone, for a staff user outside the support group with the group's
permissions: the baseline), the dashboard (``GET /admin/``)
and its live fragment (``GET /admin/fleet/panel/``), in this process through Django's test client. Prints p50/p99
and each one's queries, and the ratios of the p50s to the baseline's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DB = "portal_bench_dashboard"


def build_fleet(devices: int) -> None:
    """``devices`` devices over 20 models, in every state; a box for one in five, commands and requests for one in
    ten, an activation attempt for one in five; times spread over three days (so that the 24 h window cuts them)."""
    from django.db import connection

    from conax.models import ProvisioningRequest
    from devices.models import ActivationAttempt, Device, DeviceModel, Vendor
    from provisioning.models import Command, SetTopBox, TypeStatus

    vendors = Vendor.objects.bulk_create(Vendor(name=f"vendor-{v}") for v in range(5))
    models = DeviceModel.objects.bulk_create(
        DeviceModel(vendor=vendor, name=f"model-{m}") for vendor in vendors for m in range(4)
    )
    states = ["notadded", "notactivated", "notactivated", "activated", "activated", "activated", "activated"]
    states += ["activated", "expired", "disabled"]
    rows = (
        Device(model=models[i % len(models)], serial_number=f"SN{i:09d}", state=states[i % len(states)])
        for i in range(devices)
    )
    Device.objects.bulk_create(rows, batch_size=10_000)
    with connection.cursor() as cursor:
        # Windows open or lapsed, activation times and CIKs (some used, some stranded) set in SQL, not row by row.
        cursor.execute(
            "UPDATE devices_device SET activation_expires_at = now() + ((id % 5) - 1) * interval '1 day'"
            " WHERE state = 'notactivated'"
        )
        cursor.execute(
            "UPDATE devices_device SET activated_at = now() - (id % 72) * interval '1 hour',"
            " cik_digest = md5(id::text), cik_issued_at = now() - (id % 72) * interval '1 hour',"
            " cik_first_used_at = CASE WHEN id % 4 = 0 THEN NULL ELSE now() END WHERE state = 'activated'"
        )
    activated = list(Device.objects.filter(state="activated").values_list("pk", flat=True)[: devices // 5])
    SetTopBox.objects.bulk_create(
        (SetTopBox(device_id=pk, thunder_host=f"10.{pk % 250}.{pk % 200}.1") for pk in activated), batch_size=10_000
    )
    _spread("provisioning_settopbox", "last_event_at", "id % 7 <> 0")  # one in seven never heard from
    boxes = list(SetTopBox.objects.values_list("pk", flat=True))
    provision_states = ["PROVISIONED", "PROVISIONED", "PROVISIONED", "IN_PROGRESS", "NOT_PROVISIONED", "CORRUPTED"]
    TypeStatus.objects.bulk_create(
        (
            TypeStatus(box_id=pk, provision_type="HARDWARE", state=provision_states[pk % 6], refreshed_at=_now())
            for pk in boxes
        ),
        batch_size=10_000,
    )
    command_states = ["SUCCEEDED"] * 6 + ["FAILED", "QUEUED", "SENT", "FAILED"]
    Command.objects.bulk_create(
        (
            Command(box_id=boxes[i % len(boxes)], kind="refresh", state=command_states[i % 10], attempts=i % 3)
            for i in range(devices // 10)
        ),
        batch_size=10_000,
    )
    _spread("provisioning_command", "created_at")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE provisioning_command SET finished_at = created_at + interval '1 minute',"
            " last_error = CASE WHEN state = 'FAILED' THEN 'timeout' ELSE '' END"
            " WHERE state IN ('SUCCEEDED', 'FAILED')"
        )
    request_states = ["COMPLETED"] * 7 + ["REJECTED", "PENDING", "PENDING"]
    ProvisioningRequest.objects.bulk_create(
        (
            ProvisioningRequest(
                type="ADD_SUBSCRIPTIONS",
                life_cycle_state=request_states[i % 10],
                scheduled_date=_now(),
                executed_date=None if request_states[i % 10] == "PENDING" else _now(),
                attempts=i % 2,
            )
            for i in range(devices // 10)
        ),
        batch_size=10_000,
    )
    _spread("conax_provisioningrequest", "created_date", pk="number")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE conax_provisioningrequest SET executed_date = created_date + interval '1 minute',"
            " error_code = CASE WHEN life_cycle_state = 'REJECTED' THEN 'E_BENCH' END"
            " WHERE life_cycle_state <> 'PENDING'"
        )
    outcomes = ["activated"] * 6 + ["unknown_serial", "not_enabled", "already_activated", "bad_request"]
    ActivationAttempt.objects.bulk_create(
        (ActivationAttempt(serial_number=f"SN{i:09d}", outcome=outcomes[i % 10]) for i in range(devices // 5)),
        batch_size=10_000,
    )
    _spread("devices_activationattempt", "at")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _now():
    from django.utils import timezone

    return timezone.now()


def _spread(table: str, column: str, where: str = "true", pk: str = "id") -> None:
    """``column`` spread over the last three days, a few minutes apart per row (one UPDATE)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {column} = now() - ({pk} % 4320) * interval '1 minute' WHERE {where}"  # noqa: S608
        )


def _time(fn, rounds: int) -> tuple[list[float], int]:
    """``rounds`` timings of ``fn`` in ms, and the queries of the first call (counted as they execute)."""
    from django.db import connection

    executed = []

    def count(execute, sql, params, many, context):
        executed.append(sql)
        return execute(sql, params, many, context)

    times = []
    for n in range(rounds):
        started = time.perf_counter()
        if n == 0:
            with connection.execute_wrapper(count):
                fn()
        else:
            fn()
        times.append((time.perf_counter() - started) * 1000)
    return times, len(executed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    from common import PG, drop_database, fresh_database, percentile  # bench/common.py

    fresh_database(DB)
    os.environ.update(
        DATABASE_URL=f"{PG}/{DB}", DJANGO_SETTINGS_MODULE="portal.settings", PORTAL_VAR_DIR=tempfile.mkdtemp()
    )
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.test import Client

    settings.ALLOWED_HOSTS = ["testserver"]
    try:
        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        build_fleet(args.devices)
        print(f"built a fleet of {args.devices} devices in {time.perf_counter() - started:.1f} s")
        user = User.objects.create_user("bench-support", is_staff=True)
        user.groups.add(Group.objects.get(name="support"))
        client = Client()
        client.force_login(user)
        # The baseline: the stock index (the app list alone) through the same middleware, for a staff user with the
        # support group's permissions but outside the group (so not shown the dashboard).
        plain = User.objects.create_user("bench-plain-staff", is_staff=True)
        plain.user_permissions.set(Group.objects.get(name="support").permissions.all())
        plain_client = Client()
        plain_client.force_login(plain)

        def check(path: str, as_client: Client = client):
            def get() -> None:
                response = as_client.get(path)
                assert response.status_code == 200, (path, response.status_code)

            return get

        runs = {
            "stock admin index (baseline)": check("/admin/", plain_client),
            "dashboard GET /admin/": check("/admin/"),
            "dashboard GET /admin/?range=7d": check("/admin/?range=7d"),
            "live fragment GET /admin/fleet/panel/": check("/admin/fleet/panel/"),
        }
        results = {name: ([], 0) for name in runs}
        for _ in range(args.rounds):  # interleaved: the machine is shared and noisy
            for name, fn in runs.items():
                times, queries = _time(fn, 1)
                results[name] = (results[name][0] + times, queries)
        base = percentile(results["stock admin index (baseline)"][0], 50)
        print(f"{'':40} {'p50 ms':>8} {'p99 ms':>8} {'queries':>8} {'p50 / baseline':>15}")
        for name, (times, queries) in results.items():
            p50 = percentile(times, 50)
            print(f"{name:40} {p50:8.1f} {percentile(times, 99):8.1f} {queries:8d} {p50 / base:15.1f}")
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(DB)


if __name__ == "__main__":
    main()
