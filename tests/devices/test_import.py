"""Serial import (devices.services.devices_import, devices/importing.py, the admin's Import serial numbers page): a
serial repeated in the file is reported with its lines, one with a space anywhere is refused with its line, the
preview names what it will create and whether it enables it, and every created device is audited as a creation,
as ``device_create`` audits one."""

from __future__ import annotations

import io

import pytest
from auditlog.context import set_actor
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from devices import importing, services
from devices.models import Device
from tests.factories import DeviceFactory, DeviceModelFactory, StaffFactory

pytestmark = pytest.mark.django_db

IMPORT = reverse("admin:devices_device_import")


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def device_entries():
    return LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(Device))


# --- the service --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("serial", "reason"),
    [
        pytest.param(" STB-1", "starts with a space", id="leading"),
        pytest.param("STB-1 ", "ends with a space", id="trailing"),
        pytest.param("STB 1", "contains a space", id="inner"),
        pytest.param("STB\u00a01", "contains a space", id="no-break-space"),
        pytest.param("STB\t1", "control characters", id="tab"),
        pytest.param("", "empty serial number", id="empty"),
    ],
)
def test_a_serial_with_a_space_is_refused_with_its_line(serial, reason):
    model = DeviceModelFactory()

    result = services.devices_import(model=model, rows=[(1, "OK-1", ""), (2, serial, "")])

    assert result.invalid == [(2, serial, reason)]
    assert list(Device.objects.filter(model=model).values_list("serial_number", flat=True)) == ["OK-1"]


def test_the_csv_reader_keeps_spaces_for_the_import_to_refuse():
    rows = list(importing.rows_from_csv(io.StringIO("sn,extra\n A-1,x\nA-2 , lot 2\nA 3\n")))

    assert rows == [(2, " A-1", "x"), (3, "A-2 ", "lot 2"), (4, "A 3", "")]


def test_repeats_in_the_file_are_reported_with_both_lines_across_batches():
    model = DeviceModelFactory()
    DeviceFactory(model=model, serial_number="OLD")
    rows = [(n, f"S{n}", "") for n in range(1, services.IMPORT_BATCH + 2)]
    rows += [(5000, "S1", ""), (5001, "S1", ""), (5002, f"S{services.IMPORT_BATCH + 1}", ""), (5003, "OLD", "")]

    result = services.devices_import(model=model, rows=rows)

    assert result.duplicates == [(5000, "S1", 1), (5001, "S1", 1), (5002, f"S{services.IMPORT_BATCH + 1}", 1001)]
    assert (result.created, result.existing, result.invalid) == (services.IMPORT_BATCH + 1, 1, [])
    assert Device.objects.filter(model=model).count() == services.IMPORT_BATCH + 2


def test_a_dry_run_names_the_first_serials_it_would_create_and_writes_nothing():
    model = DeviceModelFactory()
    DeviceFactory(model=model, serial_number="N-0002")
    rows = [(n, f"N-{n:04d}", "") for n in range(1, 301)]

    result = services.devices_import(model=model, rows=rows, dry_run=True)

    assert result.created == 299
    assert result.sample == [f"N-{n:04d}" for n in range(1, services.PREVIEW_SAMPLE + 2) if n != 2]
    assert Device.objects.filter(model=model).count() == 1
    assert list(device_entries().filter(action=LogEntry.Action.CREATE).values_list("object_repr", flat=True)) == [
        "N-0002"
    ]


def test_each_imported_device_is_audited_as_a_creation_like_device_create():
    model = DeviceModelFactory()
    staff = StaffFactory(username="importer")
    with set_actor(staff, remote_addr="192.0.2.7"):
        single = services.device_create(model=model, serial_number="ONE")
        services.devices_import(model=model, rows=[(1, "BULK-1", "lot"), (2, "BULK-2", ""), (3, "ONE", "")])

    created = {entry.object_repr: entry for entry in device_entries().filter(action=LogEntry.Action.CREATE)}
    assert sorted(created) == ["BULK-1", "BULK-2", "ONE"]
    one, bulk = created["ONE"], created["BULK-1"]
    assert (bulk.actor, bulk.remote_addr) == (one.actor, one.remote_addr) == (staff, "192.0.2.7")
    assert set(bulk.changes_dict) == set(one.changes_dict)
    assert bulk.changes_dict["serial_number"] == [one.changes_dict["serial_number"][0], "BULK-1"]
    assert bulk.changes_dict["extra"][1] == "lot"
    assert bulk.object_id == Device.objects.get(model=model, serial_number="BULK-1").pk
    assert bulk.additional_data == {"action": "import_serials"}
    assert single.pk == one.object_id


def test_audit_entries_of_an_import_are_written_in_bulk():
    """No entry is inserted row by row: on PostgreSQL the devices' creation entries go in by COPY (which Django's
    query capture does not see), so the only INSERT into the trail is the model's summary; SQLite has no COPY, and
    takes one INSERT a batch. Every device still has its entry."""
    model = DeviceModelFactory()
    rows = [(n, f"Q{n}", "") for n in range(1, 2 * services.IMPORT_BATCH + 1)]

    with CaptureQueriesContext(connection) as queries:
        services.devices_import(model=model, rows=rows)

    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "auditlog_logentry"')]
    per_batch = 0 if connection.vendor == "postgresql" else 1  # SQLite: the batch's entries in one INSERT
    assert len(inserts) == 1 + 2 * per_batch
    assert '"import_serials"' in inserts[-1] and '"created": 2000' in inserts[-1]  # the model's summary
    entries = device_entries().filter(action=LogEntry.Action.CREATE)
    assert entries.count() == 2 * services.IMPORT_BATCH
    ids = set(Device.objects.filter(model=model).values_list("pk", flat=True))
    assert set(entries.values_list("object_id", flat=True)) == ids
    last = entries.get(object_repr=f"Q{2 * services.IMPORT_BATCH}")
    assert last.changes_dict["serial_number"] == [None, f"Q{2 * services.IMPORT_BATCH}"]
    assert last.additional_data == {"action": "import_serials"}


