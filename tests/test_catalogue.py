"""Catalogue import: YAML, CSV and XLSX files, idempotent upserts, errors that name the place."""

from __future__ import annotations

import csv
import datetime as dt
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.app import sample_catalogue
from bot.catalogue import REQUIRED_COLUMNS, SHEET_COLUMNS, import_catalogue
from bot.errors import CatalogueError
from storage import database
from storage.catalogue import (
    ExhibitorIn,
    ImportReport,
    StandIn,
    WorkshopIn,
    normalize_stand_number,
)
from storage.models import (
    Category,
    Contact,
    Exhibitor,
    Fair,
    Feedback,
    InfoAnswer,
    OutboxMessage,
    Registration,
    RegistrationStatus,
    Reminder,
    Stand,
    Workshop,
)
from storage.repositories import CatalogueRepository
from tests.conftest import DatabaseFactory, cli_env, run_tadamon

DATA = Path(__file__).with_name("data")
ZONE = ZoneInfo("Africa/Casablanca")
SAMPLE_TOTALS = {"categories": 5, "stands": 120, "workshops": 16, "reminders": 4}
TABLES: dict[str, Any] = {
    "fairs": Fair, "categories": Category, "stands": Stand, "exhibitors": Exhibitor,
    "workshops": Workshop, "reminders": Reminder, "contacts": Contact,
    "registrations": Registration, "feedback": Feedback, "outbox": OutboxMessage,
}
BOTH = pytest.mark.parametrize("kind", ["sqlite", "postgres"])
# the C loader and dumper when PyYAML has them (ten times faster on the 1800-line sample)
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@functools.cache
def _sample_text() -> str:
    return sample_catalogue().read_text(encoding="utf-8")


def sample() -> dict[str, Any]:
    """The bundled sample fair as plain data, ready to be changed and written back."""
    data: dict[str, Any] = yaml.load(_sample_text(), Loader=_LOADER)
    return data


