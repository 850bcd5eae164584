#!/usr/bin/env python
"""Where the CPU of one CRM.COM creation goes, in process: Django's test Client against PostgreSQL and the Redis
broker (no worker consumes; the queues are purged at the end), no HTTP server.

    .venv/bin/python bench/crm_create_profile.py [--requests 1000] [--immediately 1] [--top 30]

Creates a throwaway database (``BENCH_DB``, default ``portal_bench_crm_profile``), one subscription with one
service and 1000 smartcards, a support-staff user, then: the SQL one ``add_subscriptions`` sends (and its count),
CPU per call (``time.process_time``, no profiler) of the bare DRF create (bench/urls.py) and of the creation, and a
cProfile (CPU time) of ``--requests`` creations (cumulative and own time, the ``--top`` first).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
import uuid

from common import PG, REDIS, REPO, drop_database, fresh_database  # bench/common.py

DB = os.environ.get("BENCH_DB", "portal_bench_crm_profile")
sys.path[0] = str(REPO)  # `import conax` must find the app, not bench/conax.py
os.environ.update(
    DJANGO_SETTINGS_MODULE="bench.settings",
    DATABASE_URL=f"{PG}/{DB}",
    CELERY_BROKER_URL=REDIS,
    ALLOWED_HOSTS="testserver",
    LOG_LEVEL="WARNING",
)
CRM = "/crmapi/rest/v2/"
METHOD = CRM + "conax_web_services/provisioning_requests/add_subscriptions"


def setup(cards: int) -> tuple[object, list[str]]:
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    from conax.models import Service, Smartcard, Subscription, Unit

    call_command("migrate", verbosity=0)
    Unit.objects.create(name="Bench Unit", alternative_code="BU")
    service = Service.objects.create(code="BENCH", name="Bench service", service_ca_id="P-BENCH")
    subscription = Subscription.objects.create(number="S-BENCH")
    subscription.services.add(service)
    Smartcard.objects.bulk_create(
        Smartcard(serial_number=f"SC-{n:07}", ca_id=f"CA-{n:07}", subscription=subscription) for n in range(cards)
    )
    user = User.objects.create_user("bench-crm", password="bench-crm-password-2026", is_staff=True)  # noqa: S106
    user.groups.add(Group.objects.get(name="support"))
    return (subscription.pk, service.pk), list(Smartcard.objects.order_by("serial_number").values_list("pk", flat=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--immediately", type=int, default=1, choices=[0, 1], help="process_immediately")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--save", help="also write the profile to this file (pstats)")
    args = parser.parse_args()
    fresh_database(DB)
    try:
        run(args)
    finally:
        from django.db import connections

        connections.close_all()
        purge()
        drop_database(DB)


def run(args: argparse.Namespace) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    (subscription, service), cards = setup(1000)
    client = Client()
    login = {"username": "bench-crm", "password": "bench-crm-password-2026", "organisation": "portal"}
    token = client.post(CRM + "authentication/token", login, content_type="application/json").json()["data"]["token"]

    def create(n: int) -> None:
        body = {
            "token": token,
            "subscription_identifier": {"id": subscription},
            "service_identifier": {"id": service},
            "smartcard_identifier": {"id": cards[n % len(cards)]},
            "process_immediately": args.immediately,
            **({"priority": "EXPRESS"} if n % 10 == 0 else {}),
        }
        answer = client.post(METHOD, body, content_type="application/json").json()
        assert answer["status"]["code"] == "OK", answer["status"]

    def baseline(n: int) -> None:
        answer = client.post("/bench/drf-create", {"name": uuid.uuid4().hex}, content_type="application/json")
        assert answer.status_code == 201, answer.content

    for n in range(200):  # warm-up: imports, caches, the broker connection
        create(n)
        baseline(n)
    with CaptureQueriesContext(connection) as queries:
        create(1)
    print(f"one add_subscriptions (process_immediately={args.immediately}): {len(queries)} statements")
    for query in queries.captured_queries:
        print(f"    {query['sql'][:160]}")
    for label, call in (("bare DRF create", baseline), ("add_subscriptions", create)):
        started = time.process_time()
        for n in range(args.requests):
            call(n)
        print(f"{label}: {(time.process_time() - started) / args.requests * 1000:.2f} ms CPU per call (in process)")
    profile = cProfile.Profile(time.process_time)  # CPU, not the waits on a loaded machine
    profile.enable()
    for n in range(args.requests):
        create(n)
    profile.disable()
    if args.save:
        profile.dump_stats(args.save)
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(order).print_stats(args.top)
        print(out.getvalue())


def purge() -> None:
    from celery import Celery

    with Celery(broker=REDIS).connection_for_write() as conn:
        for queue in ("express", "regular"):
            conn.default_channel.queue_purge(queue)


if __name__ == "__main__":
    main()
