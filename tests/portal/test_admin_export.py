"""Every admin list exports as CSV and XLSX (portal/kernel/adminexport.py): the list's rows with its filters, search
and ordering, its columns with their headers, its values as shown; a refused filter is the list's own 400; the
number of queries does not grow with the rows; formulas are never evaluated; who exported what is audited."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import factory
import openpyxl
import pytest
from auditlog.models import LogEntry
from django.contrib.admin.templatetags.admin_list import result_headers
from django.contrib.admin.utils import label_for_field
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import formats, timezone
from django.utils.text import capfirst

from components.choices import ActiveStatus, ComponentType
from components.models import DeviceProvisioning, ProvisioningComponent
from devices import services
from devices.choices import ActivationState
from devices.models import Device, DeviceModel, Vendor
from provisioning.choices import CommandKind, EventSource
from provisioning.models import BoxEvent, Command, SetTopBox
from tests.conax.factories import ProvisioningRequestFactory
from tests.factories import CustomerFactory, DeviceFactory, DeviceModelFactory, StaffFactory

pytestmark = pytest.mark.django_db

DEVICES = "/admin/devices/device/"


@pytest.fixture
def staff_client(client: Client, staff_user) -> Client:
    client.force_login(staff_user)
    return client


def read_csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:])))


def read_xlsx(response) -> list[list[str]]:
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True).active
    return [["" if value is None else value for value in row] for row in sheet.iter_rows(values_only=True)]


def read(response, fmt: str) -> list[list[str]]:
    return read_csv(response) if fmt == "csv" else read_xlsx(response)


# --- every list ---------------------------------------------------------------------------------------------------


def _model():
    """One device model for every row: the lists' model filters name each model (and its vendor) once."""
    vendor, _ = Vendor.objects.get_or_create(name="export-vendor")
    return DeviceModel.objects.get_or_create(vendor=vendor, name="export-model")[0]


def _devices(n: int) -> None:
    model = _model()
    start = Device.objects.count()
    Device.objects.bulk_create(Device(model=model, serial_number=f"EXP-{i:06d}") for i in range(start, start + n))


def _boxes(n: int) -> list[SetTopBox]:
    model = _model()
    start = Device.objects.count()
    devices = Device.objects.bulk_create(
        Device(model=model, serial_number=f"BOX-{i:06d}") for i in range(start, start + n)
    )
    return SetTopBox.objects.bulk_create(
        SetTopBox(device=d, thunder_host=f"10.0.0.{i % 250}") for i, d in enumerate(devices)
    )


def _commands(n: int) -> None:
    staff = StaffFactory(username="requester")
    Command.objects.bulk_create(Command(box=box, kind=CommandKind.REFRESH, requested_by=staff) for box in _boxes(n))


def _events(n: int) -> None:
    BoxEvent.objects.bulk_create(BoxEvent(box=box, status=200, source=EventSource.choices[0][0]) for box in _boxes(n))


def _requests(n: int) -> None:
    ProvisioningRequestFactory.create_batch(n)


def _provisionings(n: int) -> list[DeviceProvisioning]:
    model = _model()
    start = Device.objects.count()
    devices = Device.objects.bulk_create(
        Device(model=model, serial_number=f"PRV-{i:06d}") for i in range(start, start + n)
    )
    return DeviceProvisioning.objects.bulk_create(DeviceProvisioning(device=d) for d in devices)


def _components(n: int) -> None:
    """``n`` components over two provisionings (the list's provisioning filter names each provisioning)."""
    staff = StaffFactory(username="modifier")
    provisionings = list(DeviceProvisioning.objects.all()[:2]) or _provisionings(2)
    start = ProvisioningComponent.objects.count()
    ProvisioningComponent.objects.bulk_create(
        ProvisioningComponent(
            provisioning=provisionings[i % 2],
            component_type=ComponentType.choices[0][0],
            component_id=i,
            active_status=ActiveStatus.ACTIVE,
            last_modified_by=staff,
            last_modified_datetime=timezone.now(),
        )
        for i in range(start, start + n)
    )


def _audit(n: int) -> None:
    for device in DeviceFactory.create_batch(n):
        services.device_enable(device=device)


LISTS: dict[str, tuple[str, Callable[[int], object], type]] = {
    "devices": ("/admin/devices/device/", _devices, Device),
    "set-top boxes": ("/admin/provisioning/settopbox/", _boxes, SetTopBox),
    "commands": ("/admin/provisioning/command/", _commands, Command),
    "box events": ("/admin/provisioning/boxevent/", _events, BoxEvent),
    "conax requests": ("/admin/conax/provisioningrequest/", _requests, None),
    "provisionings": ("/admin/components/deviceprovisioning/", _provisionings, DeviceProvisioning),
    "components": ("/admin/components/provisioningcomponent/", _components, ProvisioningComponent),
    "audit log": ("/admin/auditlog/logentry/", _audit, LogEntry),
}


