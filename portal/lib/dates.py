"""Dates as the dialects accept them: parsed strictly, normalised to UTC, and inside a window.

Every date an integration can give (the CRM's ``start_date``, ``display_date_time``, every list filter on dates of
the CRM and the staff API) goes through
``parse``, before anything is written. A date outside ``[EARLIEST, now + YEARS_AHEAD years]`` is refused: a request
due before 2000 or in 50 years is a client's mistake, and dates near year 1 or 9999 cannot even be read back once
an offset moved them past the calendar's end (psycopg cannot load year 10000, nor a date BC).

The database refuses what the API would: every conditional-access date column is held by a named CHECK constraint
to ``[EARLIEST, STORED_BEFORE)`` (``conax.models.date_window``), so a row that cannot be read cannot exist, whatever
writes it. ``STORED_BEFORE`` is fixed (a constraint cannot depend on the clock) and far from the calendar's ends,
so every row renders in any time zone.

Pure: imports no models and no settings.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
YEARS_AHEAD = 10
STORED_BEFORE = datetime(2100, 1, 1, tzinfo=UTC)
MAX_OFFSET = timedelta(hours=14)  # the widest offset in use anywhere (Kiribati, UTC+14)
FORMAT = "YYYY-MM-DDTHH:MM:SS, optionally with fractions and an offset (Z, +HH:MM)"

# The seed's form (2014-11-30T09:00:00), a space instead of T, optional seconds and fractions, an offset or none.
PATTERN = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,6}))?)?(?P<offset>Z|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII,
)


class DateError(ValueError):
    """Why a date is refused, in words a client can act on."""


def latest(now: datetime) -> datetime:
    """``now`` plus YEARS_AHEAD years (29 February becomes 28 February)."""
    try:
        return now.replace(year=now.year + YEARS_AHEAD)
    except ValueError:
        return now.replace(year=now.year + YEARS_AHEAD, day=28)


def _offset(text: str | None, default: tzinfo) -> tzinfo:
    if text is None:
        return default
    if text == "Z":
        return UTC
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    delta = timedelta(hours=hours, minutes=minutes)
    if minutes >= 60 or delta > MAX_OFFSET:
        raise DateError(f"the offset {text} is not a real one (at most ±14:00)")
    return timezone(-delta if text[0] == "-" else delta)


def parse(value: object, *, now: datetime, default_zone: tzinfo) -> datetime:
    """An aware UTC datetime from ``value``, or DateError. Without an offset, the time is in ``default_zone``."""
    match = PATTERN.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise DateError(f"a date and time like 2014-11-30T09:00:00 is expected ({FORMAT})")
    fraction = (match["fraction"] or "").ljust(6, "0")
    try:
        year, month, day = (int(part) for part in match["date"].split("-"))
        naive = datetime(
            year, month, day, int(match["hour"]), int(match["minute"]), int(match["second"] or 0), int(fraction)
        )
        aware = naive.replace(tzinfo=_offset(match["offset"], default_zone)).astimezone(UTC)
    except OverflowError as exc:
        raise DateError("the date is outside the calendar once moved to UTC") from exc
    except DateError:
        raise
    except ValueError as exc:
        raise DateError(f"{value} is not a real date and time ({exc})") from exc
    return within_window(aware, now=now)


def within_window(value: datetime, *, now: datetime) -> datetime:
    """``value`` (aware) if it lies in the accepted window, else DateError naming the window."""
    end = latest(now)
    if not EARLIEST <= value <= end:
        raise DateError(
            f"dates from {EARLIEST:%Y-%m-%dT%H:%M:%S}Z to {end:%Y-%m-%dT%H:%M:%S}Z are accepted "
            f"(at most {YEARS_AHEAD} years ahead)"
        )
    return value
