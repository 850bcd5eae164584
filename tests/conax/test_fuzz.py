"""Property test for the CRM.COM dialect: any body to any creation method, and any query string to show/list, gets
the envelope with a documented code, never a 5xx, and an error answer creates no request."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conax.api.crmparams import METHODS
from conax.models import Entitlement, Pairing, ProvisioningRequest
from tests.conax.support import REQUESTS, Crm, world_load

pytestmark = pytest.mark.django_db
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CODES = {
    "OK",
    "INVALID_TOKEN",
    "UNKNOWN_PARAMETER",
    "MISSING_PARAMETER",
    "INVALID_PARAMETER",
    "INVALID_IDENTIFIER",
    "NOT_FOUND",
    "SEMI_OPTIONAL_PARAMETERS",
    "CONSTRAINT_VIOLATION",
    "INVALID_FIELDS_SET",
    "INVALID_REQUEST",
}
CREATE = sorted(name for name, method in METHODS.items() if method.http == "POST")
NAMES = sorted({p.name for m in METHODS.values() for p in m.params} | {"token", "colour"})

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-5, 3000)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["S60058", "P1", "0000-0000-0008", "1234", "EXPRESS", "2030-01-01T00:00:00"])
)
identifiers = st.dictionaries(
    st.sampled_from(["id", "number", "code", "serial_number", "alternative_code", "smartcard_ca_id", "stb_ca_id", "x"]),
    scalars,
    max_size=2,
)
values = scalars | identifiers | st.lists(identifiers | scalars, max_size=3)
bodies = st.dictionaries(st.sampled_from(NAMES), values, max_size=6)


@pytest.fixture
def crm(client, staff_user) -> Crm:
    world_load()
    return Crm.login(client)


def written() -> tuple[int, int, int]:
    return ProvisioningRequest.objects.count(), Entitlement.objects.count(), Pairing.objects.count()


@FUZZ
@given(method=st.sampled_from(CREATE), body=bodies, raw=st.none() | st.binary(max_size=60))
def test_creation_answers_every_body_in_the_envelope(crm, method, body, raw):
    before = written()
    payload = raw if raw is not None else json.dumps({"token": crm.token, **body})

    response = crm.client.generic("POST", REQUESTS + method, payload, content_type="application/json")

    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {"status", "data"} and answer["status"]["code"] in CODES, answer
    if answer["status"]["code"] == "OK":
        assert ProvisioningRequest.objects.count() == before[0] + 1
    else:
        assert answer["data"] is None and written() == before


@FUZZ
@given(
    method=st.sampled_from(["show", "list"]),
    query=st.dictionaries(
        st.sampled_from(NAMES),
        st.text(max_size=12) | st.sampled_from(["1", "ADD_SUBSCRIPTIONS", "PENDING", "id,type", "0", "-1"]),
        max_size=4,
    ),
)
def test_reads_answer_every_query_in_the_envelope(crm, method, query):
    response = crm.client.get(REQUESTS + method, {"token": crm.token, **query})

    assert response.status_code == 200
    assert response.json()["status"]["code"] in CODES
