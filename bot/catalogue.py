"""Reading catalogue files: YAML (the whole fair) or CSV / XLSX sheets of one kind of record."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import tempfile
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import CatalogueError
from storage.catalogue import (
    Catalogue,
    ImportReport,
    Locator,
    apply_catalogue,
    validate_catalogue,
    yaml_locator,
)
from storage.models import utcnow
from storage.outbox import queue_reminders

SHEET_KINDS = ("exhibitors", "stands", "workshops")

# Columns of each sheet; "_fr"/"_ar" pairs become {fr, ar} texts and ";" separates list items.
SHEET_COLUMNS: dict[str, tuple[str, ...]] = {
    "stands": ("number", "zone_fr", "zone_ar", "x", "y"),
    "exhibitors": (
        "id", "kind", "name_fr", "name_ar", "aliases", "category", "city_fr", "city_ar",
        "region_fr", "region_ar", "products_fr", "products_ar", "stand", "women_led",
        "labels", "phone", "public_phone",
    ),
    "workshops": (
        # `speaker`: a name shown as written; or `speaker_fr` and `speaker_ar`, by script.
        "id", "title_fr", "title_ar", "description_fr", "description_ar", "speaker",
        "speaker_fr", "speaker_ar", "room_fr", "room_ar", "starts", "ends", "capacity",
        "language", "audience",
    ),
}
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "stands": ("number", "zone_fr", "zone_ar", "x", "y"),
    "exhibitors": ("id", "name_fr", "name_ar", "city_fr", "city_ar", "region_fr", "region_ar"),
    "workshops": ("id", "title_fr", "title_ar", "room_fr", "room_ar", "starts", "ends",
                  "capacity"),
}
_LISTS = {"aliases", "labels"}
_TEXT_LISTS = {"products"}
_BOOLS = {"women_led", "public_phone"}
_TRUE = {"1", "true", "yes", "oui", "y", "x", "نعم"}
_FALSE = {"0", "false", "no", "non", "n", "", "لا"}


@dataclass
class LoadedCatalogue:
    catalogue: Catalogue
    locate: Locator


def load_catalogue_file(path: Path) -> LoadedCatalogue:
    """Read and validate a catalogue file; CatalogueError names the file and the place."""
    source = path.name
    if not path.is_file():
        raise CatalogueError(str(path), "no such file")
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        locate = yaml_locator(source)
        return LoadedCatalogue(validate_catalogue(_read_yaml(path), locate), locate)
    if suffix == ".csv":
        kind, rows = _read_csv(path)
        return _sheets({kind: rows}, source, lambda kind: source)
    if suffix == ".xlsx":
        sheets, titles = _read_xlsx(path)
        return _sheets(sheets, source, lambda kind: f"{source}[{titles.get(kind, kind)}]")
    raise CatalogueError(source, "unknown file type: use .yaml, .csv or .xlsx")


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CatalogueError(path.name, "is not UTF-8 text: save the file as UTF-8") from None
    try:
        data = _load_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path.name}:{mark.line + 1}:{mark.column + 1}" if mark else path.name
        raise CatalogueError(where, str(exc.problem or exc.context or "invalid YAML")) from None
    except yaml.reader.ReaderError as exc:  # a control character; its str() takes two lines
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - text.rfind("\n", 0, exc.position)
        raise CatalogueError(f"{path.name}:{line}:{column}",
                             str(exc).splitlines()[0]) from None
    except yaml.YAMLError as exc:
        raise CatalogueError(path.name, "cannot be read: " + " ".join(str(exc).split())) from None
    if _too_many_items(data):
        # Aliases can make a small file stand for billions of items ("billion laughs").
        raise CatalogueError(path.name, f"holds more than {YAML_ITEM_LIMIT} items once its "
                                        "aliases (*name) are expanded")
    return data


# libyaml's safe loader where PyYAML was built with it (six times faster on the sample fair:
# 0.07 s instead of 0.5 s), else PyYAML's own; both build the same plain data.
FAST_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_yaml(text: str) -> Any:
    """The file's data, read by libyaml; a file it refuses is read again by PyYAML's own
    loader, whose errors name the place and the problem as organizers are told them."""
    try:
        return yaml.load(text, Loader=FAST_SAFE_LOADER)
    except yaml.YAMLError:
        return yaml.safe_load(text)

# Far more than a national fair's catalogue holds (tens of thousands of items).
YAML_ITEM_LIMIT = 2_000_000


def _too_many_items(data: Any) -> bool:
    """Whether the YAML tree, aliases expanded, has more than YAML_ITEM_LIMIT nodes (counted
    without expanding them: the walk stops at the limit)."""
    count = 0
    stack = [data]
    while stack:
        node = stack.pop()
        count += 1
        if count > YAML_ITEM_LIMIT:
            return True
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _sheet_kind(name: str, header: Sequence[str]) -> str | None:
    lowered = name.lower()
    for kind in SHEET_KINDS:
        if kind in lowered:
            return kind
    columns = set(header)
    for kind in SHEET_KINDS:
        if set(REQUIRED_COLUMNS[kind]) <= columns:
            return kind
    return None


Row = tuple[int, dict[str, str]]


def _read_csv(path: Path) -> tuple[str, list[Row]]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CatalogueError(path.name, "is not UTF-8 text: save the sheet as CSV UTF-8") from None
    try:
        delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    # Only the delimiter is sniffed: the sniffed quoting misreads "" in rows past the sample.
    # newline="": the csv module's own reading of line ends (a lone CR ends a row, as in old
    # Mac sheets), as with a file opened with newline="".
    reader = csv.reader(io.StringIO(text, newline=""), csv.excel, delimiter=delimiter)
    try:
        try:
            header = [cell.strip().lower() for cell in next(reader)]
        except StopIteration:
            raise CatalogueError(path.name, "the file is empty") from None
        kind = _sheet_kind(path.stem, header)
        if kind is None:
            raise CatalogueError(f"{path.name}:1",
                                 "cannot tell the sheet's kind: name the file exhibitors.csv, "
                                 "stands.csv or workshops.csv, or use the documented columns")
        rows: list[Row] = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            rows.append((reader.line_num,
                         dict(zip(header, (c.strip() for c in cells), strict=False))))
    except csv.Error as exc:
        raise CatalogueError(f"{path.name}:{reader.line_num}",
                             f"cannot be read as CSV ({exc})") from None
    return kind, _checked(kind, header, rows, f"{path.name}")


def _read_xlsx(path: Path) -> tuple[dict[str, list[Row]], dict[str, str]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise CatalogueError(path.name, f"is not a readable XLSX workbook ({exc})") from None
    sheets: dict[str, list[Row]] = {}
    titles: dict[str, str] = {}
    try:
        for sheet in workbook.worksheets:
            values = sheet.iter_rows(values_only=True)
            first = next(values, None)
            if first is None:
                continue
            header = [str(cell or "").strip().lower() for cell in first]
            kind = _sheet_kind(sheet.title, header)
            if kind is None:
                continue
            rows: list[Row] = []
            for number, cells in enumerate(values, start=2):
                texts = [_cell_text(cell) for cell in cells]
                if any(texts):
                    rows.append((number, dict(zip(header, texts, strict=False))))
            sheets[kind] = _checked(kind, header, rows, f"{path.name}[{sheet.title}]")
            titles[kind] = sheet.title
    finally:
        workbook.close()
    if not sheets:
        raise CatalogueError(path.name, "no sheet named exhibitors, stands or workshops")
    return sheets, titles


def _cell_text(cell: Any) -> str:
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if hasattr(cell, "isoformat"):
        return str(cell.isoformat())
    return str(cell).strip()


def _checked(kind: str, header: list[str], rows: list[Row], where: str) -> list[Row]:
    missing = [column for column in REQUIRED_COLUMNS[kind] if column not in header]
    if missing:
        raise CatalogueError(f"{where}:1", f"missing column {missing[0]}")
    # An optional English text may sit beside any French one (not for lists such as products).
    english = {f"{column[:-3]}_en" for column in SHEET_COLUMNS[kind]
               if column.endswith("_fr") and column[:-3] not in _TEXT_LISTS}
    unknown = [column for column in header
               if column and column not in SHEET_COLUMNS[kind] and column not in english]
    if unknown:
        raise CatalogueError(f"{where}:1", f"unknown column {unknown[0]}")
    return rows


def _row_item(row: dict[str, str]) -> dict[str, Any]:
    item: dict[str, Any] = {}
    texts: dict[str, dict[str, str]] = {}
    for column, value in row.items():
        if not column:
            continue
        base, _, lang = column.rpartition("_")
        if lang in ("fr", "ar", "en") and base:
            texts.setdefault(base, {})[lang] = value
        elif column in _LISTS:
            item[column] = [part.strip() for part in value.split(";") if part.strip()]
        elif column in _BOOLS:
            lowered = value.strip().lower()
            item[column] = True if lowered in _TRUE else False if lowered in _FALSE else value
        elif value != "":
            item[column] = value
    for base, text in texts.items():
        if base in _TEXT_LISTS:
            french = [part.strip() for part in text.get("fr", "").split(";") if part.strip()]
            arabic = [part.strip() for part in text.get("ar", "").split(";") if part.strip()]
            item[base] = [
                {"fr": fr, "ar": arabic[index] if index < len(arabic) else ""}
                for index, fr in enumerate(french)
            ]
        elif any(text.values()):
            item[base] = text
    return item


def _column(loc: Sequence[str | int]) -> str:
    """The sheet column of a place: ("name", "ar") -> `name_ar`, ("products", 0) -> `products`."""
    if not loc:
        return ""
    lang = str(loc[-1])
    return f"{loc[0]}_{lang}" if len(loc) > 1 and lang in ("fr", "ar", "en") else str(loc[0])


def _sheets(sheets: dict[str, list[Row]], source: str,
            where: Callable[[str], str]) -> LoadedCatalogue:
    data = {kind: [_row_item(row) for _, row in rows] for kind, rows in sheets.items()}
    lines = {kind: [number for number, _ in rows] for kind, rows in sheets.items()}

    def locate(loc: Sequence[str | int], message: str) -> str:
        if len(loc) >= 2 and isinstance(loc[0], str) and isinstance(loc[1], int):
            kind, index = loc[0], loc[1]
            line = lines[kind][index] if index < len(lines[kind]) else "?"
            column = _column(loc[2:])
            if column and not message.startswith(("must ", "is ", "has ")):
                column += ":"
            return f"{where(kind)}:{line}: " + (f"{column} {message}" if column else message)
        return f"{where(str(loc[0]))}: {message}" if loc else f"{source}: {message}"

    return LoadedCatalogue(validate_catalogue(data, locate), locate)


async def import_catalogue(
    sessions: async_sessionmaker[AsyncSession],
    path: Path,
    *,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Validate and store a catalogue file in one transaction (rolled back on a dry run)."""
    # Reading a large sheet takes a while: the process goes on answering meanwhile.
    loaded = await asyncio.to_thread(load_catalogue_file, path)
    total = loaded.catalogue.size()
    done = 0

    def step(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    async with sessions() as session, session.begin():
        report = await apply_catalogue(session, loaded.catalogue, loaded.locate, step)
        if dry_run:
            await session.rollback()
    if not dry_run:
        # Reminders become outbox rows now (and, for people who arrive later, in the workers).
        await queue_reminders(sessions, utcnow())
    return report


CATALOGUE_SUFFIXES = (".yaml", ".yml", ".csv", ".xlsx")
_UNSAFE = re.compile(r"[^\w.() -]+")


def safe_file_name(name: str) -> str | None:
    """An uploaded file's own name, made safe to write in a folder of our own: no folder part,
    no control or shell characters; None unless it ends in a catalogue's suffix."""
    base = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).strip()
    suffix = next((s for s in CATALOGUE_SUFFIXES if base.lower().endswith(s)), None)
    if suffix is None:
        return None
    stem = base[:-len(suffix)].strip(" .")[:100] or "catalogue"
    return stem + base[-len(suffix):]


async def import_catalogue_bytes(
    sessions: async_sessionmaker[AsyncSession], name: str, data: bytes, *,
    dry_run: bool = False,
) -> ImportReport:
    """`import_catalogue` of an uploaded file: written under its own name (errors name it as
    the command line does) in a private temporary folder, removed afterwards."""
    safe = safe_file_name(name)
    if safe is None:
        raise CatalogueError(name, "unknown file type: use .yaml, .csv or .xlsx")
    with tempfile.TemporaryDirectory(prefix="tadamon-catalogue-") as folder:
        path = Path(folder) / safe
        await asyncio.to_thread(path.write_bytes, data)
        return await import_catalogue(sessions, path, dry_run=dry_run)