def write_yaml(path: Path, data: Any) -> Path:
    text = yaml.dump(data, Dumper=_DUMPER, allow_unicode=True, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class Db:
    """A migrated database and the ways the tests look into it."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    async def load(self, path: Path, *, dry_run: bool = False) -> ImportReport:
        return await import_catalogue(self.sessions, path, dry_run=dry_run)

    async def counts(self) -> dict[str, int]:
        async with self.sessions() as session:
            return {name: int(await session.scalar(select(func.count()).select_from(model)) or 0)
                    for name, model in TABLES.items()}

    async def ids(self) -> dict[str, dict[str, int]]:
        """Row ids by stable key, for every catalogue table."""
        async with self.sessions() as session:
            found: dict[str, dict[str, int]] = {}
            for name, model, key in (("categories", Category, Category.key),
                                     ("stands", Stand, Stand.number),
                                     ("exhibitors", Exhibitor, Exhibitor.key),
                                     ("workshops", Workshop, Workshop.key),
                                     ("reminders", Reminder, Reminder.key)):
                rows = await session.execute(select(key, model.id))
                found[name] = {str(k): int(i) for k, i in rows}
            return found

    async def one(self, model: Any, **where: Any) -> Any:
        async with self.sessions() as session:
            return (await session.scalars(select(model).filter_by(**where))).one()

    async def all(self, model: Any, **where: Any) -> list[Any]:
        async with self.sessions() as session:
            return list(await session.scalars(select(model).filter_by(**where)))

    async def register(self, workshop_key: str, user: str,
                       status: RegistrationStatus = RegistrationStatus.CONFIRMED,
                       channel: str = "telegram") -> int:
        """A person registered to a workshop, with a feedback row; the contact id."""
        async with self.sessions() as session, session.begin():
            workshop = (await session.scalars(
                select(Workshop).where(Workshop.key == workshop_key))).one()
            contact = Contact(channel=channel, user_id=f"{channel}-{user}", language="fr")
            session.add(contact)
            await session.flush()
            session.add(Registration(workshop_id=workshop.id, contact_id=contact.id,
                                     status=status))
            session.add(Feedback(fair_id=workshop.fair_id, contact_id=contact.id,
                                 target_kind="workshop", target_key=workshop_key, rating=5,
                                 comment="Très utile", language="fr"))
            return contact.id


OpenDb = Callable[..., Awaitable[Db]]


@pytest.fixture
async def open_db(make_database: DatabaseFactory) -> AsyncIterator[OpenDb]:
    """`await open_db("sqlite" | "postgres", sample=True)` -> a Db on a fresh database."""
    engines: list[AsyncEngine] = []

    async def make(kind: str = "sqlite", *, sample: bool = True) -> Db:
        engine = database.create_engine(await make_database(kind, sample=sample))
        engines.append(engine)
        return Db(engine, database.create_sessionmaker(engine))

    yield make
    for engine in engines:
        await engine.dispose()


# -- idempotency and re-imports -------------------------------------------------------------


@BOTH
async def test_importing_the_sample_again_changes_nothing(open_db: OpenDb, kind: str) -> None:
    db = await open_db(kind)
    before_ids = await db.ids()
    before = await db.counts()

    # the database was made by a first import of the sample: this is the second one
    report = await db.load(sample_catalogue())
    assert (report.created, report.updated, report.removed) == (0, 0, 0)
    assert report.cancelled_workshops == []
    assert report.fair == "khouribga-ess-2026"
    assert {name: report.totals[name] for name in SAMPLE_TOTALS} == SAMPLE_TOTALS
    assert report.totals["exhibitors"] >= 120
    assert await db.counts() == before
    assert await db.ids() == before_ids
    assert before["fairs"] == 1
    assert "(created 0, updated 0, removed 0)" in report.summary()


async def test_first_import_creates_everything(open_db: OpenDb) -> None:
    db = await open_db("sqlite", sample=False)
    steps: list[tuple[int, int]] = []
    first = await import_catalogue(db.sessions, sample_catalogue(),
                                   progress=lambda done, total: steps.append((done, total)))
    assert first.created == sum(first.totals.values())
    assert steps[-1] == (first.created, first.created)
    assert [done for done, _ in steps] == sorted(done for done, _ in steps)
    assert (first.updated, first.removed) == (0, 0)
    second = await db.load(sample_catalogue())
    assert (second.created, second.updated, second.removed) == (0, 0, 0)
    assert second.totals == first.totals


@BOTH
async def test_reimport_updates_in_place_and_keeps_people(
    open_db: OpenDb, kind: str, tmp_path: Path
) -> None:
    db = await open_db(kind)
    data = sample()
    workshop, exhibitor = data["workshops"][0], data["exhibitors"][0]
    contact_id = await db.register(workshop["id"], "amina")
    before_ids = await db.ids()

    workshop["capacity"] = 3
    exhibitor["name"] = {"fr": "Coopérative Al Hirafi (nouveau nom)",
                         "ar": "تعاونية الحرفي الجديدة"}
    report = await db.load(write_yaml(tmp_path / "fair.yaml", data))

    assert (report.created, report.updated, report.removed) == (0, 2, 0)
    assert await db.ids() == before_ids
    stored_workshop = await db.one(Workshop, key=workshop["id"])
    assert stored_workshop.capacity == 3
    assert stored_workshop.cancelled is False
    stored_exhibitor = await db.one(Exhibitor, key=exhibitor["id"])
    assert stored_exhibitor.name == exhibitor["name"]
    registration = await db.one(Registration, contact_id=contact_id)
    assert registration.workshop_id == stored_workshop.id
    assert registration.status == RegistrationStatus.CONFIRMED
    feedback = await db.one(Feedback, contact_id=contact_id)
    assert (feedback.target_key, feedback.rating, feedback.comment) == (
        workshop["id"], 5, "Très utile")


@BOTH
async def test_removed_workshop_with_registrants_is_cancelled_and_they_are_told(
    open_db: OpenDb, kind: str, tmp_path: Path
) -> None:
    db = await open_db(kind)
    data = sample()
    kept_keys = [item["id"] for item in data["workshops"]]
    busy, empty = kept_keys[1], kept_keys[2]
    amina = await db.register(busy, "amina")
    karim = await db.register(busy, "karim", RegistrationStatus.WAITLISTED)
    gone = await db.register(busy, "sara", RegistrationStatus.CANCELLED)
    web = await db.register(busy, "walid", channel="web")  # told in the web chat's inbox
    registrants = {amina, karim, web}
    data["workshops"] = [item for item in data["workshops"] if item["id"] not in (busy, empty)]
    path = write_yaml(tmp_path / "fair.yaml", data)

    report = await db.load(path)
    assert report.cancelled_workshops == [busy]
    assert report.removed == 1  # the workshop nobody registered to
    assert f"cancelled workshops with registrants: {busy}" in report.summary()
    assert await db.all(Workshop, key=empty) == []
    cancelled = await db.one(Workshop, key=busy)
    assert cancelled.cancelled is True
    assert len(await db.all(Registration, workshop_id=cancelled.id)) == 4
    notices = await db.all(OutboxMessage, kind="workshop_cancelled")
    assert {notice.contact_id for notice in notices} == registrants
    assert gone not in {notice.contact_id for notice in notices}
    assert {notice.contact_id: notice.channel for notice in notices}[web] == "web"
    assert all(notice.payload["workshop"] == busy for notice in notices)
    assert len(await db.all(Feedback)) == 4

    again = await db.load(path)
    assert again.cancelled_workshops == []
    assert (again.created, again.updated, again.removed) == (0, 0, 0)
    assert len(await db.all(OutboxMessage, kind="workshop_cancelled")) == 3
    assert (await db.one(Workshop, key=busy)).cancelled is True


# -- broken files ---------------------------------------------------------------------------


def small_sample() -> dict[str, Any]:
    """The sample cut to its first ten exhibitors and their stands: quicker to read."""
    data = sample()
    data["exhibitors"] = data["exhibitors"][:10]
    used = {item.get("stand") for item in data["exhibitors"]}
    data["stands"] = [item for index, item in enumerate(data["stands"])
                      if index < 10 or item["number"] in used]
    return data


def _changed(change: Callable[[dict[str, Any]], Any]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        data = small_sample()
        change(data)
        return write_yaml(folder / "fair.yaml", data)

    return make


def _text(name: str, text: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_text(text, encoding="utf-8")
        return path

    return make


def _bytes(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return make


def _exhibitors_sheet(folder: Path) -> Path:
    rows = sheet_rows(sample())["exhibitors"]
    rows[1]["name_ar"] = ""
    return write_csv(folder / "exhibitors.csv", "exhibitors", rows)


def _workbook_unknown_stand(folder: Path) -> Path:
    rows = sheet_rows(sample())
    rows["stands"].append({"number": "E1", "zone_fr": "Extérieur", "zone_ar": "الخارج",
                           "x": "10", "y": "590"})
    rows["exhibitors"][1]["stand"] = "Z9"
    return write_xlsx(folder / "fair.xlsx", rows, titles={"exhibitors": "Exposants exhibitors"})


def _set(section: str, index: int, field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data[section][index][field] = value

    return change


def _drop(section: str, index: int, field: str, lang: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        del data[section][index][field][lang]

    return change


def _set_fair(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["fair"][field] = value

    return change


def _same_id(data: dict[str, Any]) -> None:
    data["exhibitors"][4]["id"] = data["exhibitors"][1]["id"]


BROKEN: dict[str, tuple[Callable[[Path], Path], str]] = {
    "unknown stand": (_changed(_set("exhibitors", 3, "stand", "Z9")),
                      'fair.yaml: exhibitors[3].stand: unknown stand "Z9"'),
    "yaml syntax": (lambda folder: DATA / "broken-syntax.yaml",
                    "broken-syntax.yaml:6:8: expected ',' or '}', but got ':'"),
    "missing fr": (_changed(_drop("exhibitors", 5, "name", "fr")),
                   "fair.yaml: exhibitors[5].name.fr: is required"),
    "missing ar": (_changed(_drop("workshops", 2, "title", "ar")),
                   "fair.yaml: workshops[2].title.ar: is required"),
    "empty text": (_changed(_set("exhibitors", 2, "city", {"fr": "Fès", "ar": "  "})),
                   "fair.yaml: exhibitors[2].city.ar: must not be empty"),
    "text not in both languages": (
        _changed(_set("exhibitors", 2, "name", "Coopérative")),
        "fair.yaml: exhibitors[2].name: must be a text in French and Arabic: {fr: ..., ar: ...}"),
    "unknown category": (_changed(_set("exhibitors", 3, "category", "pottery")),
                         'fair.yaml: exhibitors[3].category: unknown category "pottery"'),
    "duplicate id": (_changed(_same_id),
                     'fair.yaml: exhibitors[4].id: duplicate id "coop-al-yasmine"'),
    "duplicate stand": (_changed(_set("stands", 7, "number", "a-1")),
                        'fair.yaml: stands[7].number: duplicate stand "A1"'),
    "ends before starts": (_changed(_set("workshops", 1, "ends", "2026-12-13T09:00")),
                           "fair.yaml: workshops[1]: ends must be after starts"),
    "bad language": (_changed(_set("workshops", 1, "language", "en")),
                     "fair.yaml: workshops[1].language: must be one of 'ar', 'fr' or 'ar+fr'"),
    "yaml control character": (_text("fair.yaml", "fair:\n  id: khouribga\x01\n"),
                               "fair.yaml:2:16: unacceptable character #x0001: "
                               "special characters are not allowed"),
    "yaml not utf-8": (_bytes("fair.yaml", "fair:\n  city: Fès\n".encode("latin-1")),
                       "fair.yaml: is not UTF-8 text: save the file as UTF-8"),
    "not a mapping": (_text("fair.yaml", "- just\n- a list\n"),
                      "fair.yaml: the file must hold a mapping with fair, stands, ..."),
    "csv capacity": (lambda folder: DATA / "bad" / "workshops.csv",
                     "workshops.csv:4: capacity must be a whole number"),
    "csv missing column": (lambda folder: DATA / "bad" / "stands.csv",
                           "stands.csv:1: missing column y"),
    "csv unknown column": (
        _text("stands.csv", "number,zone_fr,zone_ar,x,y,colour\nA1,Hall,رواق,1,2,red\n"),
        "stands.csv:1: unknown column colour"),
    "csv not utf-8": (lambda folder: DATA / "bad" / "exhibitors.csv",
                      "exhibitors.csv: is not UTF-8 text: save the sheet as CSV UTF-8"),
    "csv empty text": (_exhibitors_sheet, "exhibitors.csv:3: name_ar must not be empty"),
    "csv unknown kind": (
        _text("people.csv", "name,phone\nAmina,0600000000\n"),
        "people.csv:1: cannot tell the sheet's kind: name the file exhibitors.csv, stands.csv "
        "or workshops.csv, or use the documented columns"),
    "xlsx unknown stand": (_workbook_unknown_stand,
                           'fair.xlsx[Exposants exhibitors]:3: stand: unknown stand "Z9"'),
    "xlsx not a zip": (_text("fair.xlsx", "id,name\n"),
                       "fair.xlsx: is not a readable XLSX workbook (File is not a zip file)"),
    # Found by fuzzing: time zones that are a folder, or too long a name for a file, made
    # the import fail with IsADirectoryError or OSError instead of naming the place.
    "time zone is a folder": (_changed(_set_fair("timezone", "Africa")),
                              "fair.yaml: fair.timezone: unknown time zone 'Africa'"),
    "time zone too long": (_changed(_set_fair("timezone", "Z" * 300)),
                           f"fair.yaml: fair.timezone: unknown time zone '{'Z' * 300}'"),
    "unknown extension": (_text("fair.json", "{}"),
                          "fair.json: unknown file type: use .yaml, .csv or .xlsx"),
}


@pytest.mark.parametrize("case", list(BROKEN))
async def test_broken_file_names_the_place_and_stores_nothing(
    open_db: OpenDb, tmp_path: Path, case: str
) -> None:
    db = await open_db("sqlite")
    make, expected = BROKEN[case]
    before, before_ids = await db.counts(), await db.ids()
    with pytest.raises(CatalogueError) as caught:
        await db.load(make(tmp_path))
    assert str(caught.value) == expected
    assert "\n" not in str(caught.value)
    assert await db.counts() == before
    assert await db.ids() == before_ids


async def test_missing_file(open_db: OpenDb, tmp_path: Path) -> None:
    db = await open_db("sqlite", sample=False)
    path = tmp_path / "nowhere" / "fair.yaml"
    with pytest.raises(CatalogueError, match=r"fair\.yaml: no such file$"):
        await db.load(path)
    with pytest.raises(CatalogueError, match="no such file"):
        await db.load(tmp_path)  # a folder is not a catalogue either


async def test_failed_workbook_rolls_back_earlier_sheets(open_db: OpenDb, tmp_path: Path) -> None:
    """The stands sheet is stored before the exhibitors sheet fails: all of it is undone."""
    db = await open_db("sqlite")
    with pytest.raises(CatalogueError):
        await db.load(_workbook_unknown_stand(tmp_path))
    assert await db.all(Stand, number="E1") == []
    assert len(await db.all(Stand)) == 120


# -- CSV and XLSX sheets --------------------------------------------------------------------


def _joined(values: Iterable[str]) -> str:
    return ";".join(values)


def sheet_rows(data: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """The sample's stands, exhibitors and workshops as sheet rows (documented columns)."""
    stands = [{"number": item["number"], "zone_fr": item["zone"]["fr"],
               "zone_ar": item["zone"]["ar"], "x": str(item["x"]), "y": str(item["y"])}
              for item in data["stands"]]
    exhibitors = []
    for item in data["exhibitors"]:
        products = item.get("products", [])
        exhibitors.append({
            "id": item["id"], "kind": item.get("kind", "cooperative"),
            "name_fr": item["name"]["fr"], "name_ar": item["name"]["ar"],
            "aliases": _joined(item.get("aliases", [])), "category": item.get("category", ""),
            "city_fr": item["city"]["fr"], "city_ar": item["city"]["ar"],
            "region_fr": item["region"]["fr"], "region_ar": item["region"]["ar"],
            "products_fr": _joined(product["fr"] for product in products),
            "products_ar": _joined(product["ar"] for product in products),
            "stand": item.get("stand", ""), "women_led": "oui" if item.get("women_led") else "",
            "labels": _joined(item.get("labels", [])), "phone": item.get("phone", ""),
            "public_phone": "yes" if item.get("public_phone") else "no",
        })
    workshops = []
    rooms = {place["id"]: place["name"] for place in data.get("places", [])}
    for item in data["workshops"]:
        room = rooms.get(item["room"], item["room"])
        description = item.get("description") or {"fr": "", "ar": ""}
        workshops.append({
            "id": item["id"], "title_fr": item["title"]["fr"], "title_ar": item["title"]["ar"],
            "description_fr": description["fr"], "description_ar": description["ar"],
            **_speaker_cells(item.get("speaker", "")), "room_fr": room["fr"],
            "room_ar": room["ar"], "starts": str(item["starts"]),
            "ends": str(item["ends"]), "capacity": str(item["capacity"]),
            "language": item.get("language", "ar+fr"), "audience": item.get("audience", "all"),
        })
    return {"stands": stands, "exhibitors": exhibitors, "workshops": workshops}


def _speaker_cells(speaker: str | dict[str, str]) -> dict[str, str]:
    """A YAML speaker as sheet cells: `speaker`, or `speaker_fr` and `speaker_ar`."""
    if isinstance(speaker, dict):
        return {"speaker_fr": speaker.get("fr", ""), "speaker_ar": speaker.get("ar", "")}
    return {"speaker": speaker}


def write_csv(path: Path, kind: str, rows: list[dict[str, str]], delimiter: str = ",") -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, SHEET_COLUMNS[kind], delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_xlsx(path: Path, sheets: dict[str, list[dict[str, Any]]],
               titles: dict[str, str] | None = None) -> Path:
    workbook = Workbook()
    workbook.active.title = "Notes"
    workbook.active.append(["This sheet is ignored."])
    for kind, rows in sheets.items():
        sheet = workbook.create_sheet((titles or {}).get(kind, kind))
        sheet.append(list(SHEET_COLUMNS[kind]))
        for row in rows:
            sheet.append([row.get(column, "") for column in SHEET_COLUMNS[kind]])
    workbook.save(path)
    return path


def test_documented_sheet_columns_match_the_catalogue_fields() -> None:
    assert set(SHEET_COLUMNS) == {"stands", "exhibitors", "workshops"}
    for kind, model in (("stands", StandIn), ("exhibitors", ExhibitorIn),
                        ("workshops", WorkshopIn)):
        columns = SHEET_COLUMNS[kind]
        assert len(set(columns)) == len(columns)
        assert set(REQUIRED_COLUMNS[kind]) <= set(columns)
        bases = {column.removesuffix("_fr").removesuffix("_ar") for column in columns}
        assert bases == set(model.model_fields), kind


async def test_csv_sheets_update_the_loaded_fair(open_db: OpenDb, tmp_path: Path) -> None:
    db = await open_db("sqlite")
    rows = sheet_rows(sample())
    before_ids = await db.ids()

    # the sample written as sheets holds exactly what is stored: nothing changes
    for kind, delimiter in (("stands", ","), ("exhibitors", ";"), ("workshops", "\t")):
        path = write_csv(tmp_path / f"{kind}.csv", kind, rows[kind], delimiter)
        report = await db.load(path)
        assert (report.created, report.updated, report.removed) == (0, 0, 0), kind
    assert await db.ids() == before_ids

    rows["stands"].append({"number": "e-1", "zone_fr": "Extérieur", "zone_ar": "الخارج",
                           "x": "10", "y": "590"})
    report = await db.load(write_csv(tmp_path / "stands.csv", "stands", rows["stands"]))
    assert (report.created, report.updated, report.removed) == (1, 0, 0)
    assert report.totals["stands"] == 121
    stand = await db.one(Stand, number="E1")
    assert (stand.zone, stand.x, stand.y) == ({"fr": "Extérieur", "ar": "الخارج"}, 10, 590)

    first = rows["exhibitors"][0]
    first.update({"name_fr": 'Coopérative "Al Hirafi"', "aliases": "hirafi; el hirafi",
                  "products_fr": "fer forgé;lanternes;portes",
                  "products_ar": "الحديد;الفوانيس;الأبواب",
                  "stand": "E 1", "women_led": "Oui", "labels": "handmade;fair-trade",
                  "phone": "+212600000001", "public_phone": "yes"})
    path = write_csv(tmp_path / "exhibitors.csv", "exhibitors", rows["exhibitors"], ";")
    report = await db.load(path)
    assert (report.created, report.updated, report.removed) == (0, 1, 0)
    stored = await db.one(Exhibitor, key=first["id"])
    assert stored.name == {"fr": 'Coopérative "Al Hirafi"', "ar": first["name_ar"]}
    assert stored.aliases == ["hirafi", "el hirafi"]
    assert stored.products == [{"fr": "fer forgé", "ar": "الحديد"},
                               {"fr": "lanternes", "ar": "الفوانيس"},
                               {"fr": "portes", "ar": "الأبواب"}]
    assert stored.stand_id == stand.id
    assert (stored.women_led, stored.labels) == (True, ["handmade", "fair-trade"])
    assert (stored.phone, stored.public_phone) == ("+212600000001", True)
    again = await db.load(path)
    assert (again.created, again.updated, again.removed) == (0, 0, 0)
    assert again.totals == report.totals

    workshop = rows["workshops"][3]
    workshop.update({"capacity": "12", "starts": "2026-12-14 15:30", "ends": "2026-12-14T17:00",
                     "title_fr": 'Atelier "pratique", niveau 1'})
    path = write_csv(tmp_path / "workshops.csv", "workshops", rows["workshops"], "\t")
    report = await db.load(path)
    assert (report.created, report.updated, report.removed) == (0, 1, 0)
    stored_workshop = await db.one(Workshop, key=workshop["id"])
    assert stored_workshop.capacity == 12
    assert stored_workshop.title["fr"] == 'Atelier "pratique", niveau 1'
    assert stored_workshop.starts_at == dt.datetime(2026, 12, 14, 15, 30, tzinfo=ZONE)
    assert stored_workshop.ends_at == dt.datetime(2026, 12, 14, 17, 0, tzinfo=ZONE)
    assert await db.ids() == {**before_ids, "stands": {**before_ids["stands"], "E1": stand.id}}


async def test_csv_quotes_are_read_past_the_sniffed_sample(open_db: OpenDb,
                                                           tmp_path: Path) -> None:
    """A doubled quote far down a sheet is read as one quote, not as the end of the field."""
    db = await open_db("sqlite")
    rows = sheet_rows(sample())["exhibitors"]
    rows[-1]["name_fr"] = 'Association "Dar Al Baraka", Khouribga'
    path = write_csv(tmp_path / "exhibitors.csv", "exhibitors", rows)
    assert path.read_text(encoding="utf-8").index('""Dar') > 4096
    report = await db.load(path)
    assert (report.created, report.updated, report.removed) == (0, 1, 0)
    stored = await db.one(Exhibitor, key=rows[-1]["id"])
    assert stored.name["fr"] == 'Association "Dar Al Baraka", Khouribga'


async def test_csv_with_old_mac_line_ends_is_read_row_by_row(open_db: OpenDb,
                                                              tmp_path: Path) -> None:
    """A sheet whose rows end with a lone CR (old Mac spreadsheets) is read like any other;
    it used to stop the import with "new-line character seen in unquoted field"."""
    db = await open_db("sqlite")
    rows = sheet_rows(sample())["exhibitors"]
    rows[0]["name_fr"] = "Coopérative du Matin"
    path = write_csv(tmp_path / "exhibitors.csv", "exhibitors", rows)
    path.write_bytes(path.read_bytes().replace(b"\r\n", b"\r"))
    report = await db.load(path)
    assert (report.created, report.updated, report.removed) == (0, 1, 0)
    assert (await db.one(Exhibitor, key=rows[0]["id"])).name["fr"] == "Coopérative du Matin"


async def test_a_csv_that_cannot_be_parsed_names_the_file_and_line(open_db: OpenDb,
                                                                   tmp_path: Path) -> None:
    db = await open_db("sqlite")
    rows = sheet_rows(sample())["exhibitors"]
    rows[2]["name_fr"] = "x" * 200_000  # past the csv module's field limit
    path = write_csv(tmp_path / "exhibitors.csv", "exhibitors", rows)
    with pytest.raises(CatalogueError) as caught:
        await db.load(path)
    assert str(caught.value).startswith("exhibitors.csv:4: cannot be read as CSV (field larger")


async def test_xlsx_workbook(open_db: OpenDb, tmp_path: Path) -> None:
    db = await open_db("sqlite")
    rows: dict[str, list[dict[str, Any]]] = dict(sheet_rows(sample()))
    before_ids = await db.ids()
    report = await db.load(write_xlsx(tmp_path / "same.xlsx", rows))
    assert (report.created, report.updated, report.removed) == (0, 0, 0)

    # typed cells, as a spreadsheet holds them: numbers, dates, booleans
    rows["stands"] = [{**row, "x": int(row["x"]), "y": float(row["y"])} for row in rows["stands"]]
    workshop = rows["workshops"][0]
    workshop.update({"capacity": 25, "starts": dt.datetime(2026, 12, 13, 10, 30),
                     "ends": dt.datetime(2026, 12, 13, 12, 15)})
    exhibitor = rows["exhibitors"][2]
    exhibitor.update({"women_led": True, "name_ar": "تعاونية الأجيال"})
    rows["exhibitors"].append({**rows["exhibitors"][0], "id": "coop-nouvelle",
                               "name_fr": "Coopérative Nouvelle", "name_ar": "تعاونية جديدة"})
    path = write_xlsx(tmp_path / "fair.xlsx", rows,
                      titles={"stands": "Stands", "exhibitors": "Exhibitors 2026"})
    report = await db.load(path)
    assert (report.created, report.updated, report.removed) == (1, 2, 0)
    stored = await db.one(Workshop, key=workshop["id"])
    assert stored.capacity == 25
    assert stored.starts_at == dt.datetime(2026, 12, 13, 10, 30, tzinfo=ZONE)
    assert stored.ends_at == dt.datetime(2026, 12, 13, 12, 15, tzinfo=ZONE)
    changed = await db.one(Exhibitor, key=exhibitor["id"])
    assert (changed.women_led, changed.name["ar"]) == (True, "تعاونية الأجيال")
    assert (await db.one(Exhibitor, key="coop-nouvelle")).name["fr"] == "Coopérative Nouvelle"
    assert (await db.one(Stand, number="A1")).x == 60

    again = await db.load(path)
    assert (again.created, again.updated, again.removed) == (0, 0, 0)
    assert again.totals == report.totals
    ids = await db.ids()
    assert {name: ids[name] for name in ("stands", "workshops")} == {
        name: before_ids[name] for name in ("stands", "workshops")}


async def test_xlsx_error_names_the_sheet_and_row(open_db: OpenDb, tmp_path: Path) -> None:
    db = await open_db("sqlite")
    rows: dict[str, list[dict[str, Any]]] = {"workshops": sheet_rows(sample())["workshops"]}
    rows["workshops"][4]["capacity"] = "forty"
    with pytest.raises(CatalogueError) as caught:
        await db.load(write_xlsx(tmp_path / "fair.xlsx", rows, titles={"workshops": "Ateliers"}))
    assert str(caught.value) == "fair.xlsx[Ateliers]:6: capacity must be a whole number"


async def test_sheet_needs_a_loaded_fair(open_db: OpenDb, tmp_path: Path) -> None:
    db = await open_db("sqlite", sample=False)
    path = write_csv(tmp_path / "stands.csv", "stands", sheet_rows(sample())["stands"])
    with pytest.raises(CatalogueError) as caught:
        await db.load(path)
    assert str(caught.value) == (
        "stands.csv: no fair is loaded yet: import a YAML catalogue first")
    assert (await db.counts())["stands"] == 0


# -- dry runs -------------------------------------------------------------------------------


@BOTH
async def test_dry_run_reports_but_stores_nothing(
    open_db: OpenDb, kind: str, tmp_path: Path
) -> None:
    db = await open_db(kind)
    data = sample()
    data["workshops"][0]["capacity"] = 1
    data["stands"].append({"number": "E1", "zone": {"fr": "Extérieur", "ar": "الخارج"},
                           "x": 10, "y": 590})
    before, before_ids = await db.counts(), await db.ids()
    report = await db.load(write_yaml(tmp_path / "fair.yaml", data), dry_run=True)
    assert (report.created, report.updated, report.removed) == (1, 1, 0)
    assert report.totals["stands"] == 121
    assert await db.counts() == before
    assert await db.ids() == before_ids
    assert (await db.one(Workshop, key=data["workshops"][0]["id"])).capacity == 40


async def test_dry_run_on_an_empty_database(open_db: OpenDb) -> None:
    db = await open_db("sqlite", sample=False)
    report = await db.load(sample_catalogue(), dry_run=True)
    assert report.created == sum(report.totals.values())
    assert set((await db.counts()).values()) == {0}


# -- stand numbers --------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "number"), [
    ("A12", "A12"), ("a 12", "A12"), ("A-12", "A12"), ("A١٢", "A12"), ("  b3 ", "B3"),
    ("A012", "A12"), ("ab-۴", "AB4"), ("Ａ１２", "A12"),
])
def test_stand_numbers_normalize(typed: str, number: str) -> None:
    assert normalize_stand_number(typed) == number


