"""Property tests for the two device-facing dialects: any body gets the dialect's answer, never a 5xx, and a
refused request writes nothing but (for activation) its attempt log line."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices import services as device_services
from devices.models import Device
from provisioning.models import BoxEvent, Command, SetTopBox
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0", 2]) | json_values,
        "id": json_values,
        "method": st.sampled_from(["client.events.1.provisioningchange", "x.provisioningchange", "a.b"]) | json_values,
        "params": st.fixed_dictionaries({}, optional={"status": json_values}) | json_values,
    },
)


@pytest.fixture
def cik():
    device = device_services.device_enable(device=DeviceFactory(serial_number="FUZZ-1"))
    return device_services.device_activate(vendor=device.model.vendor.name, model=device.model.name, serial="FUZZ-1",
                                           remote_addr=None, user_agent="")  # fmt: skip


@FUZZ
@given(body=envelopes.map(json.dumps).map(str.encode) | st.binary(max_size=200))
def test_jsonrpc_push_never_fails_and_writes_only_valid_events(client, cik, body):
    events_before = BoxEvent.objects.count()

    response = client.generic("POST", "/jsonrpc", body, content_type="application/json", HTTP_X_EXOSITE_CIK=cik)

    assert response.status_code in (200, 202, 204)
    if response.status_code == 202:
        assert response.json()["error"]["code"] in (-32700, -32600, -32601, -32602)
        assert BoxEvent.objects.count() == events_before
    else:
        assert BoxEvent.objects.count() == events_before + 1
    assert SetTopBox.objects.count() <= 1 and Command.objects.filter(kind="refresh", state="QUEUED").count() <= 1


form_fields = st.sampled_from(["vendor", "model", "sn", "other"])
form_values = st.text(max_size=40) | st.sampled_from(["acme", "stb", "SN-1"])


@FUZZ
@given(
    body=st.lists(st.tuples(form_fields, form_values), max_size=5).map(
        lambda pairs: "&".join(f"{k}={v}" for k, v in pairs).encode("utf-8", "surrogatepass")
    )
    | st.binary(max_size=300),
    content_type=st.sampled_from(["application/x-www-form-urlencoded", "application/json", "text/plain", ""]),
)
def test_activation_answers_every_body_with_its_documented_codes(client, body, content_type):
    device = Device.objects.filter(serial_number="SN-1").first() or device_services.device_enable(
        device=DeviceFactory(serial_number="SN-1", model__vendor__name="acme", model__name="stb")
    )
    before = Device.objects.filter(pk=device.pk).values("state", "cik_digest").get()

    response = client.generic("POST", "/provision/activate", body, content_type=content_type)

    assert response.status_code in (200, 400, 403, 404, 409, 429)
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    after = Device.objects.filter(pk=device.pk).values("state", "cik_digest").get()
    if response.status_code != 200:
        assert after == before