def listed_rows(client: Client, url: str, params: dict | None = None) -> int:
    response = client.get(url, params or {})
    assert response.status_code == 200
    return response.context["cl"].result_count


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("name", list(LISTS))
def test_every_list_exports_its_rows_with_the_lists_headers(staff_client, name, fmt):
    url, make, _ = LISTS[name]
    make(3)
    page = staff_client.get(url)
    headers = _headers(page)

    response = staff_client.get(f"{url}export/{fmt}/")

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment; filename=")
    rows = read(response, fmt)
    assert rows[0] == headers
    assert len(rows) - 1 == listed_rows(staff_client, url) >= 3


def _headers(page) -> list[str]:
    """The column headers the list page shows, without its selection checkbox; or those of the columns the admin
    names for its export (the audit log exports each entry's changes whole, not the list's summary)."""
    admin = page.context["cl"].model_admin
    if admin.export_fields:
        return [capfirst(str(label_for_field(name, admin.model, admin))) for name in admin.export_fields]
    return [
        capfirst(str(header["text"]))
        for header in result_headers(page.context["cl"])
        if "action-checkbox-column" not in header["class_attrib"]
    ]


@pytest.mark.parametrize("name", list(LISTS))
def test_the_number_of_queries_does_not_grow_with_the_rows(staff_client, name, django_assert_num_queries):
    url, make, _ = LISTS[name]
    make(2)
    read_csv(staff_client.get(f"{url}export/csv/"))  # caches warmed (content types, the session)
    with CaptureQueriesContext(connection) as few:
        read_csv(staff_client.get(f"{url}export/csv/"))
    make(25)
    with django_assert_num_queries(len(few.captured_queries)):
        rows = read_csv(staff_client.get(f"{url}export/csv/"))
    assert len(rows) > 25


def test_device_export_at_ten_thousand_rows_stays_under_a_fixed_query_budget(
    staff_client, settings, django_assert_max_num_queries
):
    settings.ADMIN_EXPORT_INLINE_ROWS = 20_000  # the inline path (the background one: test_admin_export_jobs.py)
    _devices(10_000)

    with django_assert_max_num_queries(13):
        csv_rows = read_csv(staff_client.get(f"{DEVICES}export/csv/"))
    with django_assert_max_num_queries(13):
        xlsx_rows = read_xlsx(staff_client.get(f"{DEVICES}export/xlsx/"))

    assert len(csv_rows) == len(xlsx_rows) == 10_001
    assert csv_rows[1:] == xlsx_rows[1:]


# --- filters, values ----------------------------------------------------------------------------------------------


@pytest.fixture
def fleet():
    model = DeviceModelFactory(name="gw-1")
    enabled = DeviceFactory.create_batch(3, model=model)
    services.devices_enable(ids=[d.pk for d in enabled])
    DeviceFactory.create_batch(2, model=model)
    DeviceFactory.create_batch(4)
    DeviceFactory.create_batch(2, serial_number=factory.Sequence(lambda n: f"FIND-{n}"))
    return model, enabled


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"state": "notactivated"}, id="sidebar-filter"),
        pytest.param({"model_id": "MODEL"}, id="filterset-parameter"),
        pytest.param({"state": "notactivated", "model_id": "MODEL", "o": "-1"}, id="both-ordered"),
        pytest.param({"q": "FIND-"}, id="search"),
    ],
)
def test_the_export_holds_exactly_the_filtered_list(staff_client, fleet, params, fmt):
    model, _ = fleet
    params = {key: str(model.pk) if value == "MODEL" else value for key, value in params.items()}
    page = staff_client.get(DEVICES, params)
    shown = [device.serial_number for device in page.context["cl"].result_list]

    rows = read(staff_client.get(f"{DEVICES}export/{fmt}/", params), fmt)

    assert [row[0] for row in rows[1:]] == shown
    assert len(shown) == page.context["cl"].result_count < Device.objects.count()


def test_values_read_as_on_the_list(staff_client, fleet):
    _, enabled = fleet
    device = Device.objects.get(pk=enabled[0].pk)

    rows = read_csv(staff_client.get(f"{DEVICES}export/csv/", {"q": device.serial_number}))

    assert rows == [
        ["Serial number", "Model", "State", "CIK active", "CIK use", "Owner", "Activation expires at"],
        [
            device.serial_number,
            str(device.model),
            str(ActivationState.NOT_ACTIVATED.label),
            "no",
            "—",
            "",
            formats.date_format(timezone.localtime(device.activation_expires_at), "DATETIME_FORMAT"),
        ],
    ]
    assert rows[1][6].endswith(" UTC")


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"model_id": "abc"}, "model_id"),
        ({"state": "bogus"}, "Activation state"),
    ],
)
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_an_invalid_filter_is_the_lists_own_error(staff_client, fleet, params, named, fmt):
    listed = staff_client.get(DEVICES, params)

    response = staff_client.get(f"{DEVICES}export/{fmt}/", params)

    assert listed.status_code == response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert b"Filter not applied, nothing is listed." in response.content
    assert named.encode() in response.content
    assert not LogEntry.objects.filter(action=LogEntry.Action.ACCESS).exists()


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"serial_number__bogus": "1"}, id="unknown-lookup"),
        pytest.param({"model__vendor__created_at__year": "abc"}, id="invalid-value"),
    ],
)
def test_other_bad_parameters_get_the_lists_own_answer(staff_client, fleet, params):
    listed = staff_client.get(DEVICES, params)

    response = staff_client.get(f"{DEVICES}export/csv/", params)

    assert response.status_code == listed.status_code != 500
    assert not response.streaming
    assert not LogEntry.objects.filter(action=LogEntry.Action.ACCESS).exists()


