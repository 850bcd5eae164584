"""Every page under the Content-Security-Policy in a real browser (Debian's Chromium, Playwright), served by a real
uvicorn process on PostgreSQL with channels-redis: the customer pages (with a live update from a simulated set-top
box), every admin page of every registered model, the live activity view, the Swagger UI at /api/docs/ and the docs
pages at /docs/. A CSP violation, a console error or warning, or an uncaught script error fails the test. Screenshots
at desktop (1280x800) and phone (390x844) size go to ``test-artifacts/csp-*.png``."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import RequestFactory
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from conax.models import ProvisioningRequest, Service, Smartcard, Subscription
from devices import services as device_services
from devices.models import Device
from provisioning import services as box_services
from provisioning import thunder
from provisioning.simulator import Faults, FleetThread
from tests.e2e.support import DESKTOP, PHONE, Watched, log_in_page, shot
from tests.factories import PASSWORD, CustomerFactory, DeviceFactory, DeviceModelFactory
from tests.waiting import wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}


def _request(subscription, card, service) -> ProvisioningRequest:
    return ProvisioningRequest.objects.create(
        type="ADD_SUBSCRIPTIONS",
        scheduled_date=subscription.created_at,
        subscription=subscription,
        smartcard=card,
        service=service,
        sequence_number=1,
        parameters_set=[{"service_ca_id": "CSP-CA", "id": "A" * 32}, {"smartcard_ca_id": "CA-CSP", "id": "B" * 32}],
    )


@pytest.fixture
def fleet_data():
    """One of every kind of object the admin shows, so that each change page has something to open."""
    subscription = Subscription.objects.create(number="SUB-CSP")
    service = Service.objects.create(code="CSP", service_ca_id="CSP-CA", name="Sports")
    subscription.services.add(service)
    card = Smartcard.objects.create(serial_number="SC-CSP", ca_id="CA-CSP", subscription=subscription)
    _request(subscription, card, service)
    device = DeviceFactory(serial_number="STB-CSP-1")
    box_services.box_register(device=device, host="127.0.0.1", port=9)
    every_minute = CrontabSchedule.objects.create(minute="*")
    PeriodicTask.objects.create(name="csp check", task="portal.kernel.tasks.heartbeat", crontab=every_minute)


def admin_urls(user) -> list[str]:
    """The admin index, each app's index, and for every registered model its list, its add page (where adding is
    allowed) and its first object's change page."""
    request = RequestFactory().get("/admin/")
    request.user = user
    urls = [reverse("admin:index"), reverse("admin-activity")]
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        prefix = f"admin:{meta.app_label}_{meta.model_name}"
        urls += [reverse("admin:app_list", args=[meta.app_label]), reverse(f"{prefix}_changelist")]
        if model_admin.has_add_permission(request):
            urls.append(reverse(f"{prefix}_add"))
        if (first := model_admin.get_queryset(request).order_by("pk").first()) is not None:
            urls.append(reverse(f"{prefix}_change", args=[first.pk]))
    return list(dict.fromkeys(urls))


# conax/admin.py colours the request list's state column with a style attribute, which the policy refuses (the text
# is still shown, uncoloured). Until it uses the admin.css classes (state state-<STATE>), this is the one known
# violation; the assertion fails as soon as it is gone, so that the entry is removed with it.
def test_the_admin_works_under_the_csp(asgi_server, browser, fleet_data):
    root = get_user_model().objects.create_superuser("root-admin", password=PASSWORD)
    watched = Watched(browser, DESKTOP)
    log_in_page(watched.page, asgi_server, "root-admin", path="/admin/login/")
    problems, statuses = {}, {}

    for url in admin_urls(root):
        response = watched.page.goto(asgi_server + url)
        watched.page.wait_for_load_state("networkidle")
        statuses[url] = response.status
        if found := watched.take():
            problems[url] = found

    assert len(statuses) > 40
    assert {url: status for url, status in statuses.items() if status != 200} == {}
    assert {url: found for url, found in problems.items() if found} == {}


