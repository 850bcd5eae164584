"""The admin's index with the fleet dashboard above the app list (support staff), and its live fragment."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from portal import fleet
from portal.kernel.permissions import is_support_staff
from portal.pages import poll_seconds


def _context(request: HttpRequest) -> tuple[dict[str, Any], int]:
    """The dashboard's context, and 400 (charts of the default range, the error in words) for an unknown range."""
    range_key = request.GET.get("range", "24h")
    error = ""
    if range_key not in fleet.RANGES:
        error = f"Range {range_key!r} is not one of the ranges ({', '.join(fleet.RANGES)}): showing 24h."
        range_key = "24h"
    unit = fleet.RANGES[range_key][1]
    charts = [(chart, fleet.drawing(chart, unit)) for chart in fleet.charts(range_key=range_key)]
    context = {
        "fleet": fleet.summary(),
        "fleet_charts": charts,
        "fleet_range": range_key,
        "fleet_ranges": [(key, label) for key, (label, _, _) in fleet.RANGES.items()],
        "fleet_error": error,
        "poll_seconds": poll_seconds(),
    }
    return context, 400 if error else 200


def index(request: HttpRequest) -> HttpResponse:
    """The admin's own index; support staff see the fleet dashboard above the app list."""
    if not is_support_staff(request.user):
        return admin.site.index(request)
    context, status = _context(request)
    response = admin.site.index(request, extra_context=context)
    response.status_code = status
    return response


def panel(request: HttpRequest) -> HttpResponse:
    """The dashboard's live part, re-read by portal/static/portal/fleet.js when the staff socket says something
    changed."""
    if not is_support_staff(request.user):
        raise PermissionDenied
    context, status = _context(request)
    return render(request, "admin/fleet/panel.html", context, status=status)
