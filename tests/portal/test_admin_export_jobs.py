"""A list export of more rows than ADMIN_EXPORT_INLINE_ROWS runs as a background job (portal/kernel/adminexport.py):
the export redirects to the job's page with the list's rows frozen (its filters, its order), the worker's function
writes the file into the exports storage (never the database), the page offers it, only the owner or staff who may
see the jobs and the list download it, and the file is deleted after ADMIN_EXPORT_RETENTION_HOURS. A real worker
runs it in tests/e2e/test_export_browser.py."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import openpyxl
import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devices import services
from devices.models import Device, DeviceModel, Vendor
from portal.kernel import adminexport
from portal.kernel.models import BulkJob
from tests.factories import CustomerFactory, DeviceFactory, DeviceModelFactory, StaffFactory

pytestmark = pytest.mark.django_db

DEVICES = "/admin/devices/device/"


@pytest.fixture(autouse=True)
def exports(settings, tmp_path):
    """Small exports inline, larger ones in the background; the files in a directory of this test's own."""
    settings.ADMIN_EXPORT_INLINE_ROWS = 2
    settings.STORAGES = {
        **settings.STORAGES,
        "exports": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path}},
    }
    return tmp_path


@pytest.fixture
def fleet():
    model = DeviceModelFactory(name="gw-job")
    pending = DeviceFactory.create_batch(4, model=model)
    services.devices_enable(ids=[d.pk for d in pending])
    DeviceFactory.create_batch(3, model=model)
    return model, pending


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def xlsx_rows(data: bytes) -> list[list[str]]:
    sheet = openpyxl.load_workbook(io.BytesIO(data), read_only=True).active
    return [["" if value is None else value for value in row] for row in sheet.iter_rows(values_only=True)]


def start(client, fmt: str, params: dict) -> BulkJob:
    response = client.get(f"{DEVICES}export/{fmt}/", params)
    job = BulkJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/admin/portal/bulkjob/{job.pk}/change/"
    return job


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_large_filtered_export_becomes_a_job_whose_file_holds_exactly_the_filtered_rows(
    client, staff_user, fleet, exports, fmt, django_capture_on_commit_callbacks
):
    _, pending = fleet
    client.force_login(staff_user)
    params = {"state": "notactivated", "o": "-1"}
    shown = [d.serial_number for d in client.get(DEVICES, params).context["cl"].result_list]

    with django_capture_on_commit_callbacks() as queued:
        job = start(client, fmt, params)
    page = client.get(f"/admin/portal/bulkjob/{job.pk}/change/").content.decode()
    adminexport.export_run(job_id=job.pk)  # what the worker's task does (tests/e2e runs a real worker)
    job.refresh_from_db()
    download = client.get(f"/admin/portal/bulkjob/{job.pk}/download/")

    assert len(queued) == 1  # the task, queued once the job row is committed
    assert (job.operation, job.title, job.total, job.done, job.failed, job.state) == (
        "admin.export", f"Export 4 devices as {fmt.upper()}", 4, 4, 0, "finished"
    )  # fmt: skip
    assert job.object_ids == [d.pk for d in sorted(pending, key=lambda d: d.serial_number, reverse=True)]
    assert "waiting for a worker" in page and "Download" not in page
    assert '<a href="/admin/devices/device/?state=notactivated&amp;o=-1">the list as it was filtered</a>' in page
    assert job.file.name.startswith(f"{job.pk}/devices-") and job.file.name.endswith(f".{fmt}")
    assert (exports / job.file.name).is_file()  # in the exports storage, not in the row
    assert download.status_code == 200 and download["Content-Disposition"].startswith("attachment;")
    rows = (csv_rows if fmt == "csv" else xlsx_rows)(body(download))
    assert rows[0][:3] == ["Serial number", "Model", "State"]
    assert [row[0] for row in rows[1:]] == shown
    assert {row[2] for row in rows[1:]} == {"Pending activation"}
    panel = client.get(f"/admin/portal/bulkjob/{job.pk}/panel/").content.decode()
    assert f'href="/admin/portal/bulkjob/{job.pk}/download/"' in panel and "4 / 4 rows read" in panel


def test_a_small_export_stays_inline(client, staff_user, fleet):
    client.force_login(staff_user)

    response = client.get(f"{DEVICES}export/csv/", {"state": "notactivated", "q": fleet[1][0].serial_number})

    assert response.status_code == 200 and len(csv_rows(body(response))) == 2
    assert not BulkJob.objects.exists()


