"""Every staff change through the admin or an API lands in the audit trail, with secrets masked."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.urls import reverse

from devices.models import Device
from tests.factories import PASSWORD, DeviceFactory, UserFactory

pytestmark = pytest.mark.django_db


def entries_for(obj) -> list[LogEntry]:
    return list(LogEntry.objects.get_for_object(obj).order_by("pk"))


def test_staff_change_in_the_admin_is_recorded_with_actor_and_before_after(client, staff_user):
    device = DeviceFactory(extra="batch 7")
    client.force_login(staff_user)
    form = {"model": device.model_id, "serial_number": device.serial_number, "extra": "batch 8", "owner": ""}
    form |= {"attempts-TOTAL_FORMS": "0", "attempts-INITIAL_FORMS": "0"}

    response = client.post(reverse("admin:devices_device_change", args=[device.pk]), form)

    assert response.status_code == 302, response.content[:2000]
    [created, changed] = entries_for(device)
    assert created.action == LogEntry.Action.CREATE
    assert created.actor is None
    assert changed.action == LogEntry.Action.UPDATE
    assert changed.actor == staff_user
    assert changed.remote_addr == "127.0.0.1"
    assert changed.changes_dict == {"extra": ["batch 7", "batch 8"]}


def test_admin_delete_is_recorded(client, staff_user):
    device = DeviceFactory()
    client.force_login(staff_user)

    response = client.post(reverse("admin:devices_device_delete", args=[device.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert not Device.objects.filter(pk=device.pk).exists()
    deleted = LogEntry.objects.get(action=LogEntry.Action.DELETE, object_pk=str(device.pk))
    assert deleted.actor == staff_user


def test_password_change_is_recorded_but_masked(client):
    admin_user = UserFactory(username="root", is_staff=True, is_superuser=True)
    target = UserFactory(username="dave")
    old_hash = target.password
    client.force_login(admin_user)

    response = client.post(
        reverse("admin:auth_user_password_change", args=[target.pk]),
        {"password1": "N3w-passphrase-for-dave", "password2": "N3w-passphrase-for-dave", "usable_password": "true"},
    )

    assert response.status_code == 302
    target.refresh_from_db()
    assert target.password != old_hash
    changed = entries_for(target)[-1]
    assert changed.actor == admin_user
    assert changed.changes_dict["password"] == ["********", "********"]
    assert old_hash not in changed.changes and target.password not in changed.changes


def test_token_api_actions_are_recorded_with_the_token_user_as_actor(api_client, staff_user):
    url = reverse("api-v1:auth-token")
    token = api_client.post(url, {"username": "staff", "password": PASSWORD}, format="json").json()["token"]

    assert api_client.delete(url, HTTP_AUTHORIZATION=f"Token {token}").status_code == 204

    [issued, revoked] = LogEntry.objects.filter(content_type__model="apitoken").order_by("pk")
    assert issued.action == LogEntry.Action.CREATE
    assert issued.actor == staff_user
    assert issued.changes_dict["digest"] == ["********", "********"]
    assert revoked.actor == staff_user
    assert list(revoked.changes_dict) == ["revoked_at"]
    assert token not in issued.changes


def test_the_trail_is_visible_in_the_admin_to_support(client, staff_user):
    device = DeviceFactory(serial_number="AUDIT-0001")
    client.force_login(staff_user)

    response = client.get(reverse("admin:auditlog_logentry_changelist"))

    assert response.status_code == 200
    assert "AUDIT-0001" in response.content.decode()
    assert get_user_model().objects.get(pk=staff_user.pk).has_perm("auditlog.view_logentry")
    assert entries_for(device)
