"""Row sources for the bulk upsert of smartcards and subscriptions (``conax.services.smartcards_upsert`` and
``subscriptions_upsert``): a JSON list of objects, or a CSV whose first line names the columns.

Each source yields ``(line, row)`` with ``row`` a dict of the fields the source gives, by name: a field a row does
not give is left as it is on an existing record; a field given empty (``null``, or an empty CSV cell) is cleared.
Lines are 1-based positions in the source so that an operator can find a rejected row. Values are checked by the
upsert, which reports each bad row with its line; only an unreadable source is refused as a whole here.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from conax.exceptions import InvalidParameter

Row = tuple[int, Any]


class BadRow(str):
    """A row the source itself could not read (a CSV line with too many cells): the reason, reported as is."""

    __slots__ = ()


CARD_COLUMNS = ("serial_number", "ca_id", "alternative_code", "subscription")
SUBSCRIPTION_COLUMNS = ("number", "customer", "services")
LIST_SEPARATOR = " "  # services in a CSV cell: codes separated by spaces (a code holds none: it is an identifier)


def rows_from_list(items: Iterable[Any]) -> Iterator[Row]:
    """A JSON list; an item that is not an object is passed on as it is, for the upsert to report with its line."""
    yield from enumerate(items, start=1)


def rows_from_csv(text: str, columns: tuple[str, ...]) -> Iterator[Row]:
    """The first non-blank line names the columns (any of ``columns``, in any order); blank lines are skipped."""
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    try:
        for line, cells in enumerate(reader, start=1):
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                header = _header(cells, columns)
                continue
            if len(cells) > len(header):
                yield line, BadRow(f"{len(cells)} cells for {len(header)} columns")
                continue
            yield line, {name: _cell(name, value) for name, value in zip(header, cells, strict=False)}
    except csv.Error as exc:
        raise InvalidParameter(f"not a readable CSV text: {exc}") from exc


def _header(cells: list[str], columns: tuple[str, ...]) -> list[str]:
    names = [cell.strip().lower() for cell in cells]
    unknown = [name for name in names if name not in columns]
    if unknown or len(set(names)) != len(names):
        raise InvalidParameter(
            f"the CSV's first line must name its columns, each once, among {', '.join(columns)}",
            description=f"unknown or repeated: {', '.join(unknown) or 'a repeated column'}",
        )
    return names


def _cell(name: str, value: str) -> Any:
    if name == "services":
        return value.split()
    return value if value != "" else None
