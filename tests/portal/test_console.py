"""The operator console's conventions (portal/kernel/console.py, portal/kernel/jobs.py): every admin write goes
through a service, state changes are buttons on the object's page (destructive ones confirmed first), bulk actions
report per object and run in the background when large, read-only records show no Save button."""

from __future__ import annotations

import re

import pytest
from auditlog.models import LogEntry
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from conax.models import ProvisioningRequest, Service
from devices import services as device_services
from devices.models import Device
from portal.kernel import jobs
from portal.kernel.console import ConsoleAdmin
from portal.kernel.models import ApiToken, BulkJob
from provisioning.models import Command, SetTopBox
from tests.conax.factories import ProvisioningRequestFactory
from tests.conax.support import world_load
from tests.factories import DeviceFactory, DeviceModelFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db
OUR_APPS = {"devices", "provisioning", "conax", "components", "portal"}


def _admins():
    return [
        (model, model_admin) for model, model_admin in admin.site._registry.items() if model._meta.app_label in OUR_APPS
    ]


@pytest.fixture
def superuser():
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def _post_form(client, url: str, data: dict):
    """Post an admin form as a browser would: with the inlines' management forms the page carries."""
    html = client.get(url).content.decode()
    management = dict(re.findall(r'name="([\w-]+-(?:TOTAL|INITIAL|MIN_NUM|MAX_NUM)_FORMS)"[^>]*value="(\d+)"', html))
    return client.post(url, {**management, **data})


# --- every write through a service ----------------------------------------------------------------------------


def test_every_admin_of_the_portal_is_a_console_admin():
    names = [type(model_admin).__name__ for _, model_admin in _admins() if not isinstance(model_admin, ConsoleAdmin)]
    assert names == []
    assert len(_admins()) >= 20


def test_no_admin_can_add_change_or_delete_without_a_service(superuser):
    request = RequestFactory().get("/admin/")
    request.user = superuser
    for _model, model_admin in _admins():
        name = type(model_admin).__name__
        if model_admin.has_add_permission(request):
            assert model_admin.saves_through_service(), f"{name} adds without a service"
        if model_admin.has_delete_permission(request):
            assert model_admin.deletes_through_service(), f"{name} deletes without a service"
        if not model_admin.saves_through_service():
            # No service: nothing on its page is editable (and a post is refused).
            editable = set(model_admin.get_fields(request)) - set(model_admin.get_readonly_fields(request))
            assert editable == set(), f"{name} has editable fields {editable} but no service"
        for inline in model_admin.get_inline_instances(request):
            assert not inline.has_add_permission(request, None) and not inline.has_delete_permission(request)
            assert set(inline.get_fields(request)) <= set(inline.get_readonly_fields(request)), type(inline).__name__


def test_creating_a_device_in_the_admin_is_device_create(staff_client, monkeypatch):
    model = DeviceModelFactory()
    seen = []
    real = device_services.device_create
    monkeypatch.setattr(device_services, "device_create", lambda **kw: seen.append(kw) or real(**kw))

    response = _post_form(
        staff_client,
        reverse("admin:devices_device_add"),
        {"model": model.pk, "serial_number": "ADM-1", "extra": "", "owner": ""},
    )

    assert response.status_code == 302
    assert [call["serial_number"] for call in seen] == ["ADM-1"]
    device = Device.objects.get(serial_number="ADM-1")
    assert LogEntry.objects.get_for_object(device).filter(action=LogEntry.Action.CREATE).count() == 1


def test_a_refused_save_is_a_message_and_writes_nothing(staff_client):
    world = world_load()
    ProvisioningRequestFactory(type="ADD_SUBSCRIPTIONS", service=world.service, smartcard=world.card)
    url = reverse("admin:conax_service_delete", args=[world.service.pk])

    response = staff_client.post(url, {"post": "yes"}, follow=True)

    assert response.status_code == 200
    assert any("pending request(s) refer to" in m for m in _messages(response))
    assert Service.objects.filter(pk=world.service.pk).exists()


def test_a_duplicate_head_end_id_is_refused_with_the_field_named(staff_client):
    world = world_load()
    response = staff_client.post(
        reverse("admin:conax_smartcard_add"),
        {"serial_number": "NEW-1", "ca_id": world.card.ca_id, "alternative_code": "", "subscription": ""},
    )
    assert response.status_code == 200  # the form again, with the error on the field
    assert "Smartcard with this CA id already exists" in response.content.decode()


