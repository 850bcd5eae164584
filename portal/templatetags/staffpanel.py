"""``{% staff_device_panel device %}``: a device admin page's staff panel, rendered with the page (then re-read live at
``admin-device-panel``). A tag of the shell, because the devices app that owns the page may not import the apps
whose facts the panel shows."""

from __future__ import annotations

from django import template

from devices.models import Device
from portal.pages import device_staff_context

register = template.Library()


@register.inclusion_tag("admin/devices/device/panel.html")
def staff_device_panel(device: Device) -> dict:
    return device_staff_context(device)