def test_a_row_removed_before_the_worker_reads_it_is_left_out_and_said(client, staff_user, fleet):
    _, pending = fleet
    client.force_login(staff_user)
    job = start(client, "csv", {"state": "notactivated"})
    Device.objects.filter(pk=pending[0].pk).delete()

    adminexport.export_run(job_id=job.pk)
    job.refresh_from_db()

    assert (job.done, job.failed) == (3, 1)
    assert job.failures == [
        {"id": pending[0].pk, "label": f"#{pending[0].pk}", "reason": "removed since the export was asked for",
         "linked": False}
    ]  # fmt: skip
    rows = csv_rows(body(client.get(f"/admin/portal/bulkjob/{job.pk}/download/")))
    assert sorted(row[0] for row in rows[1:]) == sorted(d.serial_number for d in pending[1:])


def test_a_second_run_leaves_a_finished_job_alone_and_a_redelivered_one_writes_the_file_again(
    client, staff_user, fleet, exports
):
    client.force_login(staff_user)
    job = start(client, "csv", {"state": "notactivated"})
    adminexport.export_run(job_id=job.pk)
    job.refresh_from_db()
    first = job.file.name

    assert adminexport.export_run(job_id=job.pk).file.name == first  # finished: nothing done again
    # A worker lost after storing the file but before finishing the job: the redelivered task starts over.
    BulkJob.objects.filter(pk=job.pk).update(state="running", file="")
    again = adminexport.export_run(job_id=job.pk)

    stored = sorted(p.name for p in (exports / str(job.pk)).iterdir())
    assert again.file.name == first and again.done == 4 and stored == [first.split("/")[1]]


def test_only_the_owner_or_staff_who_may_see_jobs_and_the_list_download(client, staff_user, fleet):
    client.force_login(staff_user)
    job = start(client, "csv", {"state": "notactivated"})
    adminexport.export_run(job_id=job.pk)
    url = f"/admin/portal/bulkjob/{job.pk}/download/"
    no_list = StaffFactory(username="jobs-only")
    no_list.groups.clear()
    no_list.user_permissions.add(Permission.objects.get(codename="view_bulkjob"))
    colleague = StaffFactory(username="colleague")

    client.force_login(no_list)
    refused = client.get(url)
    client.force_login(CustomerFactory())
    customer = client.get(url)
    client.force_login(colleague)
    allowed = client.get(url)
    client.logout()
    anonymous = client.get(url)

    assert refused.status_code == 404
    assert customer.status_code == 302 and customer["Location"].startswith("/admin/login/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/admin/login/")
    assert allowed.status_code == 200 and len(csv_rows(body(allowed))) == 5
    downloads = LogEntry.objects.filter(additional_data__action="export-download")
    assert list(downloads.values_list("actor__username", flat=True)) == ["colleague"]


def test_the_file_is_deleted_after_the_retention(client, staff_user, fleet, exports, settings):
    settings.ADMIN_EXPORT_RETENTION_HOURS = 24
    client.force_login(staff_user)
    job = start(client, "xlsx", {"state": "notactivated"})
    adminexport.export_run(job_id=job.pk)
    job.refresh_from_db()
    stored = exports / job.file.name

    assert adminexport.exports_purge() == 0 and stored.is_file()  # not yet
    BulkJob.objects.filter(pk=job.pk).update(finished_at=timezone.now() - timedelta(hours=25))
    gone = client.get(f"/admin/portal/bulkjob/{job.pk}/download/")  # expired: refused even before the purge
    purged = adminexport.exports_purge()
    panel = client.get(f"/admin/portal/bulkjob/{job.pk}/panel/").content.decode()

    assert gone.status_code == 404
    assert purged == 1 and not stored.exists() and BulkJob.objects.get(pk=job.pk).file.name == ""
    assert "The file was deleted 24 h after it was written" in panel and "/download/" not in panel


def test_the_job_path_at_ten_thousand_rows_stays_under_a_fixed_query_budget(client, staff_user):
    vendor = Vendor.objects.create(name="bulk-vendor")
    model = DeviceModel.objects.create(vendor=vendor, name="bulk-model")
    Device.objects.bulk_create(Device(model=model, serial_number=f"JOB-{i:06d}") for i in range(10_000))
    client.force_login(staff_user)
    job = start(client, "xlsx", {})

    with CaptureQueriesContext(connection) as run:
        adminexport.export_run(job_id=job.pk)
    job.refresh_from_db()

    # the job, the start, the owner's permissions (2), five chunks of 2000 rows each read once and counted once, the
    # finish and its re-read: the same whatever the row count but for one read and one count per chunk
    assert len(run.captured_queries) == 4 + 5 * 2 + 2
    assert (job.done, job.total) == (10_000, 10_000)