def test_changing_a_device_keeps_its_identity(staff_client):
    device = DeviceFactory(serial_number="KEEP-1")
    url = reverse("admin:devices_device_change", args=[device.pk])

    html = staff_client.get(url).content.decode()
    _post_form(staff_client, url, {"serial_number": "CHANGED", "extra": "new extra", "owner": ""})

    assert 'name="serial_number"' not in html
    device.refresh_from_db()
    assert (device.serial_number, device.extra) == ("KEEP-1", "new extra")


def test_read_only_records_show_no_save_button_and_refuse_a_post(staff_client):
    world = world_load()
    request = ProvisioningRequestFactory(type="ADD_SUBSCRIPTIONS", service=world.service, smartcard=world.card)
    url = reverse("admin:conax_provisioningrequest_change", args=[request.pk])

    html = staff_client.get(url).content.decode()
    response = _post_form(staff_client, url, {"life_cycle_state": "COMPLETED"})

    assert 'name="_save"' not in html and 'name="_continue"' not in html
    assert response.status_code == 403
    request.refresh_from_db()
    assert request.life_cycle_state == "PENDING"


# --- buttons on the object's page -------------------------------------------------------------------------------


def test_disable_asks_first_and_says_what_happens(staff_client):
    device = device_services.device_enable(device=DeviceFactory(serial_number="DIS-1"))
    page = reverse("admin:devices_device_change", args=[device.pk])
    act = reverse("admin:devices_device_act", args=[device.pk, "disable"])

    html = staff_client.get(page).content.decode()
    assert f'href="{act}"' in html and "Enable</button>" not in html  # a pending device can be disabled, not enabled

    confirm = staff_client.get(act).content.decode()
    assert "revokes the device" in confirm and 'name="confirmed"' in confirm
    device.refresh_from_db()
    assert device.state == "notactivated"  # asking changed nothing

    response = staff_client.post(act, {"confirmed": "1"}, follow=True)
    device.refresh_from_db()
    assert device.state == "disabled"
    assert _messages(response) == ["Disabled DIS-1. Its key no longer works."]
    entry = LogEntry.objects.get_for_object(device).latest("timestamp")
    assert entry.additional_data == {"action": "disable"}


def test_a_post_without_the_confirmation_changes_nothing(staff_client):
    device = device_services.device_enable(device=DeviceFactory())
    staff_client.post(reverse("admin:devices_device_act", args=[device.pk, "disable"]))
    device.refresh_from_db()
    assert device.state == "notactivated"


def test_a_button_that_no_longer_applies_says_so(staff_client):
    device = DeviceFactory(serial_number="STALE-1", state="disabled")
    response = staff_client.post(
        reverse("admin:devices_device_act", args=[device.pk, "disable"]), {"confirmed": "1"}, follow=True
    )
    assert _messages(response) == ["“Disable” does not apply to STALE-1 now."]


def test_reprovision_asks_for_the_type_and_refuses_a_second_one(staff_client):
    box = SetTopBox.objects.create(device=DeviceFactory(serial_number="BOX-1"), thunder_host="10.0.0.9")
    act = reverse("admin:provisioning_settopbox_act", args=[box.pk, "reprovision"])

    assert 'value="CRYPTANIUM"' in staff_client.get(act).content.decode()
    bad = staff_client.post(act, {"confirmed": "1", "provision_type": "NOPE"})
    assert bad.status_code == 200 and Command.objects.count() == 0  # the form again
    first = staff_client.post(act, {"confirmed": "1", "provision_type": "CRYPTANIUM"}, follow=True)
    second = staff_client.post(act, {"confirmed": "1", "provision_type": "CRYPTANIUM"}, follow=True)

    command = Command.objects.get()
    assert command.params == {"provision_type": "CRYPTANIUM"}
    assert _messages(first) == ["Queued: Reprovision CRYPTANIUM requested by staff: Queued."]
    assert _messages(second) == [f"{box}: not queued: the same command is already waiting for this box"]


