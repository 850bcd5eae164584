"""The command pipeline against the simulator: what each command stores, the retry policy, once-only sending."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning import services
from provisioning.models import Command, SetTopBox, TypeStatus
from provisioning.simulator import Faults, FleetThread
from tests.factories import DeviceFactory, StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet():
    # Runs last long enough that a box is still busy when a test calls it again, however slow the machine.
    with FleetThread(4, faults=Faults(provision_seconds=5)) as running:
        yield running


def register(sim_box) -> SetTopBox:
    host, port = sim_box.address.rsplit(":", 1)
    return services.box_register(device=DeviceFactory(), host=host, port=int(port))


def run(command: Command) -> Command:
    services.command_run(command_id=command.pk)
    command.refresh_from_db()
    return command


def make_due(command: Command) -> None:
    Command.objects.filter(pk=command.pk).update(next_attempt_at=timezone.now())


def version_box(fleet, version):
    return next(b for b in fleet.boxes if b.api_version == version)


def test_refresh_of_a_version_3_box_stores_every_field(fleet):
    sim = version_box(fleet, 3)
    box = register(sim)

    command = run(services.command_create(box=box, kind="refresh", requested_by=StaffFactory()))

    box.refresh_from_db()
    assert (command.state, command.attempts, command.last_error) == ("SUCCEEDED", 1, "")
    assert (box.api_version, box.soc_id, box.provision_id) == (3, sim.soc_id, sim.provision_id)
    assert box.refreshed_at is not None and box.platform_status is not None
    assert set(TypeStatus.objects.filter(box=box).values_list("provision_type", flat=True)) <= {
        "HARDWARE",
        "CRYPTANIUM",
    }
    assert TypeStatus.objects.filter(box=box).exists()


def test_refresh_of_a_version_1_box_asks_only_what_it_has(fleet):
    box = register(version_box(fleet, 1))

    command = run(services.command_create(box=box, kind="refresh"))

    box.refresh_from_db()
    assert command.state == "SUCCEEDED"
    assert (box.api_version, box.soc_id, box.netflix_esn) == (1, "", "")


def test_reprovision_succeeds_then_a_second_one_waits_for_the_busy_box(fleet):
    box = register(version_box(fleet, 2))

    first = run(services.command_create(box=box, kind="reprovision", params={"provision_type": "HARDWARE"}))
    queued = services.command_create(box=box, kind="reprovision", params={"provision_type": "HARDWARE"})
    before = timezone.now()
    second = run(queued)
    took = (timezone.now() - before).total_seconds()

    assert first.state == "SUCCEEDED"
    assert TypeStatus.objects.get(box=box, provision_type="HARDWARE").state == "IN_PROGRESS"
    assert (second.state, second.attempts) == ("QUEUED", 1)
    assert "ERROR_INPROGRESS" in second.last_error
    wait = (second.next_attempt_at - before).total_seconds()  # counted from inside the attempt
    assert services.BUSY_DELAY <= wait <= services.BUSY_DELAY + took


def test_unavailable_box_backs_off_then_fails_with_the_reason(fleet):
    sim = fleet.boxes[0]
    sim.faults.unavailable_share = 1.0
    command = services.command_create(box=register(sim), kind="provision")

    waits = []  # (delay chosen, how long the attempt took): the delay is counted from inside the attempt
    for _ in range(services.MAX_ATTEMPTS):
        before = timezone.now()
        command = run(command)
        if command.state == "QUEUED":
            waits.append(
                ((command.next_attempt_at - before).total_seconds(), (timezone.now() - before).total_seconds())
            )
            make_due(command)

    assert command.state == "FAILED" and command.attempts == services.MAX_ATTEMPTS
    assert "ERROR_UNAVAILABLE" in command.last_error and command.finished_at is not None
    assert len(waits) == services.MAX_ATTEMPTS - 1
    for n, (wait, took) in enumerate(waits):
        assert 0 <= wait <= min(services.BACKOFF_CAP, services.BACKOFF_BASE * 2**n) + took


def test_a_command_is_carried_out_once_however_often_it_is_dispatched(fleet):
    command = services.command_create(box=register(fleet.boxes[1]), kind="refresh")

    assert services.command_run(command_id=command.pk) == "SUCCEEDED"
    assert services.command_run(command_id=command.pk) is None
    command.refresh_from_db()
    assert (command.state, command.attempts) == ("SUCCEEDED", 1)


def test_a_refused_command_fails_at_once_with_the_boxs_message(fleet):
    only_hardware = fleet.boxes[0]  # box 0 supports HARDWARE only
    command = services.command_create(
        box=register(only_hardware), kind="reprovision", params={"provision_type": "CRYPTANIUM"}
    )

    command = run(command)

    assert (command.state, command.attempts) == ("FAILED", 1)
    assert command.last_error.startswith("reprovision: ") and "CRYPTANIUM" in command.last_error


def test_not_due_commands_wait(fleet):
    command = services.command_create(box=register(fleet.boxes[1]), kind="refresh")
    Command.objects.filter(pk=command.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=1))

    assert services.command_run(command_id=command.pk) is None


def test_unreachable_box_is_retried_with_backoff(settings):
    settings.THUNDER_TIMEOUT = 0.5
    with FleetThread(1) as gone:
        address = gone.boxes[0].address
    host, port = address.rsplit(":", 1)
    box = services.box_register(device=DeviceFactory(), host=host, port=int(port))

    command = run(services.command_create(box=box, kind="refresh"))

    assert command.state == "QUEUED" and "connection failed" in command.last_error


def test_sweep_sends_again_what_a_dead_worker_left(fleet):
    box = register(fleet.boxes[1])
    lost = services.command_create(box=box, kind="refresh")
    Command.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(minutes=3))
    waiting = services.command_create(box=box, kind="refresh")  # its message is still on its way: left alone
    stale = services.command_create(box=box, kind="provision")
    Command.objects.filter(pk=stale.pk).update(state="SENT", sent_at=timezone.now() - timedelta(minutes=10))
    fresh = services.command_create(box=box, kind="refresh")
    Command.objects.filter(pk=fresh.pk).update(state="SENT", sent_at=timezone.now())

    assert services.commands_sweep() == 2

    assert set(Command.objects.filter(state="QUEUED").values_list("pk", flat=True)) == {lost.pk, stale.pk, waiting.pk}
    assert Command.objects.get(pk=fresh.pk).state == "SENT"
    # What it sent again waits another grace period before the next sweep sends it again.
    assert services.commands_sweep() == 0
    Command.objects.filter(pk__in=[lost.pk, stale.pk]).update(next_attempt_at=timezone.now() - timedelta(minutes=3))
    assert services.commands_sweep() == 2
