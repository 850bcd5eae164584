"""Relative times a person reads at a glance ("3 min ago", "in 2 h", "just now"). Pure: no Django."""

from __future__ import annotations

from datetime import datetime

JUST_NOW = 10  # seconds either side of now read as "just now"


def span(seconds: float) -> str:
    """Whole units, the largest two that matter: 45 s, 12 min, 5 h 3 min, 2 d 4 h."""
    seconds = int(abs(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min" if minutes else f"{seconds} s"


def ago(moment: datetime, now: datetime) -> str:
    """``moment`` relative to ``now``: "3 min ago", "in 5 min", or "just now" within ``JUST_NOW`` seconds."""
    seconds = (now - moment).total_seconds()
    if abs(seconds) < JUST_NOW:
        return "just now"
    return f"{span(seconds)} ago" if seconds > 0 else f"in {span(seconds)}"
