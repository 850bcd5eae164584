"""Customer pages: log in, "My devices", and a device's live page with its server-rendered panel.

The panel is also served alone (``…/panel/``): the page's script fetches it again whenever a live event arrives
and on every (re)connect of its WebSocket, since channel layers deliver at most once. Another customer's device is
a 404 here, as it is for the WebSocket (closed) and the APIs.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from portal import dashboard
from portal.kernel.permissions import is_support_staff

LoginView = auth_views.LoginView.as_view(template_name="portal/pages/login.html", redirect_authenticated_user=True)
LogoutView = auth_views.LogoutView.as_view(next_page="pages-login")


def poll_seconds() -> int:
    """The in-memory channel layer of the embedded default carries nothing between processes (the worker and the
    device listener publish from theirs): there the page also re-reads its panel every few seconds."""
    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    return 5 if layer.endswith("InMemoryChannelLayer") else 0


def live_context(request: HttpRequest) -> dict:
    """Template context processor: the admin's live panels poll like the pages do (see ``poll_seconds``)."""
    return {"live_poll_seconds": poll_seconds()}


@login_required(login_url="pages-login")
def my_devices(request: HttpRequest) -> HttpResponse:
    devices = dashboard.my_devices(request.user)
    return render(request, "portal/pages/my_devices.html", {"devices": devices, "poll_seconds": poll_seconds()})


@login_required(login_url="pages-login")
def my_devices_panel(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/pages/my_devices_panel.html", {"devices": dashboard.my_devices(request.user)})


def _visible(request: HttpRequest, device_id: int):
    device = dashboard.device_visible(request.user, device_id)
    if device is None:
        raise Http404("No such device.")
    return device


@login_required(login_url="pages-login")
def device_page(request: HttpRequest, device_id: int) -> HttpResponse:
    view = dashboard.device_view(_visible(request, device_id))
    return render(request, "portal/pages/device.html", {"view": view, "poll_seconds": poll_seconds()})


@login_required(login_url="pages-login")
def device_panel(request: HttpRequest, device_id: int) -> HttpResponse:
    view = dashboard.device_view(_visible(request, device_id))
    return render(request, "portal/pages/device_panel.html", {"view": view})


# --- staff live views (served inside the admin) --------------------------------------------------------------------


def _staff(request: HttpRequest) -> None:
    if not is_support_staff(request.user):
        raise PermissionDenied


def request_panel(request: HttpRequest, number: int) -> HttpResponse:
    """The live part of a Conax request's admin page: state, outcome, timeline."""
    _staff(request)
    found = dashboard.request_visible(request.user, number)
    if found is None:
        raise Http404("No such request.")
    return render(request, "portal/pages/request_panel.html", {"r": found})


def activity(request: HttpRequest) -> HttpResponse:
    """The fleet's activity as it happens (events, finished commands and Conax requests), with filters. Invalid
    filters are a 400 that shows the page (or the fragment) with what is wrong, and no rows."""
    _staff(request)
    form = dashboard.ActivityFilters(request.GET)
    valid = form.is_valid()
    context = {
        "form": form,
        "rows": dashboard.activity(form.cleaned_data) if valid else [],
        "kinds": dashboard.ACTIVITY_KINDS,
        "poll_seconds": poll_seconds(),
        "title": "Live activity",
        "query": request.GET.urlencode(),
    }
    template = "portal/pages/activity_rows.html" if request.GET.get("fragment") else "admin/portal/activity.html"
    return render(request, template, context, status=200 if valid else 400)
