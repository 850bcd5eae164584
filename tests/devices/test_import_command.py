from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from devices.models import Device
from tests.factories import DeviceFactory, DeviceModelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def model():
    return DeviceModelFactory(vendor__name="acme", name="stb")


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_serials", "--vendor", "acme", "--model", "stb", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_csv_import_prints_progress_and_summary(model, tmp_path):
    DeviceFactory(model=model, serial_number="A-1")
    path = tmp_path / "serials.csv"
    path.write_text("sn,extra\nA-1,old\nA-2,lot 2\n" + "x" * 200 + "\nA-3\n")

    out, err = run("--csv", str(path))

    assert out.splitlines() == [
        "2 created, 1 existing, 1 invalid",
        "  line 4: '" + "x" * 128 + "': longer than 128 characters",
    ]
    assert err.endswith("[##############################] 5/5 lines\n")
    assert Device.objects.get(model=model, serial_number="A-2").extra == "lot 2"


def test_range_import_with_enable(model):
    out, _ = run("--range", "ff00", "ff0f", "--hex", "--enable")

    assert out.strip() == "16 created, 0 existing, 0 invalid, 16 enabled"
    assert Device.objects.filter(model=model, state="notactivated").count() == 16


def test_dry_run_writes_nothing(model):
    out, _ = run("--range", "1", "9", "--dry-run")

    assert out.strip() == "9 would be created, 0 existing, 0 invalid"
    assert Device.objects.count() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--range", "9", "1"], "the range ends before it starts", id="backwards"),
        pytest.param(["--csv", "/nonexistent.csv"], "cannot read /nonexistent.csv", id="missing-file"),
    ],
)
def test_errors_are_command_errors(model, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert Device.objects.count() == 0


def test_unknown_model_is_refused():
    with pytest.raises(CommandError, match="no device model acme/stb"):
        run("--range", "1", "2")