def test_an_unknown_format_is_not_found(staff_client):
    assert staff_client.get(f"{DEVICES}export/pdf/").status_code == 404


# --- formula injection --------------------------------------------------------------------------------------------

FORMULAS = ["=1+1", "+1", "-1", "@SUM(A1)", "\t=cmd", "\r=cmd", '=HYPERLINK("http://evil","x")']


def test_csv_cells_that_a_spreadsheet_would_evaluate_are_quoted(staff_client):
    model = DeviceModelFactory(vendor__name="=cmd|' /C calc'!A0")
    Device.objects.bulk_create(Device(model=model, serial_number=f"F{i}", extra="") for i in range(len(FORMULAS)))
    for i, formula in enumerate(FORMULAS):
        Device.objects.filter(serial_number=f"F{i}").update(serial_number=formula)

    rows = read_csv(staff_client.get(f"{DEVICES}export/csv/", {"o": "1"}))

    assert sorted(row[0] for row in rows[1:]) == sorted("'" + formula for formula in FORMULAS)
    assert {row[1] for row in rows[1:]} == {f"'{model}"}


def test_xlsx_cells_are_strings_never_formulas(staff_client):
    model = DeviceModelFactory()
    for i, formula in enumerate(FORMULAS):
        Device.objects.create(model=model, serial_number=f"X{i}")
        Device.objects.filter(serial_number=f"X{i}").update(serial_number=formula)

    response = staff_client.get(f"{DEVICES}export/xlsx/")
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active

    cells = [row[0] for row in sheet.iter_rows(min_row=2)]
    assert {cell.data_type for cell in cells} == {"s"}
    # A carriage return is kept as OOXML's escape _x000D_ (a spreadsheet shows it as one; openpyxl leaves it).
    assert sorted(cell.value for cell in cells) == sorted(formula.replace("\r", "_x000D_") for formula in FORMULAS)


# --- who may, and the trail ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_customer_is_sent_to_the_login_page(client, fleet, fmt):
    client.force_login(CustomerFactory())

    response = client.get(f"{DEVICES}export/{fmt}/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert not LogEntry.objects.filter(action=LogEntry.Action.ACCESS).exists()


def test_staff_without_the_view_permission_are_refused(client, fleet):
    viewer = StaffFactory(username="no-view")
    viewer.groups.clear()
    client.force_login(viewer)

    assert client.get(f"{DEVICES}export/csv/").status_code == 403
    viewer.user_permissions.add(Permission.objects.get(codename="view_device"))
    assert client.get(f"{DEVICES}export/csv/").status_code == 200


def test_the_export_is_audited_with_who_what_filter_and_how_many(staff_client, staff_user, fleet):
    model, enabled = fleet

    read_csv(staff_client.get(f"{DEVICES}export/csv/", {"state": "notactivated", "model_id": model.pk}))

    entry = LogEntry.objects.get(action=LogEntry.Action.ACCESS)
    assert (entry.actor, entry.content_type.model, entry.object_repr) == (staff_user, "device", "export of devices")
    assert entry.additional_data == {
        "action": "export",
        "format": "csv",
        "query": f"state=notactivated&model_id={model.pk}",
        "rows": len(enabled),
        "columns": ["Serial number", "Model", "State", "CIK active", "CIK use", "Owner", "Activation expires at"],
    }


@pytest.mark.parametrize("name", list(LISTS))
def test_every_exporting_list_shows_both_buttons(staff_client, name):
    url, _, _ = LISTS[name]

    html = staff_client.get(url).content.decode()

    assert f'href="{url}export/csv/"' in html
    assert f'href="{url}export/xlsx/"' in html


def test_the_list_shows_the_export_buttons_with_its_filters(staff_client, fleet):
    html = staff_client.get(DEVICES, {"state": "notactivated"}).content.decode()
    box_html = staff_client.get("/admin/provisioning/settopbox/").content.decode()

    assert 'href="/admin/devices/device/export/csv/?state=notactivated"' in html
    assert 'href="/admin/devices/device/export/xlsx/?state=notactivated"' in html
    assert 'href="/admin/provisioning/settopbox/export/csv/"' in box_html
