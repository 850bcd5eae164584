"""The staff activity page's filters (/admin/activity/): each narrows the list, and each invalid value is a 400 that
shows the page with what is wrong in plain words and no rows, never the filter silently left out."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.utils import timezone

from conax.models import ProvisioningRequest
from conax.models import SetTopBox as CasBox
from provisioning.models import BoxEvent, Command
from provisioning.models import SetTopBox as Box
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db

ROW = re.compile(
    r"<tr><td><time[^>]*>[^<]*</time></td><td>(\w+)</td>.*?data-field=\"state\">([^<]*)</td>\s*<td>([^<]*)</td>", re.S
)


@pytest.fixture
def fleet():
    """Two devices of two vendors, each with one event, one finished command (and one still queued, never listed)
    and one executed Conax request; one request is about no box at all."""
    acme = DeviceFactory(model__vendor__name="acme", model__name="a1", serial_number="STB-ACME")
    globex = DeviceFactory(model__vendor__name="globex", model__name="g1", serial_number="STB-GLOBEX")
    now = timezone.now()
    for device, status, command_state, request_state in (
        (acme, 200, "SUCCEEDED", "COMPLETED"),
        (globex, 500, "FAILED", "REJECTED"),
    ):
        box = Box.objects.create(device=device, thunder_host="127.0.0.1")
        BoxEvent.objects.create(box=box, status=status, source="push")
        Command.objects.create(box=box, kind="refresh", state=command_state, finished_at=now)
        Command.objects.create(box=box, kind="refresh", state="QUEUED")
        cas_box = CasBox.objects.create(serial_number=device.serial_number, ca_id=f"CA-{device.pk}", device=device)
        ProvisioningRequest.objects.create(
            type="ADD_SUBSCRIPTIONS",
            scheduled_date=now,
            executed_date=now + timedelta(seconds=1),
            life_cycle_state=request_state,
            set_top_box=cas_box,
        )
    ProvisioningRequest.objects.create(
        type="CANCEL_SUBSCRIPTIONS", scheduled_date=now, executed_date=now, life_cycle_state="COMPLETED"
    )


def rows(response) -> list[tuple[str, str, str]]:
    """(kind, state, device) of each row listed, in the order shown."""
    return [(kind, state, " ".join(device.split())) for kind, state, device in ROW.findall(response.content.decode())]


def listed(client, **query) -> set[tuple[str, str, str]]:
    response = client.get("/admin/activity/", {**query, "fragment": "1"})
    assert response.status_code == 200
    return set(rows(response))


ACME_EVENT = ("event", "200", "acme a1 STB-ACME")
ACME_COMMAND = ("command", "SUCCEEDED", "acme a1 STB-ACME")
ACME_REQUEST = ("request", "COMPLETED", "acme a1 STB-ACME")
GLOBEX_EVENT = ("event", "500", "globex g1 STB-GLOBEX")
GLOBEX_COMMAND = ("command", "FAILED", "globex g1 STB-GLOBEX")
GLOBEX_REQUEST = ("request", "REJECTED", "globex g1 STB-GLOBEX")
BOXLESS_REQUEST = ("request", "COMPLETED", "—")
EVERYTHING = {
    ACME_EVENT,
    ACME_COMMAND,
    ACME_REQUEST,
    GLOBEX_EVENT,
    GLOBEX_COMMAND,
    GLOBEX_REQUEST,
    BOXLESS_REQUEST,
}

NARROWS = [
    pytest.param({}, EVERYTHING, id="no-filter"),
    pytest.param({"vendor": "globex"}, {GLOBEX_EVENT, GLOBEX_COMMAND, GLOBEX_REQUEST}, id="vendor"),
    pytest.param({"vendor": "  globex "}, {GLOBEX_EVENT, GLOBEX_COMMAND, GLOBEX_REQUEST}, id="vendor-stripped"),
    pytest.param({"vendor": "initech"}, set(), id="vendor-no-device-has"),
    pytest.param({"model": "a1"}, {ACME_EVENT, ACME_COMMAND, ACME_REQUEST}, id="model"),
    pytest.param({"vendor": "acme", "model": "g1"}, set(), id="vendor-and-model"),
    pytest.param({"type": "event"}, {ACME_EVENT, GLOBEX_EVENT}, id="type-event"),
    pytest.param({"type": "command"}, {ACME_COMMAND, GLOBEX_COMMAND}, id="type-command"),
    pytest.param({"type": "request"}, {ACME_REQUEST, GLOBEX_REQUEST, BOXLESS_REQUEST}, id="type-request"),
    pytest.param({"type": ""}, EVERYTHING, id="type-any"),
    pytest.param({"state": "500"}, {GLOBEX_EVENT}, id="state-status-code"),
    pytest.param({"state": "FAILED"}, {GLOBEX_COMMAND}, id="state-of-commands"),
    pytest.param({"state": "COMPLETED"}, {ACME_REQUEST, BOXLESS_REQUEST}, id="state-of-requests"),
    pytest.param({"type": "event", "state": "200"}, {ACME_EVENT}, id="type-and-state"),
    pytest.param({"type": "command", "state": "QUEUED"}, set(), id="state-no-finished-command-is-in"),
    pytest.param({"vendor": "acme", "type": "request", "state": "COMPLETED"}, {ACME_REQUEST}, id="all-three"),
]


@pytest.mark.parametrize(("query", "expected"), NARROWS)
def test_each_filter_narrows_the_list(client, staff_user, fleet, query, expected):
    client.force_login(staff_user)

    assert listed(client, **query) == expected


def test_the_rows_are_newest_first(client, staff_user, fleet):
    client.force_login(staff_user)

    shown = rows(client.get("/admin/activity/", {"type": "request", "fragment": "1"}))

    assert [row[2] for row in shown][-1] == "—"  # executed a second before the others


ARABIC_500 = "\u0665\u0660\u0660"  # str.isdigit() says yes; int() would read it
EVENT_STATES = "use a status code, a number such as 200 or 500."
INVALID = [
    pytest.param(
        {"type": "events"},
        "Type: “events” is not a type of activity: choose event, command or request (or any).",
        id="unknown-type",
    ),
    pytest.param(
        {"type": "event", "state": "FAILED"}, f"State: “FAILED” is not a state of an event: {EVENT_STATES}", id="event"
    ),
    pytest.param(
        {"type": "event", "state": "99999999999"},
        f"State: “99999999999” is not a state of an event: {EVENT_STATES}",
        id="event-status-out-of-range",
    ),
    pytest.param(
        {"type": "event", "state": ARABIC_500},
        f"State: “{ARABIC_500}” is not a state of an event: {EVENT_STATES}",
        id="digits-but-not-ascii",
    ),
    pytest.param(
        {"type": "command", "state": "COMPLETED"},
        "State: “COMPLETED” is not a state of a command: use QUEUED, SENT, SUCCEEDED or FAILED.",
        id="command",
    ),
    pytest.param(
        {"type": "request", "state": "completed"},
        "State: “completed” is not a state of a Conax request: use PENDING, COMPLETED or REJECTED.",
        id="request-case-matters",
    ),
    pytest.param(
        {"state": "DONE"},
        "State: “DONE” is not a state of any activity: use a status code, a number such as 200 or 500 for events;"
        " QUEUED, SENT, SUCCEEDED or FAILED for commands; PENDING, COMPLETED or REJECTED for Conax requests.",
        id="any-type",
    ),
    pytest.param(
        {"vendor": "v" * 65}, "Vendor: Ensure this value has at most 64 characters (it has 65).", id="vendor-too-long"
    ),
    pytest.param(
        {"model": "m" * 65}, "Model: Ensure this value has at most 64 characters (it has 65).", id="model-too-long"
    ),
    pytest.param(
        {"state": "S" * 65}, "State: Ensure this value has at most 64 characters (it has 65).", id="state-too-long"
    ),
]


@pytest.mark.parametrize(("query", "message"), INVALID)
def test_an_invalid_filter_is_a_400_page_that_says_what_is_wrong(client, staff_user, fleet, query, message):
    client.force_login(staff_user)

    page = client.get("/admin/activity/", query)
    fragment = client.get("/admin/activity/", {**query, "fragment": "1"})

    body = page.content.decode()
    errors = re.search(r'<div class="errornote" id="filter-errors" role="alert">(.*?)</div>', body, re.S)
    assert (page.status_code, fragment.status_code) == (400, 400)
    assert errors is not None and " ".join(unescape(re.sub(r"<[^>]+>", "", errors.group(1))).split()).endswith(message)
    assert "These filters cannot be applied, so nothing is listed." in errors.group(1)
    assert '<form method="get" class="activity-filters"' in body and 'aria-invalid="true"' in body
    assert rows(page) == [] and rows(fragment) == [] and 'id="live-panel"' not in body
    assert "<html" not in fragment.content.decode() and 'id="filter-errors"' in fragment.content.decode()


def test_an_invalid_filter_keeps_what_was_typed(client, staff_user, fleet):
    client.force_login(staff_user)

    body = client.get("/admin/activity/", {"vendor": "acme", "state": "DONE"}).content.decode()

    assert 'name="vendor" value="acme"' in body and 'name="state" value="DONE"' in body
    assert 'aria-invalid="true" aria-describedby="error-state"' in body and 'id="error-state"' in body
    assert 'name="vendor" value="acme" size="12">' in body  # the valid one is not marked


def test_filtering_costs_no_more_queries_than_listing_everything(
    client, staff_user, fleet, django_assert_max_num_queries
):
    client.force_login(staff_user)

    with django_assert_max_num_queries(12):
        client.get("/admin/activity/", {"vendor": "acme", "model": "a1", "state": "COMPLETED"})
    with django_assert_max_num_queries(9):  # no list is read at all
        client.get("/admin/activity/", {"type": "nope"})