# --- the admin page -----------------------------------------------------------------------------------------------


def upload(text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("serials.csv", text.encode())


def test_the_preview_reports_repeats_spaces_and_what_it_will_create(staff_client):
    model = DeviceModelFactory()
    DeviceFactory(model=model, serial_number="OLD-1")
    text = "sn,extra\nNEW-1,\nOLD-1,\nNEW-1,again\n NEW-2,\nNEW 3,\nNEW-4,\n"

    preview = staff_client.post(IMPORT, {"model": model.pk, "file": upload(text)})

    assert preview.status_code == 200
    html = preview.content.decode()
    assert '<strong data-count="created">2</strong>' in html
    assert '<strong data-count="existing">1</strong>' in html
    assert '<strong data-count="duplicates">1</strong>' in html
    assert '<strong data-count="invalid">2</strong>' in html
    assert "<tr><td>4</td><td><code>NEW-1</code></td><td>2</td></tr>" in html
    assert "<tr><td>5</td><td><code>\u2423NEW-2</code></td><td>starts with a space</td></tr>" in html
    assert "<tr><td>6</td><td><code>NEW\u24233</code></td><td>contains a space</td></tr>" in html
    assert "<li><code>NEW-1</code></li><li><code>NEW-4</code></li>" in html
    assert "These 2 serial numbers will be created, not enabled" in html
    assert Device.objects.filter(model=model).count() == 1


def test_the_preview_says_the_window_opens_when_enabling(staff_client, settings):
    settings.ACTIVATION_WINDOW = 3600
    model = DeviceModelFactory()
    text = "".join(f"E-{n:03d}\n" for n in range(340))

    preview = staff_client.post(IMPORT, {"model": model.pk, "file": upload(text), "enable": "on"})

    html = " ".join(preview.content.decode().split())
    assert (
        "These 340 serial numbers will be created <strong>and enabled</strong>: the activation window opens now, "
        "when you confirm, for 3600 s (1 h 0 min)."
    ) in html
    assert f"… and {340 - services.PREVIEW_SAMPLE} more." in html
    assert 'value="Import 340 serial numbers and enable them"' in html


def test_confirming_creates_the_devices_once_and_audits_each(staff_client, staff_user):
    model = DeviceModelFactory()
    text = "A-1\nA-2\nA-1\n A-3\n"
    preview = staff_client.post(IMPORT, {"model": model.pk, "file": upload(text), "enable": "on"})

    confirmed = staff_client.post(
        IMPORT, {"model": model.pk, "csv_text": preview.context["csv_text"], "enable": "on", "confirm": "1"}
    )

    assert confirmed.status_code == 302
    assert sorted(Device.objects.filter(model=model).values_list("serial_number", "state")) == [
        ("A-1", "notactivated"),
        ("A-2", "notactivated"),
    ]
    created = device_entries().filter(action=LogEntry.Action.CREATE)
    assert sorted(created.values_list("object_repr", "actor")) == [("A-1", staff_user.pk), ("A-2", staff_user.pk)]
    messages = [str(m) for m in confirmed.wsgi_request._messages]
    assert messages == [
        f"Imported into {model}: 2 created, 0 already there, 1 repeated in the file, 1 invalid, 2 enabled."
    ]


def test_a_large_file_imports_in_the_background_with_progress(
    staff_client, staff_user, settings, django_capture_on_commit_callbacks
):
    from portal.kernel import jobs
    from portal.kernel.models import BulkJob

    settings.ADMIN_IMPORT_INLINE_ROWS = 3
    model = DeviceModelFactory()
    DeviceFactory(model=model, serial_number="BG-OLD")
    csv_text = "sn,extra\nBG-1,a\nBG-2,\nBG-OLD,\nBG-1,again\nBG 3,\nBG-4,\n"

    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = staff_client.post(IMPORT, {"model": model.pk, "csv_text": csv_text, "enable": "on", "confirm": "1"})

    job = BulkJob.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/admin/portal/bulkjob/{job.pk}/change/")
    assert job.total == 5 and len(queued) == 1  # the repeat of BG-1 (line 5) was listed by the preview, not re-sent
    assert Device.objects.filter(model=model).count() == 1  # nothing imported before the worker runs

    jobs.job_run(job_id=job.pk, chunk=2)

    job.refresh_from_db()
    assert (job.done, job.failed, job.state) == (4, 1, "finished")
    assert job.failures == [{"id": 6, "label": "line 6: BG 3", "reason": "contains a space", "linked": False}]
    created = Device.objects.filter(model=model).exclude(serial_number="BG-OLD")
    assert sorted(created.values_list("serial_number", flat=True)) == ["BG-1", "BG-2", "BG-4"]
    assert set(created.values_list("state", flat=True)) == {"notactivated"}  # enabled on import, as asked
    assert Device.objects.get(serial_number="BG-1").extra == "a"
    entries = LogEntry.objects.filter(action=LogEntry.Action.CREATE, object_repr__in=["BG-1", "BG-2", "BG-4"])
    assert entries.count() == 3 and {e.actor_id for e in entries} == {staff_user.pk}  # the requester, in the worker
    panel = staff_client.get(f"/admin/portal/bulkjob/{job.pk}/panel/").content.decode()
    assert "5 / 5 done" in panel and "line 6: BG 3" in panel and "contains a space" in panel