@pytest.mark.parametrize("typed", ["", "12", "A", "hello", "A12B", "ABCD1", "A 12345"])
def test_not_stand_numbers(typed: str) -> None:
    assert normalize_stand_number(typed) is None



async def test_sheet_accepts_optional_english_texts(make_database: Any, tmp_path: Path) -> None:
    url = await make_database("sqlite", sample=True)
    sheet = tmp_path / "stands.csv"
    sheet.write_text(
        "number,zone_fr,zone_ar,zone_en,x,y\nA1,Hall A,الرواق أ,Hall A (crafts),10,10\n",
        encoding="utf-8",
    )
    engine = database.create_engine(url)
    sessions = database.create_sessionmaker(engine)
    try:
        report = await import_catalogue(sessions, sheet)
        assert report.totals["stands"] == 1
        async with sessions() as session:
            stand = (await session.scalars(select(Stand))).one()
        assert stand.zone == {"fr": "Hall A", "ar": "الرواق أ", "en": "Hall A (crafts)"}
    finally:
        await engine.dispose()


# -- practical answers (info:) --------------------------------------------------------------


def _info_ids(data: dict[str, Any]) -> list[str]:
    return [item["id"] for item in data["info"]]


async def _stored_info(db: Db) -> list[tuple[str, Any, Any, Any, int]]:
    async with db.sessions() as session:
        rows = await session.scalars(select(InfoAnswer).order_by(InfoAnswer.position))
        return [(row.key, row.topic, row.keywords, row.answer, row.position) for row in rows]


