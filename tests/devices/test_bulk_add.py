"""All-or-nothing bulk add (the Exosite management API's serial lists, CSV and ranges): few queries whatever the
size, each new device audited exactly as a save would record it, nothing written on a conflict."""

from __future__ import annotations

import pytest
from auditlog.diff import model_instance_diff
from auditlog.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext

from devices import services
from devices.exceptions import DeviceExists, InvalidImport
from devices.models import Device
from tests.factories import DeviceFactory, DeviceModelFactory

pytestmark = pytest.mark.django_db


def test_five_thousand_serials_in_a_few_queries_each_audited_as_a_save_would():
    model = DeviceModelFactory()
    rows = [(n, f"SN{n:06d}", "x") for n in range(1, 5001)]

    with CaptureQueriesContext(connection) as queries:
        services.devices_add(model=model, rows=rows)

    assert len(queries) <= 5 * 4 + 5  # per batch of 1000: the INSERT, the audit INSERT, a savepoint pair
    assert Device.objects.filter(model=model).count() == 5000
    device = Device.objects.get(serial_number="SN000777")
    expected = model_instance_diff(None, device, use_json_for_changes=True)
    entry = LogEntry.objects.get_for_object(device).get()
    assert entry.action == LogEntry.Action.CREATE
    assert entry.changes == {name: list(change) for name, change in expected.items()}


@pytest.mark.parametrize(
    ("rows", "error", "message"),
    [
        ([(1, "NEW-1", ""), (2, "TAKEN", ""), (3, "NEW-2", "")], DeviceExists, "serial number already exists: TAKEN"),
        ([(1, "NEW-1", ""), (2, "NEW-1", "")], DeviceExists, "serial number already exists: NEW-1"),
        ([(1, "NEW-1", ""), (2, "bad serial", "")], InvalidImport, "line 2: contains a space"),
    ],
    ids=["existing", "repeated", "invalid"],
)
def test_a_conflict_or_a_bad_row_writes_nothing(rows, error, message):
    model = DeviceModelFactory()
    DeviceFactory(model=model, serial_number="TAKEN")
    entries = LogEntry.objects.count()

    with pytest.raises(error) as raised:
        services.devices_add(model=model, rows=rows)

    assert raised.value.message == message
    assert list(Device.objects.filter(model=model).values_list("serial_number", flat=True)) == ["TAKEN"]
    assert LogEntry.objects.count() == entries
