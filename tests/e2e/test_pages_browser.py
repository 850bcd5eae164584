"""The customer pages in a real browser (Debian's Chromium, Playwright) against a real uvicorn process: live refresh
keeps the keyboard focus and announces only changes, stacked rows on a phone keep their labels with nothing wider
than the screen, the branded 404, the password reset journey (the email read from the server's console), and Redoc
under the CSP. Screenshots at desktop and phone size go to ``test-artifacts/pages-*.png``."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from conax.models import Pairing, ProvisioningRequest, SetTopBox, Smartcard, Subscription
from devices.models import Device
from provisioning.models import BoxEvent
from provisioning.models import SetTopBox as Box
from tests.conftest import REPO, clean_env, free_port, subprocess_database_url, wait_serving
from tests.e2e.support import ARTIFACTS, DESKTOP, PHONE, Watched, log_in_page, shot, stop
from tests.factories import CustomerFactory, DeviceFactory, DeviceModelFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}
POLL_SECONDS = 1
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
UVICORN = [sys.executable, "-m", "uvicorn", "portal.asgi:application", "--host", "127.0.0.1", "--no-access-log"]
UVICORN += ["--lifespan", "off"]


@pytest.fixture
def server(tmp_path, redis_db):
    """uvicorn on the test database, re-reading live panels every POLL_SECONDS, its console (where the embedded
    default's email backend writes) kept in a file."""
    console = tmp_path / "console.txt"
    env = clean_env(
        PORTAL_VAR_DIR=str(tmp_path),
        DATABASE_URL=subprocess_database_url(),
        DATABASE_CONN_MAX_AGE="0",
        REDIS_URL=redis_db,
        LOG_LEVEL="WARNING",
        LIVE_POLL_SECONDS=str(POLL_SECONDS),
    )
    for attempt in range(3):  # a free port can be taken by another process before uvicorn binds it: take another
        port = free_port()
        with console.open("wb") as out:
            proc = subprocess.Popen(
                [*UVICORN, "--port", str(port)],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_serving(base, proc)
            break
        except AssertionError:
            if attempt == 2 or b"address already in use" not in console.read_bytes():
                raise
    yield base, console
    stop(proc)


@pytest.fixture
def customer_fleet():
    """Erin's two set-top boxes, the first activated, paired with a card, with keys and requests to show. Its times
    are 3 h 5 min old: their relative words ("3 h 5 min ago") stay the same for a minute, as the panel then does."""
    then = timezone.now() - timedelta(hours=3, minutes=5, seconds=1)
    erin = CustomerFactory(username="erin", email="erin@example.com")
    model = DeviceModelFactory(vendor__name="acme", name="x1")
    first = DeviceFactory(owner=erin, serial_number="STB-ERIN-1", model=model)
    Device.objects.filter(pk=first.pk).update(state="activated", activated_at=then - timedelta(days=1))
    second = DeviceFactory(owner=erin, serial_number="STB-ERIN-2", model=model)
    box = Box.objects.create(device=first, thunder_host="127.0.0.1", last_event_status=200, last_event_at=then)
    for kind, state in (("HARDWARE", "PROVISIONED"), ("CRYPTANIUM", "IN_PROGRESS")):
        box.type_statuses.create(provision_type=kind, kind="RT.2", state=state, reason="RT_X. Words", refreshed_at=then)
    event = BoxEvent.objects.create(box=box, status=200, source="push")
    BoxEvent.objects.filter(pk=event.pk).update(received_at=then)
    subscription = Subscription.objects.create(number="SUB-ERIN", customer=erin)
    pairing = Pairing.objects.create(subscription=subscription)
    SetTopBox.objects.create(
        serial_number="STB-ERIN-1", ca_id="B1", device=first, subscription=subscription, pairing=pairing
    )
    card = Smartcard.objects.create(serial_number="SC-ERIN", ca_id="C1", subscription=subscription, pairing=pairing)
    request = ProvisioningRequest.objects.create(
        type="CREATE_PAIRING", scheduled_date=then, smartcard=card, life_cycle_state="COMPLETED", executed_date=then
    )
    ProvisioningRequest.objects.filter(pk=request.pk).update(created_date=then)
    return first, second, box


def _box_reports(box, status: int) -> None:
    """The box's next provisioning event, as the listener records it (a second after the others: same words)."""
    at = box.last_event_at + timedelta(seconds=1)
    event = BoxEvent.objects.create(box=box, status=status, source="push")
    BoxEvent.objects.filter(pk=event.pk).update(received_at=at)
    Box.objects.filter(pk=box.pk).update(last_event_status=status, last_event_at=at)


def _log_in(browser, base: str, size: str = "desktop") -> Watched:
    watched = Watched(browser, VIEWPORTS[size])
    log_in_page(watched.page, base, "erin")
    return watched


# Counts every change to the status line (its aria-live region) and to the panel, from now on.
WATCH_MUTATIONS = """() => {
  window.__announced = 0; window.__panelChanges = 0;
  new MutationObserver((m) => { window.__announced += m.length; })
    .observe(document.querySelector(".live-status"), {subtree: true, childList: true, characterData: true});
  new MutationObserver((m) => { window.__panelChanges += m.length; })
    .observe(document.getElementById("live-panel"),
             {subtree: true, childList: true, characterData: true, attributes: true});
}"""


def _wait_refreshes(page, count: int = 2) -> None:
    """Until the panel has been re-read ``count`` more times (each poll is one fetch of the panel URL)."""
    seen = []
    page.on("requestfinished", lambda request: seen.append(request.url) if "/panel/" in request.url else None)
    deadline = time.monotonic() + count * POLL_SECONDS * 4
    while len(seen) < count and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert len(seen) >= count, f"the panel was re-read {len(seen)} times"
    page.wait_for_timeout(200)  # the last answer is applied


def test_a_focused_link_keeps_the_focus_across_refreshes_and_nothing_unchanged_is_announced(
    server, browser, customer_fleet
):
    from playwright.sync_api import expect

    base, _ = server
    first, _, box = customer_fleet
    watched = _log_in(browser, base)
    page = watched.page
    expect(page.locator("#live-updated")).to_have_text("Live updates: on")
    link = page.locator(f"#device-link-{first.pk}")
    link.focus()
    page.evaluate("document.activeElement.__mark = 'the same node'")
    page.evaluate(WATCH_MUTATIONS)

    _wait_refreshes(page)  # nothing changed
    unchanged = page.evaluate("[window.__announced, window.__panelChanges]")
    focused = page.evaluate("[document.activeElement.id, document.activeElement.__mark]")

    _box_reports(box, 500)  # now the panel differs
    expect(page.locator("#live-panel")).to_contain_text("Its last key update failed.", timeout=5000)
    page.wait_for_timeout(300)
    changed = page.evaluate("[window.__announced, window.__panelChanges]")
    still = page.evaluate("[document.activeElement.id, document.activeElement.__mark]")
    shot(page, "pages-focus-kept")

    assert unchanged == [0, 0]
    assert focused == still == [f"device-link-{first.pk}", "the same node"]
    assert changed[0] >= 1 and changed[1] >= 1
    assert re.fullmatch(r"Live updates: on — changed at \d\d:\d\d:\d\d \S+", page.locator("#live-updated").inner_text())
    assert watched.problems() == []


def test_a_ticking_relative_time_is_patched_in_but_not_announced(server, browser, customer_fleet):
    from playwright.sync_api import expect

    base, _ = server
    first, _, box = customer_fleet
    Box.objects.filter(pk=box.pk).update(last_event_at=timezone.now() - timedelta(seconds=12))  # "12 s ago", "13 s ago"
    watched = _log_in(browser, base)
    page = watched.page
    page.goto(f"{base}/devices/{first.pk}/")
    expect(page.locator("#live-updated")).to_have_text("Live updates: on")
    before = page.locator('[data-field="last-heard"] time').inner_text()
    page.evaluate(WATCH_MUTATIONS)

    _wait_refreshes(page, 3)
    after = page.locator('[data-field="last-heard"] time').inner_text()
    announced, patched = page.evaluate("[window.__announced, window.__panelChanges]")

    assert re.fullmatch(r"\d+ s ago", before) and re.fullmatch(r"\d+ s ago", after) and before != after
    assert patched >= 1 and announced == 0
    assert page.locator("#live-updated").inner_text() == "Live updates: on"
    assert watched.problems() == []


def test_news_from_the_box_is_patched_into_the_same_line_in_words(server, browser, customer_fleet):
    from playwright.sync_api import expect

    base, _ = server
    first, _, box = customer_fleet
    watched = _log_in(browser, base)
    page = watched.page
    page.goto(f"{base}/devices/{first.pk}/")
    expect(page.locator("#live-updated")).to_have_text("Live updates: on")
    heard = page.locator('[data-field="last-heard"]')
    heard.evaluate("(node) => { node.__mark = 'the same node'; }")

    _box_reports(box, 503)
    expect(heard).to_contain_text("Its last key update failed.", timeout=5000)
    _wait_refreshes(page)
    shot(page, "pages-device-news")

    assert heard.evaluate("(node) => node.__mark") == "the same node"  # patched in place, not rebuilt
    text = page.locator("main").inner_text()
    assert "503" not in text and "provisioningchange" not in text  # the news in words, no code
    assert page.locator("details").count() == 0
    assert watched.problems() == []


@pytest.mark.parametrize("size", VIEWPORTS)
def test_the_pages_fit_the_screen_and_stacked_rows_keep_their_labels(server, browser, customer_fleet, size):
    from playwright.sync_api import expect

    base, _ = server
    first, _, _ = customer_fleet
    watched = _log_in(browser, base, size)
    page = watched.page
    results = {}
    for name, path in {"my-devices": "/", "device": f"/devices/{first.pk}/"}.items():
        page.goto(base + path)
        expect(page.locator("#live-updated")).to_have_text("Live updates: on")
        shot(page, f"pages-{name}-{size}")
        results[name] = page.evaluate(
            """() => ({
              wide: document.documentElement.scrollWidth, screen: window.innerWidth,
              labels: [...document.querySelectorAll("#live-panel td[data-label]")].map((td) => [
                td.dataset.label, getComputedStyle(td, "::before").content, getComputedStyle(td).display]),
              unlabelled: [...document.querySelectorAll("#live-panel td:not([data-label]):not([colspan])")].length,
            })"""
        )

    for name, found in results.items():
        assert found["wide"] <= found["screen"], f"{name} is wider than the screen"
        assert found["labels"] and found["unlabelled"] == 0
        for label, before, display in found["labels"]:
            if size == "phone":
                assert (before, display) == (f'"{label}: "', "block")
            else:
                assert (before, display) == ("none", "table-cell")
    assert watched.problems() == []


@pytest.mark.parametrize("size", VIEWPORTS)
def test_the_404_page_leads_back_to_my_devices(server, browser, customer_fleet, size):
    base, _ = server
    watched = _log_in(browser, base, size)
    page = watched.page

    response = page.goto(f"{base}/devices/999999/")
    shot(page, f"pages-404-{size}")
    wide = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    heading = page.locator("h1").first.inner_text()
    page.get_by_role("link", name="Back to My devices").click()
    page.wait_for_load_state("networkidle")

    assert response.status == 404
    assert heading == "We could not find that page"
    assert wide
    assert page.url == f"{base}/"
    assert watched.problems() == []


def test_a_customer_resets_the_password_in_the_browser(server, browser, customer_fleet):
    from playwright.sync_api import expect

    base, console = server
    new_password = "erin-chose-a-new-Password-4"
    watched = Watched(browser, PHONE)
    page = watched.page
    page.goto(f"{base}/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    shot(page, "pages-reset-form-phone")
    page.get_by_label("Email address").fill("erin@example.com")
    page.get_by_role("button", name="Send the link").click()
    expect(page.locator("h1")).to_have_text("Check your email")
    shot(page, "pages-reset-sent-phone")

    link = _wait_link(console, base)
    page.goto(link)
    expect(page.locator("h1")).to_have_text("Choose a new password")
    shot(page, "pages-reset-confirm-phone")
    page.get_by_label("New password", exact=True).fill(new_password)
    page.get_by_label("New password again").fill(new_password)
    page.get_by_role("button", name="Save the new password").click()
    expect(page.locator("h1")).to_have_text("Your password is changed")
    shot(page, "pages-reset-complete-phone")
    page.get_by_role("link", name="Log in").click()
    page.get_by_label("Username").fill("erin")
    page.get_by_label("Password").fill(new_password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("h1")).to_have_text("My devices")
    page.goto(link)
    expect(page.locator("h1")).to_have_text("This link no longer works")
    shot(page, "pages-reset-used-phone")

    assert watched.problems() == []


def test_an_unknown_address_sees_the_same_page_and_no_email_is_sent(server, browser, customer_fleet):
    from playwright.sync_api import expect

    base, console = server
    watched = Watched(browser, DESKTOP)
    page = watched.page
    page.goto(f"{base}/password-reset/")
    shot(page, "pages-reset-form-desktop")
    page.get_by_label("Email address").fill("nobody@example.com")
    page.get_by_role("button", name="Send the link").click()
    expect(page.locator("h1")).to_have_text("Check your email")
    shot(page, "pages-reset-sent-desktop")
    time.sleep(1)

    assert page.url == f"{base}/password-reset/sent/"
    assert "nobody@example.com" not in console.read_text()
    assert watched.problems() == []


def _wait_link(console, base: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        # The console backend prints the email as sent: quoted-printable may fold long lines with "=\n".
        text = console.read_text().replace("=\n", "")
        found = re.findall(r"http://127\.0\.0\.1:\d+(/password-reset/[^/\s]+/[^/\s]+/)", text)
        if found:
            return base + found[-1]
        time.sleep(0.2)
    raise AssertionError("no reset email on the console:\n" + console.read_text()[-2000:])


@pytest.mark.parametrize("size", VIEWPORTS)
def test_redoc_renders_under_its_csp(server, browser, size):
    from playwright.sync_api import expect

    base, _ = server
    watched = Watched(browser, VIEWPORTS[size])
    page = watched.page
    scripts = []
    page.on("request", lambda request: scripts.append(request.url) if request.resource_type == "script" else None)

    response = page.goto(f"{base}/api/redoc/")
    expect(page.locator("h1").first).to_contain_text("Provisioning portal API", timeout=60_000)
    expect(page.get_by_text("/api/v1/auth/token/").first).to_be_attached()
    page.wait_for_load_state("networkidle")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"pages-redoc-{size}.png"))  # the first screen: the whole page is huge

    policy = response.headers["content-security-policy"]
    assert "style-src 'self' 'unsafe-inline'" in policy and "worker-src 'self' blob:" in policy
    assert scripts and all(url.startswith(base + "/static/") or url.startswith("blob:") for url in scripts)
    # Redoc's sidebar credit always asks the CDN for its logo; the policy refuses it (no CDN) and Redoc drops the
    # image when it fails to load (its onError). That refusal is the one expected report; nothing else may be.
    assert [p for p in watched.problems() if REDOC_LOGO not in p] == []