@BOTH
async def test_info_answers_are_imported_and_served(open_db: OpenDb, kind: str) -> None:
    db = await open_db(kind)
    stored = await _stored_info(db)
    assert [key for key, *_rest in stored] == _info_ids(sample())
    toilets = next(item for item in stored if item[0] == "toilets")
    assert toilets[1] is None and toilets[2] == []
    assert "entrée principale" in toilets[3]["fr"] and "المدخل الرئيسي" in toilets[3]["ar"]

    catalogue = CatalogueRepository(db.sessions)
    fair = await catalogue.fair()
    assert fair is not None
    answers = await catalogue.info_answers(fair.id)
    assert [answer.id for answer in answers] == _info_ids(sample())
    shuttle = next(answer for answer in answers if answer.id == "shuttle")
    assert shuttle.known is False
    assert shuttle.topic is not None and shuttle.topic["fr"].startswith("Navette")
    assert {"navette", "حافلة مكوكية", "navit", "shuttle"} <= set(shuttle.keywords)
    assert all(answer.known for answer in answers if answer.id != "shuttle")
    assert {answer.id for answer in answers} >= {"toilets", "prayer", "first_aid", "parking",
                                                 "transport", "entry"}
    assert all(answer.answer["fr"] and answer.answer["ar"] and answer.answer.get("en")
               for answer in answers)
    assert await catalogue.info_answers(fair.id + 1) == []


