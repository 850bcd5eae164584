"""Pure rules of a campaign's plan: wave specs and the daily time window (no Django)."""

from __future__ import annotations

import re
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

REST = "rest"
MAX_WAVES = 20
_PERCENT = re.compile(r"(\d+(?:\.\d{1,2})?)\s*%")


class PlanError(ValueError):
    pass


def waves_clean(waves: list) -> list[str]:
    """``[1 %, 10 %, rest]``-style plans, as stored: ``"N"`` (a size), ``"P%"`` (a share of the target, two decimals at
    most) and a last ``"rest"`` (appended when missing: every member belongs to a wave)."""
    if not isinstance(waves, list) or not waves:
        raise PlanError("waves must be a non-empty list")
    clean: list[str] = []
    for position, spec in enumerate(waves):
        if spec == REST:
            if position != len(waves) - 1:
                raise PlanError('"rest" must be the last wave')
            break
        clean.append(_spec(spec))
    clean.append(REST)
    if len(clean) > MAX_WAVES:
        raise PlanError(f"at most {MAX_WAVES} waves")
    return clean


def _spec(spec: object) -> str:
    if isinstance(spec, int) and not isinstance(spec, bool):
        if spec < 1:
            raise PlanError("a wave size must be at least 1")
        return str(spec)
    match = _PERCENT.fullmatch(spec.strip()) if isinstance(spec, str) else None
    if match is None:
        raise PlanError(f'a wave is a size, a share such as "10%", or "rest"; not {spec!r}')
    if not 0 < float(match.group(1)) <= 100:
        raise PlanError("a wave share must be above 0 % and at most 100 %")
    return f"{match.group(1)}%"


def basis_points(spec: str) -> int | None:
    """The share of a ``"P%"`` spec in hundredths of a percent; None for a size."""
    return round(float(spec[:-1]) * 100) if spec.endswith("%") else None


def wave_sizes(waves: list[str], total: int) -> list[int]:
    """How many of ``total`` members each wave takes (the same arithmetic the freeze does in SQL)."""
    sizes, left = [], total
    for spec in waves[:-1]:
        points = basis_points(spec)
        size = (total * points + 9999) // 10000 if points is not None else int(spec)
        size = min(size, left)
        sizes.append(size)
        left -= size
    return [*sizes, left]


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PlanError(f"unknown time zone {name!r}") from exc


def in_window(now: datetime, start: time | None, end: time | None, zone_name: str) -> bool:
    """Whether ``now`` falls in the daily window [start, end) local time; a window may pass midnight (22:00-02:00);
    no window: always."""
    if start is None or end is None:
        return True
    local = now.astimezone(zone(zone_name)).time()
    if start <= end:
        return start <= local < end
    return local >= start or local < end
