"""CSV files for organizers (exports, report tables, coop codes), safe to open in a spreadsheet.

Their cells hold what visitors typed (comments, survey answers) and what a catalogue says. A
spreadsheet runs a cell that begins with `=`, `+`, `-` or `@` as a formula (and skips a leading
tab or carriage return to find one): such a text cell is written behind a `'`, which Excel and
LibreOffice show as plain text (CONTRACT.md, "CSV columns"). Numbers stay numbers.

`EXPORTS` names each export's columns and where its rows come from, for `tadamon export` and
the console's downloads alike: both write the same file, and the same anonymous file
(`--anonymous`): each `user_id` replaced by the person's stable pseudonym
(storage.privacy.Pseudonyms), and the free texts (comments, delivery errors) without phone
numbers, e-mail addresses, links, handles or names (storage.questions.redact).
"""

from __future__ import annotations

import csv
import io
import numbers
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from storage.repositories import Sessions

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


def csv_text(columns: Sequence[str], rows: Iterable[Row]) -> str:
    """What `write_csv` writes to a file, as one string."""
    handle = io.StringIO(newline="")
    write_csv(handle, columns, rows)
    return handle.getvalue()


# ---- the exports ---------------------------------------------------------------------------

Fetch = Callable[["Sessions"], Awaitable[list[dict[str, Any]]]]


@dataclass(frozen=True, slots=True)
class Export:
    """One `tadamon export NAME`: its columns (CONTRACT.md's, then more), its rows, and its
    columns of free text (what a person or a platform wrote: cleaned in the anonymous file)."""

    name: str
    columns: tuple[str, ...]
    fetch: Fetch
    free_texts: tuple[str, ...] = ()

    async def rows(self, sessions: Sessions, *, anonymous: bool = False
                   ) -> list[dict[str, Any]]:
        """The export's rows; with `anonymous`, as `tadamon export NAME --anonymous` writes
        them (no user id, name or number: see the module's docstring)."""
        found = await self.fetch(sessions)
        if not anonymous:
            return found
        from storage.privacy import Pseudonyms
        from storage.questions import redact

        pseudonym = await Pseudonyms.of(sessions)
        return [{**row, "user_id": pseudonym(row["channel"], row["user_id"]),
                 **{column: redact(row[column]) for column in self.free_texts}}
                for row in found]


# Storage is imported when rows are read: the command line starts without it.

async def _registrations(sessions: Sessions) -> list[dict[str, Any]]:
    from storage.registrations import export_rows

    return await export_rows(sessions)


async def _feedback(sessions: Sessions) -> list[dict[str, Any]]:
    from storage.reports import feedback_rows

    return await feedback_rows(sessions)


async def _contacts(sessions: Sessions) -> list[dict[str, Any]]:
    from storage.reports import contact_rows

    return await contact_rows(sessions)


async def _deliveries(sessions: Sessions) -> list[dict[str, Any]]:
    from storage.outbox import Outbox

    return await Outbox(sessions).deliveries()


EXPORTS: dict[str, Export] = {export.name: export for export in (
    Export("registrations", ("workshop_id", "channel", "user_id", "status", "created_at"),
           _registrations),
    Export("feedback", ("target_kind", "target_id", "rating", "comment", "language", "channel",
                        "user_id", "created_at", "fair_id", "target_name_fr",
                        "target_name_ar"),
           _feedback, free_texts=("comment",)),
    Export("contacts", ("channel", "user_id", "language", "role", "opted_out", "created_at",
                        "unreachable", "last_inbound_at", "exhibitor_id"),
           _contacts),
    Export("deliveries", ("broadcast_id", "channel", "user_id", "status", "sent_at", "error",
                          "kind", "delivery_status"),
           _deliveries, free_texts=("error",)),
)}
"""Every export by name, in the order organizers see them."""