@BOTH
async def test_reimport_replaces_the_fairs_info_answers(
    open_db: OpenDb, kind: str, tmp_path: Path
) -> None:
    db = await open_db(kind)
    data = sample()
    same = await db.load(write_yaml(tmp_path / "same.yaml", data))
    assert (same.created, same.updated, same.removed) == (0, 0, 0)
    assert same.totals["info answers"] == len(data["info"])

    data["info"] = [
        {"id": "wifi", "answer": {"fr": "Réseau « Tadamon », sans mot de passe.",
                                  "ar": "شبكة «تضامن» بدون كلمة مرور."}},
        {**data["info"][1], "answer": {"fr": "Toilettes au fond du hall B.",
                                       "ar": "المراحيض في آخر الرواق ب."}},
    ]
    report = await db.load(write_yaml(tmp_path / "fair.yaml", data))
    assert (report.created, report.updated, report.removed) == (1, 1, len(sample()["info"]) - 1)
    assert report.totals["info answers"] == 2
    stored = await _stored_info(db)
    assert [(key, answer["fr"], position) for key, _topic, _words, answer, position in stored] == [
        ("wifi", "Réseau « Tadamon », sans mot de passe.", 0),
        ("toilets", "Toilettes au fond du hall B.", 1)]

    # every process learns of it with the catalogue's next version
    version = 0

    async def current() -> int:
        return version

    catalogue = CatalogueRepository(db.sessions, current, check_every=0)
    fair = await catalogue.fair()
    assert fair is not None
    assert [answer.id for answer in await catalogue.info_answers(fair.id)] == ["wifi", "toilets"]
    del data["info"]
    await db.load(write_yaml(tmp_path / "none.yaml", data))
    assert [answer.id for answer in await catalogue.info_answers(fair.id)] == ["wifi", "toilets"]
    version = 1
    assert await catalogue.info_answers(fair.id) == []
    assert await _stored_info(db) == []


