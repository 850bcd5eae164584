"""Property tests for the two device-facing dialects: any body gets the dialect's answer, never a 5xx, and a
refused request writes nothing but (for activation) its attempt log line."""

from __future__ import annotations

import collections
import json
import sys
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices import services as device_services
from devices.models import ActivationAttempt, Device
from provisioning.models import BoxEvent, Command, SetTopBox
from tests.factories import DeviceFactory
from tests.fuzzing import EXAMPLES, IMPOSSIBLE_DATES

pytestmark = [pytest.mark.django_db, pytest.mark.fuzz]
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Per test: cases run, 5xx answers, refused requests that wrote something. Printed at the end of the module.
STATS: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

# What the sanitising layers exist for: NUL, unpaired surrogates, huge integers (and deep nesting, below).
hostile_text = st.lists(
    st.text(max_size=6)
    | st.sampled_from(["\x00", "\ud800", "\udfff", "a\x00b", "\U0001f4fa", "\u2028", "%00", *IMPOSSIBLE_DATES]),
    max_size=4,
).map("".join)
huge_integers = st.sampled_from([2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**30, -(10**100)]) | st.integers()
json_values = st.recursive(
    st.none() | st.booleans() | huge_integers | st.floats(allow_nan=False) | hostile_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(hostile_text, children, max_size=4),
    max_leaves=20,
)


def deep(value, levels: int):
    for _ in range(levels):
        value = [value]
    return value


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    for name, counts in STATS.items():
        print(
            f"\nfuzz {name}: {counts['cases']} cases, {counts['5xx']} x 5xx, {counts['writes']} writes on errors",
            file=sys.stderr,
        )


envelopes = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0", 2]) | json_values,
        "id": json_values,
        "method": st.sampled_from(["client.events.1.provisioningchange", "x.provisioningchange", "a.b"]) | json_values,
        "params": st.fixed_dictionaries({}, optional={"status": json_values | huge_integers}) | json_values,
        "pad": st.builds(deep, json_values, st.integers(0, 40)),
    },
)


@pytest.fixture
def cik():
    device = device_services.device_enable(device=DeviceFactory(serial_number="FUZZ-1"))
    return device_services.device_activate(
        vendor=device.model.vendor.name, model=device.model.name, serial="FUZZ-1", remote_addr=None, user_agent=""
    )


@FUZZ
@given(body=envelopes.map(json.dumps).map(str.encode) | st.binary(max_size=200))
def test_jsonrpc_push_never_fails_and_writes_only_valid_events(client, cik, body):
    events_before = BoxEvent.objects.count()

    response = client.generic("POST", "/jsonrpc", body, content_type="application/json", HTTP_X_EXOSITE_CIK=cik)

    stats = STATS["jsonrpc"]
    stats["cases"] += 1
    stats["5xx"] += response.status_code >= 500
    if response.status_code == 202:
        stats["writes"] += BoxEvent.objects.count() != events_before
    assert response.status_code in (200, 202, 204)
    if response.status_code == 202:
        assert response.json()["error"]["code"] in (-32700, -32600, -32601, -32602)
        assert BoxEvent.objects.count() == events_before
    else:
        assert BoxEvent.objects.count() == events_before + 1
    assert SetTopBox.objects.count() <= 1 and Command.objects.filter(kind="refresh", state="QUEUED").count() <= 1


form_fields = st.sampled_from(["vendor", "model", "sn", "other"]) | hostile_text
form_values = hostile_text | st.sampled_from(["acme", "stb", "SN-1", str(2**64), "9" * 400])


def _escaped(text: str) -> str:
    """Percent-encoding as a form encoder would write it; surrogates become their (invalid) UTF-8 bytes."""
    return quote(text, safe="", errors="surrogatepass")


form_bodies = st.lists(st.tuples(form_fields, form_values), max_size=5).flatmap(
    lambda pairs: st.sampled_from(
        [
            "&".join(f"{_escaped(k)}={_escaped(v)}" for k, v in pairs).encode(),
            "&".join(f"{k}={v}" for k, v in pairs).encode("utf-8", "surrogatepass"),
        ]
    )
)


@FUZZ
@given(
    body=form_bodies | st.binary(max_size=300),
    content_type=st.sampled_from(["application/x-www-form-urlencoded", "application/json", "text/plain", ""]),
)
def test_activation_answers_every_body_with_its_documented_codes(client, body, content_type):
    device = Device.objects.filter(serial_number="SN-1").first() or device_services.device_enable(
        device=DeviceFactory(serial_number="SN-1", model__vendor__name="acme", model__name="stb")
    )
    before = Device.objects.filter(pk=device.pk).values("state", "cik_digest").get()
    devices_before, attempts_before = Device.objects.count(), ActivationAttempt.objects.count()

    response = client.generic("POST", "/provision/activate", body, content_type=content_type)

    after = Device.objects.filter(pk=device.pk).values("state", "cik_digest").get()
    stats = STATS["activation"]
    stats["cases"] += 1
    stats["5xx"] += response.status_code >= 500
    if response.status_code != 200:
        # A refusal writes its attempt log line (the dialect logs every attempt) and nothing else.
        stats["writes"] += after != before or Device.objects.count() != devices_before
        stats["writes"] += ActivationAttempt.objects.count() > attempts_before + 1
    assert response.status_code in (200, 400, 403, 404, 409, 429)
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert "\x00" not in "".join(ActivationAttempt.objects.values_list("serial_number", flat=True))
    if response.status_code != 200:
        assert after == before
        assert Device.objects.count() == devices_before
        assert ActivationAttempt.objects.count() <= attempts_before + 1