def test_the_request_page_offers_what_applies_in_its_live_panel(staff_client):
    world = world_load()
    pending = ProvisioningRequestFactory(type="ADD_SUBSCRIPTIONS", service=world.service, smartcard=world.card)
    rejected = ProvisioningRequestFactory(
        type="CANCEL_SUBSCRIPTIONS",
        service=world.service,
        smartcard=world.card,
        life_cycle_state="REJECTED",
        executed_date=timezone.now(),
    )
    panel = reverse("admin:conax_provisioningrequest_panel", args=[pending.pk])

    html = staff_client.get(panel).content.decode()
    rejected_html = staff_client.get(reverse("admin:conax_provisioningrequest_panel", args=[rejected.pk])).content

    assert "Process now</button>" in html and "Retry" not in html
    assert "Add services to a card" in html and 'data-field="request-state"' in html
    assert b"Retry\xe2\x80\xa6</a>" in rejected_html and b"Process now" not in rejected_html


# --- bulk actions: per object, and in the background when large ---------------------------------------------------


def test_a_mixed_selection_names_the_objects_left_alone_and_why(staff_client):
    fresh = [DeviceFactory(serial_number=f"NEW-{i}") for i in range(3)]
    done = [DeviceFactory(serial_number=f"STB-{i}", state="activated") for i in range(2)]
    response = staff_client.post(
        reverse("admin:devices_device_changelist"),
        {"action": "enable", "_selected_action": [d.pk for d in fresh + done]},
        follow=True,
    )
    assert _messages(response) == [
        "Enabled 3; 2 could not be enabled (already activated, re-enable it instead: STB-0, STB-1)."
    ]


def test_a_large_selection_becomes_a_job_with_its_progress_page(
    staff_client, settings, django_capture_on_commit_callbacks
):
    settings.ADMIN_BULK_INLINE_MAX = 2
    devices = [DeviceFactory(serial_number=f"BULK-{i}", state="notactivated") for i in range(4)]
    devices[3].state = "disabled"
    devices[3].save()

    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = staff_client.post(
            reverse("admin:devices_device_changelist"),
            {"action": "disable", "_selected_action": [d.pk for d in devices]},
        )

    job = BulkJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("admin:portal_bulkjob_change", args=[job.pk])
    assert (job.operation, job.total, job.cursor, job.state) == ("devices.disable", 4, 0, "queued")
    assert job.title == "Disable 4 devices" and len(queued) == 1  # the task, once the job row is committed

    jobs.job_run(job_id=job.pk, chunk=3)

    job.refresh_from_db()
    assert (job.done, job.failed, job.cursor, job.state) == (3, 1, 4, "finished")
    assert job.failures == [{"id": devices[3].pk, "label": "BULK-3", "reason": "already disabled"}]
    panel = staff_client.get(reverse("admin:portal_bulkjob_panel", args=[job.pk])).content.decode()
    assert "4 / 4 done" in panel and "1 failed" in panel
    assert f'href="{reverse("admin:devices_device_change", args=[devices[3].pk])}"' in panel
    assert set(Device.objects.filter(pk__in=[d.pk for d in devices[:3]]).values_list("state", flat=True)) == {
        "disabled"
    }


def test_a_job_interrupted_mid_chunk_does_every_object_exactly_once():
    calls: list[list[int]] = []

    @jobs.register("test.flaky", model=Device, verb="touch", done_verb="touched")
    def flaky(ids, params, actor):
        calls.append(list(ids))
        Device.objects.filter(pk__in=ids).update(extra="touched")  # rolled back with the chunk if it fails
        if len(calls) == 2:
            raise RuntimeError("worker lost")
        return jobs.Outcome(done=list(ids))

    try:
        devices = [DeviceFactory() for _ in range(5)]
        job = jobs.job_start(name="test.flaky", ids=[d.pk for d in devices], title="t", actor=None)
        with pytest.raises(RuntimeError):
            jobs.job_run(job_id=job.pk, chunk=2)
        job.refresh_from_db()
        assert (job.cursor, job.done, job.state) == (2, 2, "running")  # the first chunk stands, the second rolled back

        jobs.job_run(job_id=job.pk, chunk=2)  # the task delivered again
        jobs.job_run(job_id=job.pk, chunk=2)  # and once more: a finished job does nothing

        job.refresh_from_db()
        assert (job.cursor, job.done, job.failed, job.state) == (5, 5, 0, "finished")
        first, _failed, *rest = calls
        assert sorted(first + [pk for chunk in rest for pk in chunk]) == sorted(d.pk for d in devices)
    finally:
        jobs.OPERATIONS.pop("test.flaky")