@BOTH
async def test_dry_run_validates_info_but_stores_nothing(
    open_db: OpenDb, kind: str, tmp_path: Path
) -> None:
    db = await open_db(kind)
    before = await _stored_info(db)
    data = sample()
    data["info"] = [{"id": "food", "answer": {"fr": "Buvette en face du hall C.",
                                              "ar": "مقصف مقابل الرواق ج."}}]
    report = await db.load(write_yaml(tmp_path / "fair.yaml", data), dry_run=True)
    assert report.created == 1
    assert report.totals["info answers"] == 1
    assert await _stored_info(db) == before

    data["info"][0]["id"] = "buvette"
    with pytest.raises(CatalogueError, match=r"info\[0\]\.topic: is required"):
        await db.load(write_yaml(tmp_path / "bad.yaml", data), dry_run=True)
    assert await _stored_info(db) == before


def _info(index: int, **fields: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        item = data["info"][index]
        for name, value in fields.items():
            if value is None:
                item.pop(name, None)
            else:
                item[name] = value

    return change


def _duplicate_info(data: dict[str, Any]) -> None:
    data["info"][3]["id"] = data["info"][1]["id"]


INFO_BROKEN: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "custom topic without keywords": (
        _info(8, keywords=None),
        "fair.yaml: info[8].keywords: give at least one word people use for this topic "
        "(in French, Arabic, Darija or English)"),
    "custom topic with no keyword": (
        _info(8, keywords=[]),
        "fair.yaml: info[8].keywords: give at least one word people use for this topic "
        "(in French, Arabic, Darija or English)"),
    "empty keyword": (_info(8, keywords=["navette", "  "]),
                      "fair.yaml: info[8].keywords[1]: must not be empty"),
    "keyword without a letter": (_info(8, keywords=["navette", "?!"]),
                                 "fair.yaml: info[8].keywords[1]: holds no letter or digit"),
    "custom topic without its name": (
        _info(8, topic=None),
        'fair.yaml: info[8].topic: is required: "shuttle" is not a known topic (toilets, '
        "prayer, parking, food, first_aid, wifi, entry, lost_found, contact, accessibility, "
        "transport), so say what it is about in French and Arabic"),
    "answer without arabic": (_info(2, answer={"fr": "Près de l'entrée."}),
                              "fair.yaml: info[2].answer.ar: is required"),
    "no answer": (_info(0, answer=None), "fair.yaml: info[0].answer: is required"),
    "topic not a text": (_info(8, topic="Navette"),
                         "fair.yaml: info[8].topic: must be a text in French and Arabic: "
                         "{fr: ..., ar: ...}"),
    "bad id": (_info(4, id="first aid"), "fair.yaml: info[4].id: has an unexpected form: "
                                          "'first aid'"),
    "unknown field": (_info(1, where="hall B"), "fair.yaml: info[1].where: is not a known field"),
    "duplicate id": (_duplicate_info, 'fair.yaml: info[3].id: duplicate id "toilets"'),
}


