"""``{{ state|badge:label }}``: the console's coloured state badge (``portal.kernel.console.badge``) in templates."""

from __future__ import annotations

from django import template

from portal.kernel.console import badge as make_badge

register = template.Library()


@register.filter
def badge(state: object, label: object = None) -> str:
    return make_badge(state, label)
