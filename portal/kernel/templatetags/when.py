"""``{% when value %}``: a moment in the one format (``portal/formats``) in a ``<time>`` element, and
``{{ value|ago }}``: the same moment relative to now ("3 min ago"). ``{% when value relative_first=True %}`` shows both,
the relative time first, the absolute one in the element's title and after it in small print."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import formats, timezone
from django.utils.html import format_html

from portal.lib import ago as relative

register = template.Library()


@register.filter
def ago(value: datetime | None) -> str:
    return relative.ago(value, timezone.now()) if value else ""


@register.simple_tag
def when(value: datetime | None, relative_first: bool = False, empty: str = "—") -> str:
    if not value:
        return empty
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    absolute = formats.date_format(local, "DATETIME_FORMAT")
    if relative_first:
        return format_html(
            '<time datetime="{}" title="{}">{}</time> <small class="when">({})</small>',
            value.isoformat(),
            absolute,
            relative.ago(value, timezone.now()),
            absolute,
        )
    return format_html('<time datetime="{}">{}</time>', value.isoformat(), absolute)