@pytest.mark.parametrize("size", VIEWPORTS)
def test_staff_pages_look_right_under_the_csp(asgi_server, browser, fleet_data, size):
    get_user_model().objects.create_superuser("root-admin", password=PASSWORD)
    watched = Watched(browser, VIEWPORTS[size])
    log_in_page(watched.page, asgi_server, "root-admin", path="/admin/login/")
    device = Device.objects.get(serial_number="STB-CSP-1")
    pages = {
        "admin-index": reverse("admin:index"),
        "admin-device": reverse("admin:devices_device_change", args=[device.pk]),
        "admin-requests": reverse("admin:conax_provisioningrequest_changelist"),
        "admin-request": reverse("admin:conax_provisioningrequest_change", args=[ProvisioningRequest.objects.get().pk]),
        "admin-periodic-task": reverse(
            "admin:django_celery_beat_periodictask_change", args=[PeriodicTask.objects.get(name="csp check").pk]
        ),
        "admin-activity": reverse("admin-activity"),
    }
    problems = {}
    for name, url in pages.items():
        watched.page.goto(asgi_server + url)
        watched.page.wait_for_load_state("networkidle")
        shot(watched.page, f"csp-{name}-{size}")
        if found := watched.take():
            problems[url] = found

    assert {url: found for url, found in problems.items() if found} == {}


@pytest.mark.parametrize("size", VIEWPORTS)
def test_the_api_docs_render_under_the_csp(asgi_server, browser, size):
    from playwright.sync_api import expect

    watched = Watched(browser, VIEWPORTS[size])
    response = watched.page.goto(f"{asgi_server}/api/docs/")

    expect(watched.page.locator(".swagger-ui .info .title")).to_contain_text("Provisioning portal API")
    expect(watched.page.locator(".opblock").first).to_be_visible()
    watched.page.locator(".opblock-summary").first.click()  # an operation opens (Swagger UI's own script runs)
    expect(watched.page.locator(".opblock-body").first).to_be_visible()
    shot(watched.page, f"csp-api-docs-{size}")
    assert "'nonce-" in response.headers["content-security-policy"]
    assert watched.page.locator(".opblock").count() > 20
    assert watched.problems() == []


@pytest.mark.parametrize("size", VIEWPORTS)
def test_the_docs_pages_render_under_the_csp(asgi_server, browser, size):
    """/docs/ (portal/docs_pages.py): its stylesheet applies, code blocks and tables stay inside a phone's width."""
    from playwright.sync_api import expect

    watched = Watched(browser, VIEWPORTS[size])
    for name in ("getting-started", "dialects"):
        response = watched.page.goto(f"{asgi_server}/docs/{name}/")
        expect(watched.page.locator("article.doc h1")).to_be_visible()
        shot(watched.page, f"csp-docs-{name}-{size}")
        assert "'unsafe-inline'" not in response.headers["content-security-policy"]
        layout = watched.page.evaluate("getComputedStyle(document.querySelector('.docs')).display")
        width = watched.page.evaluate("document.documentElement.scrollWidth")
        assert (layout, width) == ("grid", VIEWPORTS[size]["width"])
    watched.page.get_by_role("link", name="Device-facing and legacy APIs").first.click()
    expect(watched.page.locator("article.doc h1")).to_have_text("Device-facing and legacy APIs")
    assert watched.problems() == []


@pytest.mark.parametrize("size", VIEWPORTS)
def test_the_customer_pages_work_under_the_csp_with_live_updates(asgi_server, browser, size):
    from playwright.sync_api import expect

    customer = CustomerFactory(username="erin")
    model = DeviceModelFactory(vendor__name="simulator", name="stb-sim")
    device = device_services.device_enable(device=DeviceFactory(model=model, serial_number="SIM000000", owner=customer))
    watched = Watched(browser, VIEWPORTS[size])
    page = watched.page
    response = page.goto(f"{asgi_server}/login/")
    shot(page, f"csp-login-{size}")
    assert "default-src 'self'" in response.headers["content-security-policy"]

    with FleetThread(1, api_version=3, portal_url=asgi_server, faults=Faults(provision_seconds=0.3)) as fleet:
        sim = fleet.boxes[0]
        wait_for(lambda: Device.objects.get(pk=device.pk).state == "activated", timeout=30)  # the box activated itself
        host, port = sim.address.rsplit(":", 1)
        box_services.box_register(device=device, host=host, port=int(port))

        log_in_page(page, asgi_server, "erin")
        expect(page.locator("#live-updated")).to_contain_text("Live updates: on")
        shot(page, f"csp-my-devices-{size}")
        page.get_by_role("link", name="SIM000000").click()
        expect(page.locator("#live-updated")).to_contain_text("Live updates: on")
        page.evaluate("window.__sameDocument = true")
        with thunder.ThunderClient(sim.address, timeout=5) as client:
            client.reprovision(thunder.ProvisionType.HARDWARE)
        expect(page.locator('[data-field="last-heard"]')).to_contain_text(
            "Its last key update went through.", timeout=5000
        )
        shot(page, f"csp-device-{size}")

    assert page.evaluate("window.__sameDocument") is True  # the live update arrived through the WebSocket
    assert watched.problems() == []
