"""A campaign from the console, in Chromium: defined on the add form, its target previewed, started after the
confirmation, and followed live on its page (no reload) while a real Celery worker sends the reprovision commands to
simulated boxes over real sockets, and Celery beat ticks the engine, whose ``campaign.progress`` events reach the
browser through channels-redis and the staff socket. Screenshots at
desktop and phone size go to ``test-artifacts/``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from campaigns.choices import CampaignState
from campaigns.models import Campaign, Member
from provisioning import services as box_services
from provisioning.simulator import Faults, FleetThread
from tests.conftest import REPO, clean_env, free_port, kill_worker, start_worker, subprocess_database_url, wait_serving
from tests.e2e.support import DESKTOP, PHONE, Watched, log_in_page, shot, stop
from tests.factories import DeviceFactory, DeviceModelFactory, StaffFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]
BOXES = 30


@pytest.fixture
def server(tmp_path, redis_db):
    """The ASGI server (HTTP and the staff WebSocket) as ``tests.e2e.support.start_uvicorn`` starts it, with its
    log kept in ``tmp_path/server.log`` (printed when the test fails)."""
    port, log = free_port(), (tmp_path / "server.log").open("w")
    env = clean_env(
        PORTAL_VAR_DIR=str(tmp_path),
        DATABASE_URL=subprocess_database_url(),
        DATABASE_CONN_MAX_AGE="0",
        REDIS_URL=redis_db,
        LOG_LEVEL="WARNING",
    )
    command = [sys.executable, "-m", "uvicorn", "portal.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--no-access-log", "--lifespan", "off"]
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    wait_serving(f"http://127.0.0.1:{port}", proc)
    yield f"http://127.0.0.1:{port}"
    stop(proc)
    log.close()
    print((tmp_path / "server.log").read_text()[-5000:])


def start_beat(var_dir):
    """Celery beat as production runs it (its file scheduler here, not the database one): the engine's tick every
    half second, on the embedded broker in ``var_dir`` that the server and the worker use. Its own process group."""
    environment = clean_env(
        PORTAL_VAR_DIR=str(var_dir),
        DATABASE_URL=subprocess_database_url(),
        CELERY_BROKER_URL="portalfs://localhost//",
        DATABASE_CONN_MAX_AGE="0",
        CAMPAIGN_TICK_SECONDS="0.5",
    )
    command = [sys.executable, "-m", "celery", "-A", "portal", "beat", "-S", "celery.beat:PersistentScheduler"]
    command += ["-s", str(var_dir / "beat-schedule"), "--loglevel", "WARNING"]
    return subprocess.Popen(
        command,
        cwd=REPO,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def fill_definition(page) -> None:
    page.fill("#id_name", "Night key rotation")
    page.select_option("#id_target_kind", "devices")
    page.fill("#id_target_filters", '{"model": "stb-sim"}')
    page.select_option("#id_action_kind", "command")
    page.select_option("#id_action", "reprovision")
    page.fill("#id_params", '{"provision_type": "HARDWARE"}')
    page.fill("#id_waves", '["10%", "rest"]')
    page.fill("#id_rate_per_second", "8")
    page.fill("#id_success_threshold", "0.9")


def test_a_campaign_started_from_the_console_shows_its_progress_live(server, browser, redis_db, tmp_path):
    asgi_server = server
    from playwright.sync_api import expect

    StaffFactory(username="sam")
    model = DeviceModelFactory(vendor__name="simulator", name="stb-sim")
    DeviceFactory(serial_number="OTHER-MODEL")  # outside the target filter
    with FleetThread(BOXES, api_version=3, faults=Faults(provision_seconds=0.2)) as fleet:
        for n, sim in enumerate(fleet.boxes):
            host, port = sim.address.rsplit(":", 1)
            device = DeviceFactory(model=model, serial_number=f"SIM{n:06d}")
            box_services.box_register(device=device, host=host, port=int(port))

        watched = Watched(browser, DESKTOP)  # every CSP violation, console error and script error is kept
        page, problems = watched.page, {}
        log_in_page(page, asgi_server, "sam", path="/admin/login/")
        page.goto(f"{asgi_server}/admin/campaigns/campaign/add/")
        fill_definition(page)
        shot(page, "campaign-add")
        problems["add"] = watched.take()
        page.get_by_role("button", name="Save and continue editing").click()

        campaign = Campaign.objects.get()
        assert campaign.state == CampaignState.DRAFT
        expect(page.locator('[data-field="campaign-state"]')).to_have_text("Draft")
        expect(page.locator('[data-field="campaign-preview"]')).to_contain_text(f"{BOXES} (counted now")
        expect(page.get_by_role("button", name="Pause")).to_have_count(0)  # only what applies to a draft
        shot(page, "campaign-draft")
        problems["draft"] = watched.take()

        page.get_by_role("link", name="Start…").click()
        expect(page.locator(".console-confirm-text")).to_contain_text(f"The target holds {BOXES} members now.")
        shot(page, "campaign-start-confirm")
        problems["confirm"] = watched.take()
        assert Campaign.objects.get().state == CampaignState.DRAFT  # asking changed nothing

        page.get_by_role("button", name="Start").click()
        expect(page.locator(".messagelist")).to_contain_text(f"{BOXES} members frozen in 2 waves")
        expect(page.locator('[data-field="campaign-state"]')).to_have_text("Running")
        expect(page.locator("#live-updated")).to_contain_text("Live updates: on", timeout=15_000)
        page.evaluate(
            """() => { window.__sameDocument = true; window.__seen = new Set();
              new MutationObserver(() => window.__seen.add(
                  document.querySelector('[data-field="campaign-done"]').textContent))
                .observe(document.getElementById('live-panel'),
                         {childList: true, subtree: true, characterData: true, attributes: true}); }"""
        )
        # The server queued the start's step on the embedded broker in its var dir (the same tmp_path); the worker
        # takes it and the commands the engine releases, which it sends to the simulated boxes.
        worker = start_worker(tmp_path, "portalfs://localhost//", "regular,devices,express", REDIS_URL=redis_db)
        beat = start_beat(tmp_path)
        try:
            expect(page.locator('[data-field="campaign-rate"]')).to_contain_text("members/s", timeout=30_000)
            shot(page, "campaign-running")
            expect(page.locator('[data-field="campaign-state"]')).to_have_text("Finished", timeout=90_000)
            expect(page.locator('[data-field="campaign-done"]')).to_contain_text(f"{BOXES} of {BOXES}")
            shot(page, "campaign-finished")
            page.set_viewport_size(PHONE)
            shot(page, "campaign-finished-phone")
            problems["live page"] = watched.take()
        finally:
            kill_worker(beat)
            kill_worker(worker)

    assert page.evaluate("window.__sameDocument") is True  # followed live, no reload
    seen = page.evaluate("Array.from(window.__seen)")
    partial = [text for text in seen if not text.startswith(f"{BOXES} of") and not text.startswith("0 of")]
    assert partial, seen  # progress arrived in steps, not only the end
    assert Member.objects.filter(campaign=campaign, state="succeeded").count() == BOXES
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    expect(page.locator(".campaign-report tbody tr")).to_have_count(2)

    page.set_viewport_size(PHONE)
    page.goto(f"{asgi_server}/admin/campaigns/campaign/")
    expect(page.locator("#result_list .badge-ok").first).to_have_text("Finished")
    shot(page, "campaign-list-phone")
    problems["list"] = watched.take()
    assert {where: found for where, found in problems.items() if found} == {}  # CSP-clean, no script error