def test_job_progress_is_published_to_staff_after_each_chunk(monkeypatch, django_capture_on_commit_callbacks):
    published = []
    monkeypatch.setattr("portal.kernel.live.publish", published.append)
    devices = [DeviceFactory() for _ in range(3)]
    job = jobs.job_start(name="devices.enable", ids=[d.pk for d in devices], title="t", actor=None)

    with django_capture_on_commit_callbacks(execute=True):
        jobs.job_run(job_id=job.pk, chunk=2)

    assert [(e["type"], e["job_id"], e["done"], e["total"], e["state"]) for e in published] == [
        ("job.progress", job.pk, 2, 3, "running"),
        ("job.progress", job.pk, 3, 3, "finished"),
    ]


# --- who sees what ------------------------------------------------------------------------------------------------


def test_support_staff_list_and_revoke_only_their_own_tokens(staff_client, staff_user):
    from portal.kernel import services
    from portal.kernel.choices import TokenPurpose

    mine = services.token_issue(user=staff_user, purpose=TokenPurpose.STAFF_API).token
    theirs = services.token_issue(user=StaffFactory(username="other"), purpose=TokenPurpose.STAFF_API).token

    listing = staff_client.get(reverse("admin:portal_apitoken_changelist")).content.decode()
    page = staff_client.get(reverse("admin:portal_apitoken_change", args=[mine.pk])).content.decode()
    other = staff_client.get(reverse("admin:portal_apitoken_change", args=[theirs.pk]))
    staff_client.post(reverse("admin:portal_apitoken_act", args=[mine.pk, "revoke"]), {"confirmed": "1"})
    staff_client.post(
        reverse("admin:portal_apitoken_changelist"), {"action": "revoke", "_selected_action": [theirs.pk]}
    )

    assert f"/admin/portal/apitoken/{mine.pk}/change/" in listing
    assert f"/admin/portal/apitoken/{theirs.pk}/change/" not in listing
    assert "Metadata" not in page and 'name="_save"' not in page and re.search(r"Revoke…</a>", page)
    assert other.status_code == 302  # not one of theirs: "does not exist" back to the list
    assert ApiToken.objects.get(pk=mine.pk).revoked_at is not None
    assert ApiToken.objects.get(pk=theirs.pk).revoked_at is None


def test_celery_beat_and_axes_are_for_superusers():
    support = Group.objects.get(name="support")
    internal = Permission.objects.filter(content_type__app_label__in=["django_celery_beat", "axes"])
    assert internal.exists()
    assert not support.permissions.filter(pk__in=internal).exists()
    assert support.permissions.filter(codename="view_bulkjob").exists()


def test_the_request_list_follows_the_fleet_live(staff_client):
    world = world_load()
    ProvisioningRequestFactory(type="ADD_SUBSCRIPTIONS", service=world.service, smartcard=world.card)
    html = staff_client.get(reverse("admin:conax_provisioningrequest_changelist")).content.decode()
    assert 'data-event-type="cas.request cas.requests"' in html and "portal/livelist" in html
    assert 'class="badge badge-busy" data-state="PENDING"' in html
    assert ProvisioningRequest.objects.count() == 1


def test_a_sensor_components_use_is_not_deleted(staff_client):
    from components.models import DeviceProvisioning, ProvisioningComponent, Sensor

    sensor = Sensor.objects.create(id=7, name="Humidity")
    record = DeviceProvisioning.objects.create(device=DeviceFactory())
    ProvisioningComponent.objects.create(
        provisioning=record, component_type=0, component_id=7, last_modified_datetime=timezone.now()
    )

    response = staff_client.post(reverse("admin:components_sensor_delete", args=[7]), {"post": "yes"}, follow=True)

    assert response.redirect_chain[-1][0] == reverse("admin:components_sensor_change", args=[7])
    assert _messages(response) == ["1 component(s) still refer to sensor 7"]
    assert Sensor.objects.filter(pk=sensor.pk).exists()


def test_a_box_page_shows_its_provision_types_as_badges(staff_client):
    from provisioning.models import TypeStatus

    box = SetTopBox.objects.create(device=DeviceFactory(), thunder_host="10.0.0.7")
    TypeStatus.objects.create(
        box=box, provision_type="HARDWARE", kind="RT.2", state="CORRUPTED", refreshed_at=timezone.now()
    )

    html = staff_client.get(reverse("admin:provisioning_settopbox_change", args=[box.pk])).content.decode()

    assert '<span class="badge badge-bad" data-state="CORRUPTED">Corrupted</span>' in html
