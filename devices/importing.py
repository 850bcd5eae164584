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
from dataclasses import dataclass

from devices.exceptions import InvalidImport

MAX_RANGE = 1_000_000
HEADER = ("sn", "extra")


def rows_from_list(serials: Iterable[str]) -> Iterator[tuple[int, str, str]]:
    for line, serial in enumerate(serials, start=1):
        yield line, serial if isinstance(serial, str) else "", ""


def rows_from_csv(stream: io.TextIOBase | Iterable[str], *, strict: bool = False) -> Iterator[tuple[int, str, str]]:
    """``sn,extra`` per line; a header line ``sn,extra`` (or ``sn``) is skipped; blank lines are ignored. ``strict``
    refuses what the csv module would otherwise read leniently (a quote left open to the end of the file)."""
    try:
        for line, row in enumerate(csv.reader(stream, strict=strict), start=1):
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


# --- Exosite ranges (``{"ranges": [{"format", "length", "casing", "first", "last"}]}``, docs/exosite.md) -------

MAC_LAST = 2**48 - 1
MAC_SEPARATORS = {"mac:48": ":", "mac-48": "-", "mac.48": "."}
RANGE_FORMATS = ("base10", "base16", *MAC_SEPARATORS)
MAX_RANGES = 100


@dataclass(frozen=True)
class ExositeRange:
    format: str
    first: int
    last: int
    length: int | None = None
    casing: str = ""

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def serial(self, value: int) -> str:
        if self.format == "base10":
            return str(value).zfill(self.length or 0)
        digits = format(value, "x").zfill(12 if self.format in MAC_SEPARATORS else self.length or 0)
        digits = digits.upper() if self.casing == "upper" else digits
        separator = MAC_SEPARATORS.get(self.format)
        if separator is None:
            return digits
        width = 4 if separator == "." else 2  # 0012.3456.789a (dotted groups of four), 00:12:34:56:78:9a
        return separator.join(digits[i : i + width] for i in range(0, 12, width))

    def rows(self, start_line: int = 1) -> Iterator[tuple[int, str, str]]:
        for line, value in enumerate(range(self.first, self.last + 1), start=start_line):
            yield line, self.serial(value), ""

    def as_dict(self) -> dict:
        spec: dict = {"format": self.format}
        if self.format not in MAC_SEPARATORS and self.length is not None:
            spec["length"] = self.length
        if self.format != "base10":
            spec["casing"] = self.casing or "lower"
        return spec | {"first": self.first, "last": self.last}


def parse_ranges(data: object, *, max_total: int) -> list[ExositeRange]:
    """The ranges of a JSON body, checked whole before anything is written; InvalidImport names the problem."""
    if not isinstance(data, dict) or not isinstance(data.get("ranges"), list) or not data["ranges"]:
        raise InvalidImport('the body must be {"ranges": [...]} with at least one range')
    if len(data["ranges"]) > MAX_RANGES:
        raise InvalidImport(f"at most {MAX_RANGES} ranges per request")
    ranges = [_one_range(number, spec) for number, spec in enumerate(data["ranges"], start=1)]
    total = sum(r.count for r in ranges)
    if total > max_total:
        raise InvalidImport(f"the ranges hold {total} serial numbers; one request may hold at most {max_total}")
    return ranges


def _integer(spec: dict, name: str, number: int) -> int:
    value = spec.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > 2**63 - 1:
        raise InvalidImport(f"range {number}: {name} must be a non-negative integer")
    return value


def _one_range(number: int, spec: object) -> ExositeRange:
    if not isinstance(spec, dict):
        raise InvalidImport(f"range {number}: not an object")
    if unknown := set(spec) - {"format", "length", "casing", "first", "last"}:
        raise InvalidImport(f"range {number}: unknown field {sorted(unknown)[0]}")
    fmt = spec.get("format")
    if fmt not in RANGE_FORMATS:
        raise InvalidImport(f"range {number}: format must be one of {', '.join(RANGE_FORMATS)}")
    first, last = _integer(spec, "first", number), _integer(spec, "last", number)
    if last < first:
        raise InvalidImport(f"range {number}: last is below first")
    casing = spec.get("casing", "lower" if fmt != "base10" else "")
    if fmt != "base10" and casing not in ("upper", "lower"):
        raise InvalidImport(f"range {number}: casing must be upper or lower")
    length = spec.get("length")
    if fmt in MAC_SEPARATORS:
        if last > MAC_LAST:
            raise InvalidImport(f"range {number}: a MAC-48 address is at most {MAC_LAST}")
        length = None
    elif length is not None:
        length = _integer(spec, "length", number)
        if not 1 <= length <= 128:
            raise InvalidImport(f"range {number}: length must be 1 to 128")
        if len(format(last, "d" if fmt == "base10" else "x")) > length:
            raise InvalidImport(f"range {number}: last has more than {length} digits")
    found = ExositeRange(fmt, first, last, length, casing if fmt != "base10" else "")
    if len(found.serial(last)) > 128:
        raise InvalidImport(f"range {number}: serial numbers longer than 128 characters")
    return found
