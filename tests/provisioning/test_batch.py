"""Commands in batches: one message carries many ids; they are claimed at once, their boxes called concurrently and
their outcomes recorded in one transaction, each with the guarantees a single command has."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from celery.signals import before_task_publish
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from provisioning import services
from provisioning.models import Command, SetTopBox, TypeStatus
from provisioning.simulator import Faults, FleetThread
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db

HARDWARE = {"provision_type": "HARDWARE"}


@pytest.fixture(scope="module")
def fleet():
    with FleetThread(40, faults=Faults(provision_seconds=30)) as running:
        yield running


@pytest.fixture
def published():
    """What the portal hands the broker: (task name, args, eta) of every message sent during the test."""
    sent: list[tuple[str, list, datetime | None]] = []

    def keep(sender=None, body=None, headers=None, **_):
        eta = headers.get("eta")
        sent.append((sender, body[0], datetime.fromisoformat(eta) if eta else None))

    before_task_publish.connect(keep, weak=False)
    yield sent
    before_task_publish.disconnect(keep)


def register(sim_box) -> SetTopBox:
    host, port = sim_box.address.rsplit(":", 1)
    return services.box_register(device=DeviceFactory(), host=host, port=int(port))


def queries_for(boxes: list[SetTopBox], kind: str, params: dict | None = None) -> int:
    ids = [c.pk for c in services.commands_create(boxes=boxes, kind=kind, params=params)]
    with CaptureQueriesContext(connection) as captured:
        states = services.commands_run(ids=ids)
    assert set(states.values()) == {"SUCCEEDED"}, states
    return len(captured)


def test_a_batch_takes_the_same_number_of_queries_whatever_its_size(fleet):
    sims = fleet.boxes[8:]  # boxes no other test reprovisions (a box running a provision answers IN_PROGRESS)
    boxes = [register(sim) for sim in sims]

    queries_for(boxes[:2], "refresh")  # the first batch also reads the webhook endpoints (kept for a while)
    assert queries_for(boxes[2:7], "refresh") == queries_for(boxes[7:], "refresh") <= 12
    assert SetTopBox.objects.filter(refreshed_at__isnull=False).count() == len(boxes)
    # Each box's every provision type stored, once: the upsert wrote one row per (box, type).
    assert TypeStatus.objects.filter(box__in=boxes).count() == sum(len(sim.provision_types) for sim in sims)


def test_one_batch_records_each_commands_own_outcome(fleet, published, settings):
    settings.THUNDER_TIMEOUT = 0.5
    ok, refuses, unavailable = fleet.boxes[2], fleet.boxes[0], fleet.boxes[3]
    unavailable.faults.unavailable_share = 1.0
    with FleetThread(1) as gone:  # a box that no longer listens
        host, port = gone.boxes[0].address.rsplit(":", 1)
    unreachable = services.box_register(device=DeviceFactory(), host=host, port=int(port))
    try:
        commands = {
            "ok": services.command_create(box=register(ok), kind="reprovision", params=HARDWARE),
            "refused": services.command_create(
                box=register(refuses), kind="reprovision", params={"provision_type": "CRYPTANIUM"}
            ),
            "unavailable": services.command_create(box=register(unavailable), kind="provision"),
            "unreachable": services.command_create(box=unreachable, kind="refresh"),
        }
        before = timezone.now()

        states = services.commands_run(ids=[c.pk for c in commands.values()])
    finally:
        unavailable.faults.unavailable_share = 0.0

    rows = {name: Command.objects.get(pk=c.pk) for name, c in commands.items()}
    assert states == {c.pk: c.state for c in rows.values()}
    assert {name: c.state for name, c in rows.items()} == {
        "ok": "SUCCEEDED",
        "refused": "FAILED",
        "unavailable": "QUEUED",
        "unreachable": "QUEUED",
    }
    assert rows["ok"].result["types"]["HARDWARE"] == "IN_PROGRESS" and rows["ok"].last_error == ""
    assert "CRYPTANIUM" in rows["refused"].last_error and rows["refused"].finished_at is not None
    assert "ERROR_UNAVAILABLE" in rows["unavailable"].last_error
    assert "connection failed" in rows["unreachable"].last_error
    assert all(c.attempts == 1 for c in rows.values())
    # The two to be tried again went back to the broker, each in a message due no earlier than its next attempt.
    retried = {pk: eta for task, args, eta in published if task == services.TASK for pk in args[0]}
    assert set(retried) == {rows["unavailable"].pk, rows["unreachable"].pk}
    for name in ("unavailable", "unreachable"):
        command = rows[name]
        assert command.next_attempt_at > before and command.finished_at is None
        assert retried[command.pk] is not None and retried[command.pk] >= command.next_attempt_at


def test_two_reprovisions_of_one_box_in_one_batch_one_runs_and_the_other_waits(fleet):
    box = register(fleet.boxes[4])
    first, second = services.commands_create(boxes=[box, box], kind="reprovision", params=HARDWARE)

    states = services.commands_run(ids=[first.pk, second.pk])

    assert sorted(states.values()) == ["QUEUED", "SUCCEEDED"]
    waiting = Command.objects.get(pk=next(pk for pk, state in states.items() if state == "QUEUED"))
    assert "ERROR_INPROGRESS" in waiting.last_error
    assert waiting.next_attempt_at >= timezone.now() + timedelta(seconds=services.BUSY_DELAY - 5)


def test_an_outcome_is_written_only_where_the_claim_still_holds(fleet):
    kept, lost = (
        services.command_create(box=register(sim), kind="reprovision", params=HARDWARE) for sim in fleet.boxes[5:7]
    )
    claimed = services._claim([kept.pk, lost.pk])
    calls = [services._call(command) for command in claimed]
    # Meanwhile the sweep re-queued ``lost`` and another worker claimed it: its claim token moved on.
    Command.objects.filter(pk=lost.pk).update(attempts=F("attempts") + 1)

    assert services._record(calls) == {kept.pk: "SUCCEEDED"}

    kept.refresh_from_db()
    lost.refresh_from_db()
    assert (kept.state, kept.attempts) == ("SUCCEEDED", 1)
    assert (lost.state, lost.attempts, lost.result, lost.finished_at) == ("SENT", 2, None, None)


def test_a_batch_claims_only_what_is_due_and_fails_what_spent_its_attempts(fleet):
    box = register(fleet.boxes[7])
    due, later, done, spent = services.commands_create(boxes=[box] * 4, kind="refresh")
    Command.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=1))
    Command.objects.filter(pk=done.pk).update(state="SUCCEEDED", finished_at=timezone.now())
    Command.objects.filter(pk=spent.pk).update(attempts=services.MAX_ATTEMPTS)

    states = services.commands_run(ids=[due.pk, later.pk, done.pk, spent.pk, 10**9])

    assert states == {due.pk: "SUCCEEDED"}
    assert Command.objects.get(pk=later.pk).state == "QUEUED"
    spent.refresh_from_db()
    assert spent.state == "FAILED" and "workers died" in spent.last_error


def test_a_message_carries_at_most_command_batch_size_ids(published, settings):
    settings.COMMAND_BATCH_SIZE = 3
    box = services.box_register(device=DeviceFactory(), host="192.0.2.1")
    ids = [c.pk for c in Command.objects.bulk_create([Command(box=box, kind="refresh") for _ in range(7)])]

    services._dispatch(ids)

    assert [args[0] for task, args, _ in published if task == services.TASK] == [ids[:3], ids[3:6], ids[6:]]