@pytest.mark.parametrize("case", list(INFO_BROKEN))
async def test_broken_info_names_the_place(open_db: OpenDb, tmp_path: Path, case: str) -> None:
    db = await open_db("sqlite")
    change, expected = INFO_BROKEN[case]
    before = await _stored_info(db)
    with pytest.raises(CatalogueError) as caught:
        await db.load(_changed(change)(tmp_path))
    assert str(caught.value) == expected
    assert await _stored_info(db) == before


async def test_tadamon_import_refuses_broken_info_with_exit_2(tmp_path: Path) -> None:
    data = small_sample()
    del data["info"][8]["keywords"]
    path = write_yaml(tmp_path / "fair.yaml", data)
    env = cli_env(TADAMON_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    code, _out, err = await run_tadamon("import", str(path), "--dry-run", env=env, cwd=tmp_path)
    assert code == 2
    assert "fair.yaml: info[8].keywords: give at least one word" in err


# -- speakers: a text, or the name in each script -------------------------------------------


async def _speakers(db: Db) -> dict[str, dict[str, str]]:
    """Each workshop's speaker as the bot serves it, by workshop id."""
    catalogue = CatalogueRepository(db.sessions)
    fair = await catalogue.fair()
    assert fair is not None
    return {view.key: view.speaker for view in await catalogue.workshops(fair.id)}


@BOTH
async def test_a_speaker_is_a_text_or_a_name_in_each_script(
    open_db: OpenDb, kind: str, tmp_path: Path
) -> None:
    db = await open_db(kind)
    served = await _speakers(db)
    assert served["marketing-1"] == {"fr": "M. Youssef Bennani", "ar": "ذ. يوسف بناني"}
    data = sample()
    data["workshops"][0]["speaker"] = "Mme Samira El Alaoui"
    data["workshops"][1]["speaker"] = {"fr": "Pr. Youssef Bennani", "ar": "ذ. يوسف بناني",
                                       "en": "Prof. Youssef Bennani"}
    del data["workshops"][2]["speaker"]
    report = await db.load(write_yaml(tmp_path / "fair.yaml", data))
    assert report.updated == 3
    served = await _speakers(db)
    assert served["coop-finance-1"] == {"fr": "Mme Samira El Alaoui"}
    assert served["marketing-1"] == {"fr": "Pr. Youssef Bennani", "ar": "ذ. يوسف بناني",
                                     "en": "Prof. Youssef Bennani"}
    assert served["legal-framework-1"] == {}
    # The plain column keeps a text, or the French name, for whoever reads it alone.
    assert (await db.one(Workshop, key="marketing-1")).speaker == "Pr. Youssef Bennani"
    assert (await db.one(Workshop, key="coop-finance-1")).speaker_names is None


async def test_a_sheet_gives_the_speaker_as_a_text_or_by_script(
    open_db: OpenDb, tmp_path: Path
) -> None:
    db = await open_db("sqlite")
    rows = sheet_rows(sample())["workshops"]
    rows[0].update(speaker="", speaker_fr="Dr. Samira El Alaoui", speaker_ar="د. سميرة العلوي")
    rows[1].update(speaker="M. Youssef Bennani", speaker_fr="", speaker_ar="")
    rows[2].update(speaker="", speaker_fr="", speaker_ar="ذ. عبد الله لحلو")
    await db.load(write_csv(tmp_path / "workshops.csv", "workshops", rows))
    served = await _speakers(db)
    assert served["coop-finance-1"] == {"fr": "Dr. Samira El Alaoui", "ar": "د. سميرة العلوي"}
    assert served["marketing-1"] == {"fr": "M. Youssef Bennani"}
    assert served["legal-framework-1"] == {"ar": "ذ. عبد الله لحلو"}


@pytest.mark.parametrize(("speaker", "expected"), [
    ({"de": "Herr Bennani"}, "fair.yaml: workshops[1].speaker.de: is not a known field"),
    ({"fr": "", "ar": ""},
     "fair.yaml: workshops[1].speaker: give the speaker's name: {fr: ..., ar: ...}"),
    ("x" * 201, "fair.yaml: workshops[1].speaker: must be at most 200 characters"),
    (["Bennani"], "fair.yaml: workshops[1].speaker: must be a text, or the name in each "
                  "script: {fr: ..., ar: ...}"),
])
async def test_a_broken_speaker_names_the_place(
    open_db: OpenDb, tmp_path: Path, speaker: Any, expected: str
) -> None:
    db = await open_db("sqlite")
    data = sample()
    data["workshops"][1]["speaker"] = speaker
    with pytest.raises(CatalogueError) as caught:
        await db.load(write_yaml(tmp_path / "fair.yaml", data))
    assert str(caught.value) == expected
    assert (await _speakers(db))["marketing-1"]["ar"] == "ذ. يوسف بناني"


def _reminder_of_a_long_workshop_id(data: dict[str, Any]) -> None:
    long_id = "atelier-" + "x" * 52
    data["workshops"][0]["id"] = long_id
    data["reminders"][0]["audience"] = f"workshop:{long_id}"


@BOTH
async def test_a_reminder_audience_too_long_to_store_names_the_place(
        open_db: OpenDb, tmp_path: Path, kind: str) -> None:
    """Found by fuzzing: a reminder for a workshop whose id is over 55 characters passed the
    checks, then PostgreSQL refused its audience (varchar(64)) and `tadamon import` failed with
    a database error instead of naming the place."""
    db = await open_db(kind)
    before = await db.counts()
    data = small_sample()
    _reminder_of_a_long_workshop_id(data)
    with pytest.raises(CatalogueError) as caught:
        await db.load(write_yaml(tmp_path / "fair.yaml", data))
    assert str(caught.value) == "fair.yaml: reminders[0].audience: must be at most 64 characters"
    assert await db.counts() == before
