"""Stranded CIKs: first use recorded once, the optional retry window, its audit trail."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from auditlog.models import LogEntry

from devices import services
from devices.choices import ActivationOutcome, ActivationState
from devices.exceptions import ActivationRefused, CikInvalid
from devices.models import ActivationAttempt, Device
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db
S = ActivationState
START = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
WINDOW = 300


def activate(device: Device) -> str:
    return services.device_activate(
        vendor=device.model.vendor.name,
        model=device.model.name,
        serial=device.serial_number,
        remote_addr="192.0.2.1",
        user_agent="exo-lib/2.1",
    )


def refused(device: Device) -> ActivationOutcome:
    with pytest.raises(ActivationRefused) as info:
        activate(device)
    return info.value.outcome


def outcomes(device: Device) -> list[str]:
    return list(ActivationAttempt.objects.filter(device=device).order_by("pk").values_list("outcome", flat=True))


def retry_audit(device: Device) -> list[tuple[str, str, dict]]:
    entries = LogEntry.objects.get_for_object(device).order_by("pk")
    return [
        (e.additional_data["action"], e.additional_data["reason"], e.changes_dict)
        for e in entries
        if (e.additional_data or {}).get("action", "").startswith("cik_reissue")
    ]


@pytest.fixture
def activated():
    """A device activated at START whose CIK has not been used yet, and that CIK."""
    with time_machine.travel(START, tick=False):
        device = services.device_enable(device=DeviceFactory())
        cik = activate(device)
    device.refresh_from_db()
    return device, cik


# --- first use -----------------------------------------------------------------------------------------------------


def test_a_fresh_cik_is_stranded_until_its_first_authenticated_call(activated):
    device, cik = activated

    assert (device.cik_stranded, device.cik_first_used_at) == (True, None)
    with time_machine.travel(START + timedelta(minutes=7), tick=False):
        assert device.cik_unused_for == timedelta(minutes=7)
        services.device_from_cik(cik=cik)
    device.refresh_from_db()
    assert device.cik_first_used_at == START + timedelta(minutes=7)
    assert (device.cik_stranded, device.cik_unused_for) == (False, None)


def test_only_the_first_authenticated_call_writes(activated, django_assert_num_queries):
    device, cik = activated

    with django_assert_num_queries(2):  # the look-up, and one conditional UPDATE
        first = services.device_from_cik(cik=cik)
    with time_machine.travel(START + timedelta(hours=1), tick=False), django_assert_num_queries(1):  # look-up only
        later = services.device_from_cik(cik=cik)

    assert first.cik_first_used_at == later.cik_first_used_at
    assert Device.objects.get(pk=device.pk).cik_first_used_at == first.cik_first_used_at


@pytest.mark.parametrize("service", [services.device_reenable, services.device_disable], ids=["reenable", "disable"])
def test_reenable_and_disable_forget_the_first_use_with_the_cik(activated, service):
    device, cik = activated
    services.device_from_cik(cik=cik)

    service(device=device)

    device.refresh_from_db()
    assert (device.cik_digest, device.cik_first_used_at) == (None, None)


def test_the_next_cik_after_reenable_is_stranded_again(activated):
    device, cik = activated
    services.device_from_cik(cik=cik)
    services.device_reenable(device=device)

    new_cik = activate(device)

    device.refresh_from_db()
    assert device.cik_digest == services.cik_digest(new_cik)
    assert (device.cik_stranded, device.cik_first_used_at) == (True, None)


def test_a_cik_replaced_between_look_up_and_first_use_does_not_authenticate(activated, settings):
    """The first-use UPDATE is conditional on the CIK: when a retry replaced it after the look-up, the call that
    looked it up is refused instead of being let in on a revoked key."""
    settings.ACTIVATION_RETRY_WINDOW = WINDOW
    device, old_cik = activated
    with time_machine.travel(START + timedelta(seconds=10), tick=False):
        new_cik = activate(device)

        with pytest.raises(CikInvalid):
            services._record_first_use(device.pk, services.cik_digest(old_cik))

    device.refresh_from_db()
    assert (device.cik_digest, device.cik_first_used_at) == (services.cik_digest(new_cik), None)


# --- the retry window ----------------------------------------------------------------------------------------------


def test_retry_window_is_off_by_default_and_a_stranded_retry_is_refused_and_audited(activated):
    device, cik = activated

    with time_machine.travel(START + timedelta(seconds=5), tick=False):
        assert refused(device) == ActivationOutcome.ALREADY_ACTIVATED

    device.refresh_from_db()
    assert device.cik_digest == services.cik_digest(cik)
    assert services.device_from_cik(cik=cik).pk == device.pk
    assert outcomes(device) == ["activated", "already_activated"]
    assert retry_audit(device) == [("cik_reissue_refused", "retry window off", {})]


def test_within_the_window_a_stranded_device_gets_a_fresh_cik_and_the_old_one_is_revoked(activated, settings):
    settings.ACTIVATION_RETRY_WINDOW = WINDOW
    device, old_cik = activated

    with time_machine.travel(START + timedelta(seconds=WINDOW - 1), tick=False):
        new_cik = activate(device)

    assert re.fullmatch(r"[0-9a-f]{40}", new_cik) and new_cik != old_cik
    device.refresh_from_db()
    assert device.state == S.ACTIVATED
    assert device.cik_digest == services.cik_digest(new_cik)
    assert device.activated_at == START  # the window counts from the first activation: it never slides
    assert device.cik_issued_at == START + timedelta(seconds=WINDOW - 1)
    with pytest.raises(CikInvalid):
        services.device_from_cik(cik=old_cik)
    assert services.device_from_cik(cik=new_cik).pk == device.pk
    assert outcomes(device) == ["activated", "reissued"]
    reason = f"CIK never used, within {WINDOW} s of activation"
    assert retry_audit(device) == [("cik_reissue", reason, {"cik_digest": ["********", "********"]})]


def test_the_window_counts_from_the_first_activation_across_several_retries(activated, settings):
    settings.ACTIVATION_RETRY_WINDOW = WINDOW
    device, _ = activated

    with time_machine.travel(START + timedelta(seconds=100), tick=False):
        activate(device)
    with time_machine.travel(START + timedelta(seconds=200), tick=False):
        last = activate(device)
    with time_machine.travel(START + timedelta(seconds=WINDOW), tick=False):
        assert refused(device) == ActivationOutcome.ALREADY_ACTIVATED

    assert Device.objects.get(pk=device.pk).cik_digest == services.cik_digest(last)
    assert outcomes(device) == ["activated", "reissued", "reissued", "already_activated"]
    assert [action for action, _, _ in retry_audit(device)] == ["cik_reissue", "cik_reissue", "cik_reissue_refused"]


def test_a_cik_younger_than_the_minimum_age_is_not_replaced(activated, settings):
    """Retries that arrive together get one key between them, not a chain of keys revoking each other."""
    settings.ACTIVATION_RETRY_WINDOW = WINDOW
    device, _ = activated
    with time_machine.travel(START + timedelta(seconds=10), tick=False):
        fresh = activate(device)

    with time_machine.travel(START + timedelta(seconds=11.9), tick=False):
        assert refused(device) == ActivationOutcome.ALREADY_ACTIVATED
    with time_machine.travel(START + timedelta(seconds=12), tick=False):
        newest = activate(device)

    assert newest != fresh
    assert Device.objects.get(pk=device.pk).cik_issued_at == START + timedelta(seconds=12)
    assert [reason for action, reason, _ in retry_audit(device) if action == "cik_reissue_refused"] == [
        "CIK handed out less than 2 s ago"
    ]


@pytest.mark.parametrize("late", [WINDOW, WINDOW + 1, 86400], ids=["at-the-end", "one-second-after", "a-day-after"])
def test_after_the_window_a_stranded_retry_is_refused_and_audited(activated, settings, late):
    settings.ACTIVATION_RETRY_WINDOW = WINDOW
    device, cik = activated

    with time_machine.travel(START + timedelta(seconds=late), tick=False):
        assert refused(device) == ActivationOutcome.ALREADY_ACTIVATED

    assert Device.objects.get(pk=device.pk).cik_digest == services.cik_digest(cik)
    assert outcomes(device) == ["activated", "already_activated"]
    assert retry_audit(device) == [("cik_reissue_refused", "retry window passed", {})]


def test_a_used_cik_never_reactivates(activated, settings):
    settings.ACTIVATION_RETRY_WINDOW = WINDOW
    device, cik = activated
    with time_machine.travel(START + timedelta(seconds=1), tick=False):
        services.device_from_cik(cik=cik)

    with time_machine.travel(START + timedelta(seconds=2), tick=False):
        assert refused(device) == ActivationOutcome.ALREADY_ACTIVATED

    device.refresh_from_db()
    assert device.cik_digest == services.cik_digest(cik)
    assert services.device_from_cik(cik=cik).pk == device.pk
    assert outcomes(device) == ["activated", "already_activated"]
    assert retry_audit(device) == []  # an ordinary second activation: the attempt log says it


@pytest.mark.parametrize("state", ["disabled", "expired", "notadded"])
def test_the_window_reopens_nothing_but_activated_devices(settings, state):
    settings.ACTIVATION_RETRY_WINDOW = WINDOW
    device = DeviceFactory(state=state)

    assert refused(device) != ActivationOutcome.ACTIVATED
    assert Device.objects.get(pk=device.pk).cik_digest is None
    assert retry_audit(device) == []


def test_negative_window_means_off(activated, settings):
    settings.ACTIVATION_RETRY_WINDOW = -5
    device, _ = activated

    with time_machine.travel(START + timedelta(seconds=1), tick=False):
        assert refused(device) == ActivationOutcome.ALREADY_ACTIVATED
    assert retry_audit(device) == [("cik_reissue_refused", "retry window off", {})]


# --- through the device dialects -----------------------------------------------------------------------------------


def http_activate(client, device: Device):
    body = f"vendor={device.model.vendor.name}&model={device.model.name}&sn={device.serial_number}"
    return client.generic("POST", "/provision/activate", body, content_type="application/x-www-form-urlencoded")


def push_event(client, cik: str):
    body = '{"jsonrpc": "2.0", "id": 1, "method": "client.events.1.provisioningchange", "params": {"status": 200}}'
    return client.generic("POST", "/jsonrpc", body, content_type="application/json", HTTP_X_EXOSITE_CIK=cik)


def test_a_device_call_with_its_cik_ends_stranded_as_staff_see_it(client, staff_api):
    device = services.device_enable(device=DeviceFactory())
    cik = http_activate(client, device).content.decode()
    stranded_before = staff_api.get("/api/v1/devices/?stranded=true").json()["results"]

    pushed = push_event(client, cik)

    assert [row["id"] for row in stranded_before] == [device.pk]
    assert pushed.status_code == 200
    row = staff_api.get(f"/api/v1/devices/{device.pk}/").json()
    assert (row["cik_stranded"], row["cik_unused_for"]) == (False, None)
    assert row["cik_first_used_at"] is not None
    assert staff_api.get("/api/v1/devices/?stranded=true").json()["results"] == []


def test_a_retry_over_http_gets_a_fresh_cik_and_the_old_one_is_refused_by_the_device_endpoint(client, settings):
    settings.ACTIVATION_RETRY_WINDOW = WINDOW
    device = services.device_enable(device=DeviceFactory())
    with time_machine.travel(START, tick=False):
        old = http_activate(client, device)
    with time_machine.travel(START + timedelta(seconds=30), tick=False):
        new = http_activate(client, device)
        old_push, new_push = push_event(client, old.content.decode()), push_event(client, new.content.decode())

    assert (old.status_code, new.status_code) == (200, 200)
    assert new["Content-Type"] == "text/plain; charset=utf-8" and len(new.content) == 40
    assert new.content != old.content
    assert (old_push.status_code, new_push.status_code) == (401, 200)
