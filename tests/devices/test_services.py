"""The inventory's rules: enable, re-enable, disable, owners, expiry, import, activation, CIK look-up."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from auditlog.models import LogEntry

from devices import services
from devices.choices import ActivationOutcome, ActivationState
from devices.exceptions import ActivationRefused, CikInvalid, IllegalTransition, InvalidOwner
from devices.models import ActivationAttempt, Device
from tests.factories import CustomerFactory, DeviceFactory, DeviceModelFactory, StaffFactory

pytestmark = pytest.mark.django_db
S = ActivationState
START = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def activate(device: Device, **kwargs) -> str:
    return services.device_activate(
        vendor=device.model.vendor.name,
        model=device.model.name,
        serial=device.serial_number,
        remote_addr=kwargs.get("ip", "192.0.2.1"),
        user_agent=kwargs.get("ua", "test-agent"),
    )


def refused(device: Device, **kwargs) -> ActivationOutcome:
    with pytest.raises(ActivationRefused) as info:
        activate(device, **kwargs)
    return info.value.outcome


@pytest.fixture
def pending():
    return services.device_enable(device=DeviceFactory())


def test_new_serials_are_not_added_and_cannot_activate():
    device = DeviceFactory()

    assert device.state == S.NOT_ADDED
    assert refused(device) == ActivationOutcome.NOT_ENABLED


def test_enable_opens_the_configured_window(settings):
    settings.ACTIVATION_WINDOW = 3600
    with time_machine.travel(START, tick=False):
        device = services.device_enable(device=DeviceFactory())

    assert device.state == S.NOT_ACTIVATED
    assert device.enabled_at == START
    assert device.activation_expires_at == START + timedelta(hours=1)


def test_activation_hands_out_a_40_hex_cik_once_and_stores_only_its_digest(pending):
    cik = activate(pending)

    assert re.fullmatch(r"[0-9a-f]{40}", cik)
    pending.refresh_from_db()
    assert pending.state == S.ACTIVATED
    assert pending.cik_digest == services.cik_digest(cik) != cik
    assert refused(pending) == ActivationOutcome.ALREADY_ACTIVATED
    assert services.device_from_cik(cik=cik) == pending


def test_every_attempt_is_logged_with_address_agent_and_outcome(pending):
    activate(pending, ip="198.51.100.7", ua="exo-lib/2.1")
    refused(pending, ip="198.51.100.8", ua="exo-lib/2.1")

    log = list(
        ActivationAttempt.objects.filter(device=pending)
        .order_by("pk")
        .values_list("remote_addr", "user_agent", "outcome")
    )
    assert log == [("198.51.100.7", "exo-lib/2.1", "activated"), ("198.51.100.8", "exo-lib/2.1", "already_activated")]


def test_unknown_model_and_unknown_serial_are_told_apart(pending):
    model = pending.model

    with pytest.raises(ActivationRefused) as no_model:
        services.device_activate(vendor=model.vendor.name, model="nope", serial="x", remote_addr=None, user_agent="")
    with pytest.raises(ActivationRefused) as no_serial:
        services.device_activate(
            vendor=model.vendor.name, model=model.name, serial="nope", remote_addr=None, user_agent=""
        )

    assert no_model.value.outcome == ActivationOutcome.INVALID_MODEL
    assert no_serial.value.outcome == ActivationOutcome.UNKNOWN_SERIAL
    logged = ActivationAttempt.objects.filter(device=None).order_by("pk").values_list("serial_number", "outcome")
    assert list(logged) == [("x", "invalid_model"), ("nope", "unknown_serial")]


def test_serial_of_another_model_is_unknown(pending):
    other = DeviceModelFactory(vendor=pending.model.vendor)

    with pytest.raises(ActivationRefused) as info:
        services.device_activate(
            vendor=other.vendor.name, model=other.name, serial=pending.serial_number, remote_addr=None, user_agent=""
        )

    assert info.value.outcome == ActivationOutcome.UNKNOWN_SERIAL


def test_window_elapsed_is_expired_everywhere_before_and_after_the_sweep(settings):
    settings.ACTIVATION_WINDOW = 60
    with time_machine.travel(START, tick=False) as clock:
        device = services.device_enable(device=DeviceFactory())
        clock.shift(timedelta(seconds=60))

        assert device.current_state == S.EXPIRED
        assert Device.objects.with_effective_state().get(pk=device.pk).effective_state == S.EXPIRED
        assert list(Device.objects.in_effective_state(S.EXPIRED)) == [device]
        assert list(Device.objects.in_effective_state(S.NOT_ACTIVATED)) == []
        assert refused(device) == ActivationOutcome.EXPIRED

        assert services.devices_expire_windows() == 1
        device.refresh_from_db()
        assert device.state == S.EXPIRED
        assert refused(device) == ActivationOutcome.EXPIRED


def test_window_still_open_one_second_before_its_end(settings):
    settings.ACTIVATION_WINDOW = 60
    with time_machine.travel(START, tick=False) as clock:
        device = services.device_enable(device=DeviceFactory())
        clock.shift(timedelta(seconds=59))

        assert services.devices_expire_windows() == 0
        assert re.fullmatch(r"[0-9a-f]{40}", activate(device))


@pytest.mark.parametrize("how", ["activated", "expired", "disabled"])
def test_reenable_opens_a_new_window_and_the_old_cik_stops_working(pending, settings, how):
    old_cik = activate(pending) if how == "activated" else None
    if how == "expired":
        Device.objects.filter(pk=pending.pk).update(state=S.EXPIRED)
    if how == "disabled":
        services.device_disable(device=pending)

    device = services.device_reenable(device=pending)
    new_cik = activate(device)

    assert new_cik != old_cik
    assert services.device_from_cik(cik=new_cik).pk == device.pk
    if old_cik:
        with pytest.raises(CikInvalid):
            services.device_from_cik(cik=old_cik)


def test_reenable_between_activation_and_use_revokes_the_cik_at_once(pending):
    cik = activate(pending)

    services.device_reenable(device=pending)

    with pytest.raises(CikInvalid):
        services.device_from_cik(cik=cik)
    pending.refresh_from_db()
    assert pending.cik_digest is None and pending.state == S.NOT_ACTIVATED


def test_disable_revokes_the_cik_at_once_and_refuses_activation(pending):
    cik = activate(pending)

    services.device_disable(device=pending)

    with pytest.raises(CikInvalid):
        services.device_from_cik(cik=cik)
    assert refused(pending) == ActivationOutcome.DISABLED


@pytest.mark.parametrize(
    ("state", "service"),
    [
        pytest.param(S.NOT_ACTIVATED, services.device_enable, id="enable-pending"),
        pytest.param(S.ACTIVATED, services.device_enable, id="enable-activated"),
        pytest.param(S.NOT_ADDED, services.device_reenable, id="reenable-never-enabled"),
        pytest.param(S.NOT_ACTIVATED, services.device_reenable, id="reenable-pending-window-open"),
        pytest.param(S.DISABLED, services.device_disable, id="disable-disabled"),
        pytest.param(S.NOT_ADDED, services.device_disable, id="disable-never-enabled"),
    ],
)
def test_illegal_moves_are_refused_by_name_and_change_nothing(state, service):
    device = DeviceFactory(
        state=state, activation_expires_at=START.replace(year=2099) if state != S.NOT_ADDED else None
    )
    before = Device.objects.filter(pk=device.pk).values().get()

    with pytest.raises(IllegalTransition):
        service(device=device)

    assert Device.objects.filter(pk=device.pk).values().get() == before


def test_bulk_actions_change_the_eligible_and_report_the_rest():
    fresh, other = DeviceFactory(), DeviceFactory()
    enabled = services.device_enable(device=DeviceFactory())

    result = services.devices_enable(ids=[fresh.pk, enabled.pk, other.pk])

    assert sorted(result.changed) == sorted([fresh.pk, other.pk])
    assert result.skipped == [enabled.pk]


def test_state_changes_are_audited_with_before_and_after(pending):
    services.device_disable(device=pending)

    entry = LogEntry.objects.get_for_object(pending).filter(action=LogEntry.Action.UPDATE).latest("pk")
    assert entry.changes_dict["state"] == ["notactivated", "disabled"]
    assert entry.additional_data == {"action": "disable"}


def test_owner_must_be_an_active_customer():
    device = DeviceFactory()
    customer = CustomerFactory()

    assert services.device_assign_owner(device=device, owner=customer).owner == customer
    with pytest.raises(InvalidOwner):
        services.device_assign_owner(device=device, owner=StaffFactory())
    assert services.device_assign_owner(device=device, owner=None).owner is None


@pytest.mark.parametrize("cik", ["", "0" * 40, "0" * 39, "Z" * 40, "\x00" * 40])
def test_unknown_or_malformed_ciks_are_invalid(pending, cik):
    activate(pending)

    with pytest.raises(CikInvalid):
        services.device_from_cik(cik=cik)


def test_import_creates_new_counts_existing_and_reports_invalid_lines():
    model = DeviceModelFactory()
    DeviceFactory(model=model, serial_number="A-1")
    rows = [(1, "A-1", ""), (2, "A-2", "lot 5"), (3, "A-2", ""), (4, "", ""), (5, "x" * 200, ""), (6, "A-3", "")]

    result = services.devices_import(model=model, rows=rows)

    assert (result.created, result.existing, result.duplicates) == (2, 1, [(3, "A-2", 2)])
    assert [(line, reason) for line, _, reason in result.invalid] == [
        (4, "empty serial number"),
        (5, "longer than 128 characters"),
    ]
    assert Device.objects.get(model=model, serial_number="A-2").extra == "lot 5"
    again = services.devices_import(model=model, rows=rows)
    assert (again.created, again.existing, len(again.duplicates)) == (0, 3, 1)


def test_import_dry_run_writes_nothing_and_import_can_enable():
    model = DeviceModelFactory()
    rows = [(n, f"S{n}", "") for n in range(1, 2501)]

    preview = services.devices_import(model=model, rows=rows, dry_run=True)
    assert (preview.created, Device.objects.filter(model=model).count()) == (2500, 0)

    result = services.devices_import(model=model, rows=rows, enable=True)
    assert (result.created, result.enabled) == (2500, 2500)
    assert Device.objects.filter(model=model, state=S.NOT_ACTIVATED).count() == 2500
