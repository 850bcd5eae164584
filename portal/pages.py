"""Customer pages: log in, "My devices", and a device's live page with its server-rendered panel.

The panel is also served alone (``…/panel/``): the page's script fetches it again whenever a live event arrives
and on every (re)connect of its WebSocket, since channel layers deliver at most once. Another customer's device is
a 404 here, as it is for the WebSocket (closed) and the APIs.
"""

from __future__ import annotations

from csp.decorators import csp_replace
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse_lazy
from drf_spectacular.views import SpectacularRedocView

from portal import dashboard
from portal.kernel.permissions import is_support_staff
from portal.kernel.ratelimit import Check, Limit, retry_after
from portal.kernel.remote import client_ip
from provisioning import admin as provisioning_admin

LoginView = auth_views.LoginView.as_view(template_name="portal/pages/login.html", redirect_authenticated_user=True)
LogoutView = auth_views.LogoutView.as_view(next_page="pages-login")


def poll_seconds() -> int:
    """The in-memory channel layer of the embedded default carries nothing between processes (the worker and the
    device listener publish from theirs): there the page also re-reads its panel every few seconds. LIVE_POLL_SECONDS
    sets that period for any layer."""
    if settings.LIVE_POLL_SECONDS > 0:
        return settings.LIVE_POLL_SECONDS
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


def not_found(request: HttpRequest) -> HttpResponse:
    """The pages' 404 (``portal.errors.page_not_found``): in the pages' look, with the way back to "My devices"."""
    return render(request, "portal/pages/404.html", status=404)


# --- password reset (Django's views, the pages' look) -----------------------------------------------------------


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset request. Every request counts against its email address and its client address, known address
    or not, so that the answer (the same "check your email" page, or the same 429) tells nothing about who has an
    account here."""

    template_name = "registration/password_reset_form.html"
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
    success_url = reverse_lazy("pages-password-reset-done")

    def form_valid(self, form):
        limit = Limit.parse(settings.PASSWORD_RESET_RATE_LIMIT)
        email = form.cleaned_data["email"].strip().lower()
        checks = (
            [Check("reset-ip", client_ip(self.request), limit), Check("reset-email", email, limit)] if limit else []
        )
        wait = retry_after(checks)
        if wait is not None:
            context = self.get_context_data(form=form, retry_minutes=-(-wait // 60))
            response = render(self.request, "registration/password_reset_limited.html", context, status=429)
            response["Retry-After"] = str(wait)
            return response
        return super().form_valid(form)


PasswordResetDoneView = auth_views.PasswordResetDoneView.as_view(template_name="registration/password_reset_done.html")
PasswordResetConfirmView = auth_views.PasswordResetConfirmView.as_view(
    template_name="registration/password_reset_confirm.html", success_url=reverse_lazy("pages-password-reset-complete")
)
PasswordResetCompleteView = auth_views.PasswordResetCompleteView.as_view(
    template_name="registration/password_reset_complete.html"
)


# --- API docs -----------------------------------------------------------------------------------------------------

# Redoc (drf-spectacular's view, the sidecar's bundle from our static files) builds its page in the browser: it
# injects <style> elements (styled-components) that cannot carry the request's nonce, and runs its search index in a
# Web Worker made from a blob: URL. This view alone relaxes the policy for exactly those two: style-src is
# 'self' 'unsafe-inline' (replaced, not extended: a nonce beside 'unsafe-inline' would make browsers ignore it) and
# worker-src 'self' blob:. Scripts stay 'self' + nonce (no inline script, no eval) on this page too.
REDOC_CSP = {"style-src": ["'self'", "'unsafe-inline'"], "worker-src": ["'self'", "blob:"]}
api_redoc = csp_replace(REDOC_CSP)(SpectacularRedocView.as_view(url_name="schema", permission_classes=[]))


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


def device_staff_context(device) -> dict:
    """The staff panel of a device's admin page (``admin/devices/device/panel.html``), with its box's last event and
    last command as the admin words them, raw codes included."""
    view = dashboard.staff_device_view(device)
    return {
        "staff": view,
        "event_words": provisioning_admin.event_words(view.last_event) if view.last_event else "",
        "command_words": provisioning_admin.command_words(view.last_command) if view.last_command else "",
    }


def device_staff_panel(request: HttpRequest, device_id: int) -> HttpResponse:
    """The live part of a device's admin page: its box as support staff need it (codes included)."""
    _staff(request)
    device = dashboard.device_visible(request.user, device_id)
    if device is None:
        raise Http404("No such device.")
    return render(request, "admin/devices/device/panel.html", device_staff_context(device))


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
