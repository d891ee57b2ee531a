"""CSV files for organizers (exports, report tables, coop codes), safe to open in a spreadsheet.

Their cells hold what visitors typed (comments, survey answers) and what a catalogue says. A
spreadsheet runs a cell that begins with `=`, `+`, `-` or `@` as a formula (and skips a leading
tab or carriage return to find one): such a text cell is written behind a `'`, which Excel and
LibreOffice show as plain text (CONTRACT.md, "CSV columns"). Numbers stay numbers.
"""

from __future__ import annotations

import csv
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Row = Sequence[Any] | Mapping[str, Any]
"""A row as values in column order, or as a mapping from column name to value."""


def cell(value: Any) -> Any:
    """One value as a CSV cell: a number as it is, None as empty, any other value as text,
    behind a `'` when it begins like a formula."""
    if value is None:
        return ""
    if isinstance(value, numbers.Number):  # bool, int, float, Decimal: never text
        return value
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def write_csv(handle: TextIO, columns: Sequence[str], rows: Iterable[Row]) -> int:
    """Write a header of `columns` then `rows` to `handle` (opened with newline=""), every cell
    through `cell`; returns the number of rows. A mapping row may leave columns out (empty
    cells) but not hold a key that is not a column."""
    writer = csv.writer(handle)
    writer.writerow([cell(name) for name in columns])
    count = 0
    for row in rows:
        writer.writerow([cell(value) for value in _values(row, columns)])
        count += 1
    return count


def _values(row: Row, columns: Sequence[str]) -> Sequence[Any]:
    if not isinstance(row, Mapping):
        return row
    unknown = row.keys() - set(columns)
    if unknown:
        raise ValueError(f"row keys that are not columns: {sorted(unknown)}")
    return [row.get(name, "") for name in columns]
