"""The customer pages in plain words: what a customer reads on "My devices", a device page and their live panels
holds no internal code (states, provision types, request types, status codes), times come through ``{% when %}``,
and a box shows only its own smartcards."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.utils import timezone

from conax.models import Pairing, ProvisioningRequest, SetTopBox, Smartcard, Subscription
from devices import services as device_services
from devices.models import Device
from portal.templatetags import words
from provisioning.models import BoxEvent
from provisioning.models import SetTopBox as Box
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db

CODES = re.compile(
    r"notactivated|notadded|NOT_PROVISIONED|IN_PROGRESS|PROVISIONED|CORRUPTED|HARDWARE|CRYPTANIUM|PENDING|COMPLETED"
    r"|REJECTED|[A-Z]+_[A-Z_]+|provisioningchange|\bcode\b|\(CA |RT\.\d"
)


class VisibleText(HTMLParser):
    """The words a reader sees without opening anything: no tags, no attributes, nothing inside a closed <details>
    but its <summary>, no script or style."""

    def __init__(self) -> None:
        super().__init__()
        self.words: list[str] = []
        self.hidden = 0  # depth inside what is not shown
        self.stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.stack.append(tag)
        attributes = dict(attrs)
        if tag in ("script", "style") or "hidden" in attributes or (tag == "details" and "open" not in attributes):
            self.hidden += 1
            self.stack[-1] = tag + ":hidden"
        elif tag == "summary" and self.hidden:
            self.hidden -= 1
            self.stack[-1] = "summary:shown"

    def handle_endtag(self, tag):
        while self.stack:
            top = self.stack.pop()
            if top.endswith(":hidden"):
                self.hidden -= 1
            elif top == "summary:shown":
                self.hidden += 1
            if top.split(":")[0] == tag:
                break

    def handle_data(self, data):
        if not self.hidden and data.strip():
            self.words.append(data.strip())


class EveryWord(VisibleText):
    """Every word of the page, folded away or not (a closed <details> too); still no script or style."""

    def handle_starttag(self, tag, attrs):
        self.stack.append(tag)
        if tag in ("script", "style"):
            self.hidden += 1
            self.stack[-1] = tag + ":hidden"


def visible(html: str, parser: VisibleText | None = None) -> str:
    parser = parser or VisibleText()
    parser.feed(html)
    # Dates and times are the one format with the zone; they are not codes.
    text = re.sub(r"\s+([.,:;)])", r"\1", " ".join(parser.words))
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [A-Z]+", "<when>", text)


@pytest.fixture
def fleet(customer_user):
    """Two boxes of one customer on one subscription: the first paired with a card, the second not paired, with a
    box in every state the pages word."""
    subscription = Subscription.objects.create(number="SUB-WORDS", customer=customer_user)
    pairing = Pairing.objects.create(subscription=subscription)
    paired = device_services.device_enable(device=DeviceFactory(owner=customer_user, serial_number="STB-WORDS-1"))
    Device.objects.filter(pk=paired.pk).update(state="activated", activated_at=timezone.now())
    unpaired = DeviceFactory(owner=customer_user, serial_number="STB-WORDS-2")
    box = Box.objects.create(
        device=paired, thunder_host="127.0.0.1", last_event_status=599, last_event_at=timezone.now()
    )
    box.type_statuses.create(
        provision_type="HARDWARE",
        kind="RT.2",
        state="CORRUPTED",
        reason="RT_CORRUPT_CREDS. Credentials failed the integrity check",
        refreshed_at=timezone.now(),
    )
    box.type_statuses.create(
        provision_type="CRYPTANIUM", kind="CRYPTANIUM.4", state="IN_PROGRESS", reason="", refreshed_at=timezone.now()
    )
    BoxEvent.objects.create(box=box, status=599, source="push")
    BoxEvent.objects.create(box=box, status=200, source="subscription")
    SetTopBox.objects.create(
        serial_number="STB-WORDS-1", ca_id="CA-B1", device=paired, subscription=subscription, pairing=pairing
    )
    SetTopBox.objects.create(serial_number="STB-WORDS-2", ca_id="CA-B2", device=unpaired, subscription=subscription)
    card = Smartcard.objects.create(serial_number="SC-MINE", ca_id="CA-C1", subscription=subscription, pairing=pairing)
    Smartcard.objects.create(serial_number="SC-SPARE", ca_id="CA-C2", subscription=subscription)
    for kind, state in (("CREATE_PAIRING", "COMPLETED"), ("DISPLAY_FINGERPRINT", "REJECTED")):
        ProvisioningRequest.objects.create(
            type=kind,
            scheduled_date=timezone.now(),
            smartcard=card,
            life_cycle_state=state,
            executed_date=timezone.now(),
        )
    return paired, unpaired


@pytest.mark.parametrize("url", ["/", "/panel/", "device", "device-panel", "unpaired"], ids=str)
def test_what_a_customer_reads_holds_no_internal_code(client, customer_user, fleet, url):
    paired, unpaired = fleet
    url = {
        "device": f"/devices/{paired.pk}/",
        "device-panel": f"/devices/{paired.pk}/panel/",
        "unpaired": f"/devices/{unpaired.pk}/",
    }.get(url, url)
    client.force_login(customer_user)

    text = visible(client.get(url).content.decode(), EveryWord())

    assert CODES.findall(text) == []
    assert "Y-m-d" not in text and re.findall(r"\bNone\b(?! yet)", text) == []
    references = {str(number) for number in ProvisioningRequest.objects.values_list("number", flat=True)}
    assert "599" not in references and re.findall(r"\b599\b", text) == []  # the box's status code


def test_the_device_page_says_it_in_words(client, customer_user, fleet):
    paired, _ = fleet
    client.force_login(customer_user)

    text = visible(client.get(f"/devices/{paired.pk}/").content.decode())

    assert "Activated since <when>" in text
    assert "Last heard from your box just now (<when>). Its last key update failed." in text
    assert "Box security keys Damaged, needs reinstalling" in text and "Content protection keys Installing" in text
    assert "<when>: Key update failed." in text and "Key update went through" in text
    assert "Pair the card with the box Done" in text and "Show an identification mark on screen Refused" in text
    assert "integrity check" not in text  # the box's own explanation is jargon ("NOT NEW prefetch creds"): not shown
    assert "Details for support" not in text


def test_a_box_shows_only_its_own_smartcards(client, customer_user, fleet):
    paired, unpaired = fleet
    client.force_login(customer_user)

    mine = visible(client.get(f"/devices/{paired.pk}/").content.decode())
    other = visible(client.get(f"/devices/{unpaired.pk}/").content.decode())

    assert "Card number SC-MINE" in mine and "SC-SPARE" not in mine
    assert "SC-MINE" not in other and "SC-SPARE" not in other and "Smartcard pairing: Not paired yet" in other


def test_no_code_is_folded_away_either(client, customer_user, fleet):
    paired, _ = fleet
    client.force_login(customer_user)

    html = client.get(f"/devices/{paired.pk}/panel/").content.decode()

    assert "<details" not in html and 'data-field="last-event-status"' not in html
    assert "RT_CORRUPT_CREDS" not in html and "integrity" not in html and "RT.2" not in html and ">599<" not in html
    assert 'data-field="last-heard">Last heard from your box' in html


def test_my_devices_says_when_each_box_was_last_heard(client, customer_user, fleet):
    client.force_login(customer_user)

    text = visible(client.get("/").content.decode())

    assert "STB-WORDS-1" in text and "Activated" in text
    assert "STB-WORDS-2" in text and "Not yet enabled by your provider" in text
    assert "Last heard just now (<when>). Its last key update failed." in text


@pytest.mark.parametrize(
    ("table", "codes"),
    [
        (words.ACTIVATION, ["notadded", "notactivated", "activated", "expired", "disabled"]),
        (words.PROVISION_STATE, ["NOT_PROVISIONED", "IN_PROGRESS", "PROVISIONED", "CORRUPTED"]),
        (words.PROVISION_TYPE, ["HARDWARE", "CRYPTANIUM"]),
        (words.REQUEST_STATE, ["PENDING", "COMPLETED", "REJECTED"]),
    ],
    ids=["activation", "provision-state", "provision-type", "request-state"],
)
def test_every_code_has_its_words(table, codes):
    assert sorted(table) == sorted(codes)


def test_every_conax_request_type_has_its_words():
    from conax.choices import RequestType

    assert sorted(words.REQUEST_TYPE) == sorted(RequestType.values)


@pytest.mark.parametrize(
    ("reason", "said"),
    [
        ("RT_NO_CREDS. No credentials present on the device", "No credentials present on the device"),
        ("RT_NO_CREDS", ""),
        ("", ""),
    ],
    ids=["code-then-words", "code-alone", "empty"],
)
def test_a_reason_loses_its_leading_code(reason, said):
    assert words.reason_words(reason) == said
