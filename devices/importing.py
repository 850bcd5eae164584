"""Serial-number sources for the bulk import: a list, a CSV of ``sn,extra``, or a numeric / hexadecimal range.

Each yields ``(line, serial, extra)`` rows for ``devices.services.devices_import``; lines are 1-based positions
in the source so that an operator can find a rejected row. Serials are passed on as written: one with a space
(leading, trailing or inside) is refused by the import with its line, never silently trimmed into another serial.
"""

from __future__ import annotations

import csv
import io
import re
import string
from collections.abc import Iterable, Iterator

from devices.exceptions import InvalidImport

MAX_RANGE = 1_000_000
HEADER = ("sn", "extra")


def rows_from_list(serials: Iterable[str]) -> Iterator[tuple[int, str, str]]:
    for line, serial in enumerate(serials, start=1):
        yield line, serial if isinstance(serial, str) else "", ""


def rows_from_csv(stream: io.TextIOBase | Iterable[str]) -> Iterator[tuple[int, str, str]]:
    """``sn,extra`` per line; a header line ``sn,extra`` (or ``sn``) is skipped; blank lines are ignored."""
    try:
        for line, row in enumerate(csv.reader(stream), start=1):
            if not row or not any(cell.strip() for cell in row):
                continue
            if line == 1 and tuple(cell.strip().lower() for cell in row) in (HEADER, HEADER[:1]):
                continue
            yield line, row[0], ",".join(row[1:]).strip()
    except (csv.Error, UnicodeDecodeError) as exc:
        raise InvalidImport(f"not a readable CSV file: {exc}") from exc


def shown(serial: str) -> str:
    """A serial as an operator must see it in a page: each space as a visible mark (HTML collapses spaces)."""
    return serial.replace(" ", "\u2423")


def rows_from_range(start: str, end: str, *, base: int = 10) -> Iterator[tuple[int, str, str]]:
    """Every serial from ``start`` to ``end`` inclusive: same length, same prefix, a trailing counter in ``base``
    (10 or 16) whose zero padding and letter case are kept. ``STB00098``..``STB00102``, ``00a0ff``..``00a1ff``."""
    prefix, first, last, width = _range_parts(start, end, base)
    if last < first:
        raise InvalidImport("the range ends before it starts")
    if last - first + 1 > MAX_RANGE:
        raise InvalidImport(f"a range may hold at most {MAX_RANGE} serial numbers")
    upper = any(ch in "ABCDEF" for ch in start + end)
    for line, value in enumerate(range(first, last + 1), start=1):
        counter = format(value, "x" if base == 16 else "d").zfill(width)
        yield line, prefix + (counter.upper() if upper else counter), ""


def _range_parts(start: str, end: str, base: int) -> tuple[str, int, int, int]:
    if base not in (10, 16):
        raise InvalidImport("base must be 10 or 16")
    if not start or len(start) != len(end):
        raise InvalidImport("start and end must be non-empty and of the same length")
    digits = string.digits if base == 10 else string.hexdigits
    pattern = re.compile(rf"^(.*?)([{re.escape(digits)}]+)$")
    first, last = pattern.match(start), pattern.match(end)
    if not first or not last:
        raise InvalidImport("start and end must end in digits of the given base")
    # The counter is the longest trailing run both share; the prefix must be identical.
    width = min(len(first.group(2)), len(last.group(2)))
    if start[:-width] != end[:-width]:
        raise InvalidImport("start and end must share everything but their trailing counter")
    return start[:-width], int(start[-width:], base), int(end[-width:], base), width
