"""The export and the serial import in a real browser, served by uvicorn (ASGI, the CSV streamed as an async
iterator): support staff filter the device list, click Export, and the download holds exactly the rows the list
shows; over ADMIN_EXPORT_INLINE_ROWS the export is a background job a real worker runs, its page follows it live to
its download link, and the file holds exactly the filtered rows. They upload a CSV with a repeated line and a serial
with a space, see both reported in the preview, confirm, and find the devices. Screenshots (test-artifacts/):
``export-list-*``, ``export-job-waiting-*``, ``export-job-done-*``, ``import-preview-*`` (desktop and phone)."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from playwright.sync_api import expect

from devices import services
from devices.models import Device
from portal.kernel.models import BulkJob
from tests.conftest import free_port, kill_worker, start_worker
from tests.e2e.support import DESKTOP, PHONE, Watched, log_in_page, shot, start_uvicorn, stop
from tests.factories import DeviceFactory, DeviceModelFactory, StaffFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]
VIEWPORTS = [("desktop", DESKTOP), ("phone", PHONE)]


def listed_serials(page) -> list[str]:
    return page.locator("#result_list tbody tr th").all_inner_texts()


@pytest.mark.parametrize(("size", "viewport"), VIEWPORTS)
def test_the_export_downloads_exactly_the_filtered_rows(asgi_server, browser, size, viewport):
    StaffFactory(username="support-1")
    model = DeviceModelFactory(name="stb-4k")
    pending = DeviceFactory.create_batch(4, model=model)
    services.devices_enable(ids=[device.pk for device in pending])
    DeviceFactory.create_batch(3, model=model)
    DeviceFactory.create_batch(2)
    watched = Watched(browser, viewport)
    page = watched.page
    log_in_page(page, asgi_server, "support-1", path="/admin/login/")

    page.goto(f"{asgi_server}/admin/devices/device/")
    page.locator("#changelist-filter a", has_text="Pending activation").click()
    page.wait_for_load_state("networkidle")
    shown = listed_serials(page)
    shot(page, f"export-list-{size}")
    with page.expect_download() as csv_download:
        page.get_by_role("link", name="Export CSV").click()
    with page.expect_download() as xlsx_download:
        page.get_by_role("link", name="Export XLSX").click()

    assert sorted(shown) == sorted(device.serial_number for device in pending)
    rows = list(csv.reader(io.StringIO(csv_download.value.path().read_text(encoding="utf-8-sig"))))
    assert rows[0][:3] == ["Serial number", "Model", "State"]
    assert [row[0] for row in rows[1:]] == shown
    assert {row[2] for row in rows[1:]} == {"Pending activation"}
    assert csv_download.value.suggested_filename.startswith("devices-")
    assert xlsx_download.value.suggested_filename.endswith(".xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx_download.value.path().read_bytes()), read_only=True).active
    assert [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)] == shown
    assert watched.take() == []


@pytest.mark.parametrize(("size", "viewport"), VIEWPORTS)
def test_the_import_preview_reports_repeats_and_spaces_then_creates(asgi_server, browser, tmp_path, size, viewport):
    StaffFactory(username="support-2")
    model = DeviceModelFactory(name="gw-2")
    upload = tmp_path / "serials.csv"
    upload.write_text("sn,extra\nIMP-1,lot 1\nIMP-2,\nIMP-1,again\nIMP 3,\n IMP-4,\nIMP-5,\n")
    watched = Watched(browser, viewport)
    page = watched.page
    log_in_page(page, asgi_server, "support-2", path="/admin/login/")

    page.goto(f"{asgi_server}/admin/devices/device/")
    page.get_by_role("link", name="Import serial numbers").click()
    page.get_by_label("Device model").select_option(label=str(model))
    page.get_by_label("File").set_input_files(str(upload))
    page.get_by_label("Enable").check()
    page.get_by_role("button", name="Preview").click()
    page.wait_for_load_state("networkidle")
    shot(page, f"import-preview-{size}")

    expect(page.locator("#import-duplicates tbody td")).to_have_text(["4", "IMP-1", "2"])
    expect(page.locator("#import-invalid tbody td")).to_have_text(
        ["5", "IMP\u24233", "contains a space", "6", "\u2423IMP-4", "starts with a space"]
    )
    expect(page.locator("#import-new li")).to_have_text(["IMP-1", "IMP-2", "IMP-5"])
    expect(page.locator("#import-enable")).to_contain_text("These 3 serial numbers will be created and enabled")
    assert Device.objects.filter(model=model).count() == 0

    page.get_by_role("button", name="Import 3 serial numbers and enable them").click()
    page.wait_for_load_state("networkidle")

    expect(page.locator("ul.messagelist li.success")).to_contain_text(
        "3 created, 0 already there, 1 repeated in the file, 2 invalid, 3 enabled."
    )
    page.goto(f"{asgi_server}/admin/devices/device/?q=IMP-")
    assert sorted(listed_serials(page)) == ["IMP-1", "IMP-2", "IMP-5"]
    assert sorted(Device.objects.filter(model=model).values_list("serial_number", "state")) == [
        ("IMP-1", "notactivated"),
        ("IMP-2", "notactivated"),
        ("IMP-5", "notactivated"),
    ]
    assert watched.take() == []


@pytest.fixture
def small_inline_server(tmp_path, redis_db):
    """A server on which any export of more than 3 rows is a background job."""
    port = free_port()
    proc = start_uvicorn(port, tmp_path, redis_db, ADMIN_EXPORT_INLINE_ROWS="3")
    yield f"http://127.0.0.1:{port}"
    stop(proc)


@pytest.mark.parametrize(("size", "viewport"), VIEWPORTS)
def test_a_large_filtered_export_finishes_as_a_job_and_downloads_the_filtered_rows(
    small_inline_server, browser, redis_db, tmp_path, size, viewport
):
    server = small_inline_server
    StaffFactory(username="support-3")
    model = DeviceModelFactory(name="stb-job")
    pending = DeviceFactory.create_batch(5, model=model)
    services.devices_enable(ids=[device.pk for device in pending])
    DeviceFactory.create_batch(4, model=model)
    watched = Watched(browser, viewport)
    page = watched.page
    log_in_page(page, server, "support-3", path="/admin/login/")
    page.goto(f"{server}/admin/devices/device/")
    page.locator("#changelist-filter a", has_text="Pending activation").click()
    page.wait_for_load_state("networkidle")
    shown = listed_serials(page)

    page.get_by_role("link", name="Export XLSX").click()  # 5 rows > 3: not a download, the job's page
    expect(page.locator(".job-counts")).to_contain_text("waiting for a worker")
    expect(page.locator("#live-updated")).to_contain_text("Live updates: on", timeout=15_000)
    page.evaluate("window.__sameDocument = true")
    shot(page, f"export-job-waiting-{size}")
    worker = start_worker(tmp_path, "portalfs://localhost//", "regular", concurrency=1, REDIS_URL=redis_db)
    try:
        link = page.get_by_role("link", name="Download devices-")
        expect(link).to_be_visible(timeout=60_000)
    finally:
        kill_worker(worker)
    expect(page.locator(".job-counts")).to_contain_text("5 / 5 rows read")
    expect(page.locator(".job-state .badge")).to_have_text("Finished")
    shot(page, f"export-job-done-{size}")
    with page.expect_download() as download:
        link.click()

    assert page.evaluate("window.__sameDocument") is True  # followed live, no reload
    assert sorted(shown) == sorted(device.serial_number for device in pending)
    assert download.value.suggested_filename.endswith(".xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(download.value.path().read_bytes()), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("Serial number", "Model", "State")
    assert [row[0] for row in rows[1:]] == shown
    assert {row[2] for row in rows[1:]} == {"Pending activation"}
    job = BulkJob.objects.get()
    assert (job.operation, job.total, job.done, job.state) == ("admin.export", 5, 5, "finished")
    assert (tmp_path / "exports" / job.file.name).is_file()  # in the exports storage of the server's var dir
    assert watched.take() == []
