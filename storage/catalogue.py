"""The catalogue: its validated shape and how it is stored (idempotent upsert by stable ids)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import secrets
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from redis.asyncio import Redis
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import keys
from storage.errors import CatalogueError
from storage.models import (
    Category,
    Contact,
    Exhibitor,
    Fair,
    InfoAnswer,
    OutboxMessage,
    OutboxStatus,
    Place,
    Registration,
    RegistrationStatus,
    Reminder,
    Stand,
    Workshop,
    utcnow,
)
from storage.notices import WorkshopCancelledNotice
from storage.reach import can_receive_later
from storage.text import fold

Key = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]

# ASCII digits: a pattern's \d also takes other scripts' digits, which times cannot be read in.
HOURS_RE = r"^[0-9]{1,2}:[0-9]{2}\s*-\s*[0-9]{1,2}:[0-9]{2}$"
_STAND_RE = re.compile(r"([A-Z]{1,3})\s*-?\s*([0-9]{1,4})")
_ARABIC_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "0123456789" * 2)


def normalize_stand_number(value: str) -> str | None:
    """`a 12`, `A-12`, `A١٢` -> `A12`; None when the text is not a stand number."""
    text = unicodedata.normalize("NFKC", value).translate(_ARABIC_DIGITS).strip().upper()
    match = _STAND_RE.fullmatch(text)
    if not match:
        return None
    letters, digits = match.groups()
    return f"{letters}{int(digits)}"


def stand_order(number: str) -> tuple[str, int]:
    """Sort key of a stand number: A2 before A10, then B1."""
    letters = number.rstrip("0123456789")
    digits = number[len(letters):]
    return letters, int(digits or 0)


def _stand_number(value: Any) -> Any:
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str):
        normalized = normalize_stand_number(value)
        if normalized is None:
            raise ValueError(f"{value!r} is not a stand number like A12")
        return normalized
    return value


StandNumber = Annotated[str, BeforeValidator(_stand_number)]


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


Line = Annotated[str, BeforeValidator(_strip), Field(min_length=1, max_length=2000)]


class Text(BaseModel):
    """A text meant for people, in French and Arabic (English optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    fr: Line
    ar: Line
    en: Line | None = None

    def as_dict(self) -> dict[str, str]:
        return self.model_dump(exclude_none=True)


SpeakerLine = Annotated[str, BeforeValidator(_strip), Field(min_length=1, max_length=200)]


class SpeakerText(BaseModel):
    """A speaker's name written in several scripts ("M. Youssef Bennani", "ذ. يوسف بناني")."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    fr: SpeakerLine | None = None
    ar: SpeakerLine | None = None
    en: SpeakerLine | None = None

    @model_validator(mode="after")
    def _named(self) -> SpeakerText:
        if not (self.fr or self.ar or self.en):
            raise ValueError("give the speaker's name: {fr: ..., ar: ...}")
        return self


def _speaker(value: Any) -> Any:
    if isinstance(value, str):
        if len(value.strip()) > 200:
            raise ValueError("must be at most 200 characters")
        return value
    if not isinstance(value, dict):
        raise ValueError("must be a text, or the name in each script: {fr: ..., ar: ...}")
    # A sheet's empty speaker_ar beside a filled speaker_fr is a name given in one script.
    return {key: text for key, text in value.items() if text not in ("", None)}


def speaker_names(value: SpeakerText | str) -> dict[str, str]:
    """A catalogue speaker as a mapping by language: a plain text under "fr", shown to every
    reader as written; {} for none."""
    if isinstance(value, SpeakerText):
        return value.model_dump(exclude_none=True)
    return {"fr": value.strip()} if value.strip() else {}


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FairIn(_Item):
    id: Key
    name: Text
    city: Text
    venue: Text
    info: Text | None = None
    # The organizers' own privacy notice; without it the bot words its default one.
    privacy: Text | None = None
    timezone: str = "Africa/Casablanca"
    opens: dt.date
    closes: dt.date
    hours: Annotated[str, Field(pattern=HOURS_RE)] = "10:00-20:00"
    # When exhibitors set up their stands, the day before the fair opens.
    setup_hours: Annotated[str, Field(pattern=HOURS_RE)] | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # "Africa" is a folder
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _order(self) -> FairIn:
        if self.closes < self.opens:
            raise ValueError("closes is before opens")
        return self


class CategoryIn(_Item):
    id: Key
    name: Text


class StandIn(_Item):
    number: StandNumber
    zone: Text
    x: int = Field(ge=0, le=100_000)
    y: int = Field(ge=0, le=100_000)


class ExhibitorIn(_Item):
    id: Key
    kind: Literal["cooperative", "association", "company", "institution"] = "cooperative"
    name: Text
    aliases: list[Line] = []
    category: Key | None = None
    city: Text
    region: Text
    products: list[Text] = []
    stand: StandNumber | None = None
    women_led: bool = False
    labels: list[Key] = []
    phone: Annotated[str, Field(pattern=r"^\+?[0-9][0-9 .-]{5,20}$")] | None = None
    public_phone: bool = False


PLACE_ID_RE = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}"


def _room(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(PLACE_ID_RE, value):
        raise ValueError("must be a text in French and Arabic: {fr: ..., ar: ...}, "
                         "or the id of a place")
    return value


class WorkshopIn(_Item):
    id: Key
    title: Text
    description: Text | None = None
    # A text shown as written, or the name in each script: {fr: ..., ar: ...}.
    speaker: Annotated[SpeakerText | Annotated[str, Field(max_length=200)],
                       BeforeValidator(_speaker)] = ""
    # Its name in both languages, or the id of one of the catalogue's places.
    room: Annotated[Text | str, BeforeValidator(_room)]
    starts: dt.datetime
    ends: dt.datetime
    capacity: int = Field(ge=0, le=100_000)
    language: Literal["ar", "fr", "ar+fr"] = "ar+fr"
    audience: Literal["cooperatives", "all"] = "all"

    @model_validator(mode="after")
    def _order(self) -> WorkshopIn:
        starts, ends = self.starts, self.ends
        if starts.tzinfo is None or ends.tzinfo is None:
            starts, ends = starts.replace(tzinfo=None), ends.replace(tzinfo=None)
        if ends <= starts:
            raise ValueError("ends must be after starts")
        return self


PLACE_KINDS = ("room", "entrance", "toilets", "prayer", "first_aid", "food", "info", "exit")


class PlaceIn(_Item):
    """A room or facility at its point on the floor plan (the stands' units)."""

    id: Key
    kind: Literal["room", "entrance", "toilets", "prayer", "first_aid", "food", "info", "exit"]
    name: Text
    x: int = Field(ge=0, le=100_000)
    y: int = Field(ge=0, le=100_000)


KNOWN_INFO_TOPICS = ("toilets", "prayer", "parking", "food", "first_aid", "wifi", "entry",
                     "lost_found", "contact", "accessibility", "transport")
"""Practical topics the bot knows how people ask about: their `info:` answers need no words."""

Keyword = Annotated[str, BeforeValidator(_strip), Field(min_length=1, max_length=100)]


class InfoIn(_Item):
    """A practical answer: a known topic by its id, or any other id with its topic's name and
    the words people use for it (checked in `_check_info`, to name the field)."""

    id: Key
    topic: Text | None = None
    keywords: list[Keyword] | None = None
    answer: Text

    @property
    def known(self) -> bool:
        return self.id in KNOWN_INFO_TOPICS


AUDIENCE_RE = r"^(all|visitors|cooperatives|organizers|lang:(ar|fr)|workshop:[A-Za-z0-9_.-]+)$"


class ReminderIn(_Item):
    id: Key
    # As long as the stored audience may be (reminders.audience): a workshop of a reminder has
    # an id of at most 55 characters.
    audience: Annotated[str, Field(pattern=AUDIENCE_RE, max_length=64)] = "all"
    at: dt.datetime
    text: Text


class Catalogue(BaseModel):
    """A whole catalogue (YAML) or one sheet of it (CSV/XLSX: the other sections are None)."""

    model_config = ConfigDict(extra="forbid")
    fair: FairIn | None = None
    categories: list[CategoryIn] | None = None
    stands: list[StandIn] | None = None
    exhibitors: list[ExhibitorIn] | None = None
    workshops: list[WorkshopIn] | None = None
    reminders: list[ReminderIn] | None = None
    info: list[InfoIn] | None = None
    places: list[PlaceIn] | None = None

    def size(self) -> int:
        """Number of items, for progress display."""
        return sum(
            len(items)
            for items in (self.categories, self.stands, self.exhibitors, self.workshops,
                          self.reminders, self.info, self.places)
            if items
        )


Locator = Callable[[Sequence[str | int], str], str]
"""Writes the one error line for a place in the catalogue (("exhibitors", 12, "stand")) and a
message: it names the file and the place the way the file's author sees them."""


def yaml_locator(source: str) -> Locator:
    """`("exhibitors", 12, "stand")` -> `fair.yaml: exhibitors[12].stand: message`."""

    def locate(loc: Sequence[str | int], message: str) -> str:
        out = ""
        for part in loc:
            if isinstance(part, int):
                out += f"[{part}]"
            else:
                out += f".{part}" if out else str(part)
        return f"{source}: {out}: {message}" if out else f"{source}: {message}"

    return locate


_FRIENDLY = {
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_parsing": "must be yes or no (true/false)",
    "bool_type": "must be yes or no (true/false)",
    "missing": "is required",
    "string_too_short": "must not be empty",
    "too_short": "must not be empty",
    "datetime_from_date_parsing": "must be a date and time like 2026-12-13T10:00",
    "datetime_parsing": "must be a date and time like 2026-12-13T10:00",
    "datetime_type": "must be a date and time like 2026-12-13T10:00",
    "date_from_datetime_parsing": "must be a date like 2026-12-13",
    "date_parsing": "must be a date like 2026-12-13",
    "date_type": "must be a date like 2026-12-13",
    "extra_forbidden": "is not a known field",
    "greater_than_equal": "is too small",
    "less_than_equal": "is too large",
}


def _describe(error: Any) -> str:
    kind = error["type"]
    if kind in _FRIENDLY:
        return str(_FRIENDLY[kind])
    if kind in ("model_type", "model_attributes_type"):
        if error.get("ctx", {}).get("class_name") == "Text":
            return "must be a text in French and Arabic: {fr: ..., ar: ...}"
        return "must be a mapping of fields"
    if kind == "literal_error":
        return "must be one of " + str(error["ctx"]["expected"])
    if kind == "string_too_long":
        return f"must be at most {error['ctx']['max_length']} characters"
    if kind == "string_pattern_mismatch":
        return f"has an unexpected form: {error.get('input')!r}"
    return str(error["msg"]).removeprefix("Value error, ")


def validate_catalogue(data: Any, locate: Locator) -> Catalogue:
    """Validate raw data; raise CatalogueError naming the file and the first bad place."""
    if not isinstance(data, dict):
        raise CatalogueError(locate((), "the file must hold a mapping with fair, stands, ..."))
    try:
        catalogue = Catalogue.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        # drop pydantic's union/validator tags ("function-before[...]", "Text") from the place
        loc = [part for part in error["loc"]
               if isinstance(part, int) or ("[" not in part and not part[:1].isupper())]
        raise CatalogueError(locate(loc, _describe(error))) from None
    _check_references(catalogue, locate)
    return catalogue


def _check_references(catalogue: Catalogue, locate: Locator) -> None:
    def fail(loc: Sequence[str | int], message: str) -> None:
        raise CatalogueError(locate(loc, message))

    for section in ("categories", "exhibitors", "workshops", "reminders", "info", "places"):
        seen: set[str] = set()
        for index, item in enumerate(getattr(catalogue, section) or []):
            if item.id in seen:
                fail((section, index, "id"), f'duplicate id "{item.id}"')
            seen.add(item.id)
    _check_info(catalogue.info or [], fail)
    numbers: set[str] = set()
    for index, stand in enumerate(catalogue.stands or []):
        if stand.number in numbers:
            fail(("stands", index, "number"), f'duplicate stand "{stand.number}"')
        numbers.add(stand.number)
    if catalogue.fair is not None:
        categories = {category.id for category in catalogue.categories or []}
        for index, exhibitor in enumerate(catalogue.exhibitors or []):
            if exhibitor.stand is not None and exhibitor.stand not in numbers:
                fail(("exhibitors", index, "stand"), f'unknown stand "{exhibitor.stand}"')
            if exhibitor.category is not None and exhibitor.category not in categories:
                fail(("exhibitors", index, "category"), f'unknown category "{exhibitor.category}"')
        places = {place.id for place in catalogue.places or []}
        for index, workshop in enumerate(catalogue.workshops or []):
            if isinstance(workshop.room, str) and workshop.room not in places:
                fail(("workshops", index, "room"),
                     f'unknown place "{workshop.room}": add it under places: '
                     "or give the room's name as {fr: ..., ar: ...}")
        workshops = {workshop.id for workshop in catalogue.workshops or []}
        for index, reminder in enumerate(catalogue.reminders or []):
            target = reminder.audience.removeprefix("workshop:")
            if reminder.audience.startswith("workshop:") and target not in workshops:
                fail(("reminders", index, "audience"), f'unknown workshop "{target}"')


def _check_info(items: list[InfoIn], fail: Callable[[Sequence[str | int], str], None]) -> None:
    """A topic the bot does not know needs its name and the words people use for it."""
    for index, item in enumerate(items):
        for number, keyword in enumerate(item.keywords or []):
            if not fold(keyword):
                fail(("info", index, "keywords", number), "holds no letter or digit")
        if item.known:
            continue
        if item.topic is None:
            fail(("info", index, "topic"),
                 f'is required: "{item.id}" is not a known topic ({", ".join(KNOWN_INFO_TOPICS)})'
                 ", so say what it is about in French and Arabic")
        if not item.keywords:
            fail(("info", index, "keywords"),
                 "give at least one word people use for this topic (in French, Arabic, "
                 "Darija or English)")


@dataclass
class KindChanges:
    """What an import did to one kind of record (named as in `catalogue_counts`)."""

    created: int = 0
    updated: int = 0
    removed: int = 0
    created_ids: list[str] = field(default_factory=list)
    removed_ids: list[str] = field(default_factory=list)


@dataclass
class CancelledWorkshop:
    """A workshop the import cancels (it left the file while people had registered)."""

    key: str
    title: dict[str, str]
    starts_at: dt.datetime
    registrants: int
    told: int


@dataclass
class OverCapacity:
    """A workshop whose new capacity is below the seats already confirmed or offered."""

    key: str
    title: dict[str, str]
    confirmed: int
    capacity: int


@dataclass
class ImportReport:
    """What an import did, and what the catalogue now holds."""

    fair: str
    created: int = 0
    updated: int = 0
    removed: int = 0
    cancelled_workshops: list[str] = field(default_factory=list)
    over_capacity: list[str] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    # The same, in detail (the console shows it): per kind, the workshops cancelled with how
    # many people are told, and the capacity warnings.
    kinds: dict[str, KindChanges] = field(default_factory=dict)
    cancelled: list[CancelledWorkshop] = field(default_factory=list)
    capacity_warnings: list[OverCapacity] = field(default_factory=list)

    def kind(self, name: str) -> KindChanges:
        """The changes of one kind of record, made on first use."""
        return self.kinds.setdefault(name, KindChanges())

    def note_removed(self, name: str, keys: Sequence[str]) -> None:
        """Count rows of kind `name` removed by the import."""
        self.removed += len(keys)
        changes = self.kind(name)
        changes.removed += len(keys)
        changes.removed_ids.extend(keys)

    def summary(self) -> str:
        held = ", ".join(f"{count} {name}" for name, count in self.totals.items())
        line = (
            f"fair {self.fair}: {held} (created {self.created}, updated {self.updated}, "
            f"removed {self.removed})"
        )
        if self.cancelled_workshops:
            line += "; cancelled workshops with registrants: " + ", ".join(
                self.cancelled_workshops
            )
        if self.over_capacity:
            line += ("; WARNING, capacity now below the confirmed seats (nobody was dropped): "
                     + ", ".join(self.over_capacity))
        return line


def _local(value: dt.datetime | dt.date, zone: ZoneInfo) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(dt.UTC)


# Each kind of record by its name in reports and totals, in the order they are shown.
_KINDS: dict[Any, str] = {Category: "categories", Stand: "stands", Exhibitor: "exhibitors",
                          Workshop: "workshops", Reminder: "reminders",
                          InfoAnswer: "info answers", Place: "places"}


class _Upserter:
    def __init__(self, session: AsyncSession, report: ImportReport,
                 progress: Callable[[int], None] | None) -> None:
        self.session = session
        self.report = report
        self.progress = progress

    def set(self, kind: str, row: Any, values: dict[str, Any]) -> None:
        changed = any(getattr(row, name) != value for name, value in values.items())
        for name, value in values.items():
            setattr(row, name, value)
        if changed:
            self.report.updated += 1
            self.report.kind(kind).updated += 1
        if self.progress:
            self.progress(1)

    def add(self, kind: str, key: str, row: Any) -> None:
        self.session.add(row)
        self.report.created += 1
        changes = self.report.kind(kind)
        changes.created += 1
        changes.created_ids.append(key)
        if self.progress:
            self.progress(1)

    async def sync(self, model: Any, fair: Fair, key_name: str,
                   items: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        """Create or update one row per (stable key, values); return the rows left over."""
        kind = _KINDS[model]
        self.report.kind(kind)
        rows = {getattr(row, key_name): row for row in await self.session.scalars(
            select(model).where(model.fair_id == fair.id))}
        for key, values in items:
            row = rows.pop(key, None)
            if row is None:
                self.add(kind, key, model(fair_id=fair.id, **{key_name: key}, **values))
            else:
                self.set(kind, row, values)
        return list(rows.values())


async def active_fair(session: AsyncSession) -> Fair | None:
    """The fair this deployment serves: the most recently imported active one."""
    result = await session.scalars(
        select(Fair).where(Fair.active.is_(True)).order_by(Fair.imported_at.desc()).limit(1)
    )
    return result.first()


async def apply_catalogue(
    session: AsyncSession,
    catalogue: Catalogue,
    locate: Locator,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Store a validated catalogue in the session's transaction; the caller commits.

    Ids are stable: rows are updated in place; registrations and feedback are never dropped.
    A workshop that disappears while people are registered is cancelled and they are told
    through the outbox.
    """
    if catalogue.fair is not None:
        fair = await _upsert_fair(session, catalogue.fair)
    else:
        found = await active_fair(session)
        if found is None:
            raise CatalogueError(locate((), "no fair is loaded yet: import a YAML catalogue first"))
        fair = found
    zone = ZoneInfo(fair.timezone)
    report = ImportReport(fair=fair.key)
    up = _Upserter(session, report, progress)

    if catalogue.categories is not None:
        await _sync_categories(session, up, fair, catalogue.categories)
    if catalogue.stands is not None:
        await _sync_stands(session, up, fair, catalogue.stands)
    if catalogue.exhibitors is not None:
        await _sync_exhibitors(session, up, fair, catalogue.exhibitors, locate)
    if catalogue.fair is not None or catalogue.places is not None:
        # A YAML catalogue holds the fair's whole set of places: none when it has no `places:`.
        await _sync_places(session, up, fair, catalogue.places or [])
    if catalogue.workshops is not None:
        await _sync_workshops(session, up, fair, catalogue.workshops, zone, locate)
    if catalogue.reminders is not None:
        await _sync_reminders(session, up, fair, catalogue.reminders, zone)
    if catalogue.fair is not None or catalogue.info is not None:
        # A YAML catalogue holds the fair's whole set of answers: none when it has no `info:`.
        await _sync_info(session, up, fair, catalogue.info or [])
    await session.flush()
    report.totals = await catalogue_counts(session, fair.id)
    return report


async def catalogue_counts(session: AsyncSession, fair_id: int) -> dict[str, int]:
    """How many categories, stands, exhibitors, workshops, reminders and info answers a fair
    holds."""
    totals: dict[str, int] = {}
    for model, name in _KINDS.items():
        count = await session.scalar(
            select(func.count()).select_from(model).where(model.fair_id == fair_id)
        )
        totals[name] = int(count or 0)
    return totals


async def _upsert_fair(session: AsyncSession, item: FairIn) -> Fair:
    fair = (await session.scalars(select(Fair).where(Fair.key == item.id))).first()
    values: dict[str, Any] = {
        "name": item.name.as_dict(),
        "city": item.city.as_dict(),
        "venue": item.venue.as_dict(),
        "info": item.info.as_dict() if item.info else None,
        "privacy": item.privacy.as_dict() if item.privacy else None,
        "timezone": item.timezone,
        "opens": item.opens,
        "closes": item.closes,
        "hours": item.hours.replace(" ", ""),
        "setup_hours": item.setup_hours.replace(" ", "") if item.setup_hours else None,
        "active": True,
        "imported_at": utcnow(),
    }
    await session.execute(update(Fair).where(Fair.key != item.id).values(active=False))
    if fair is None:
        fair = Fair(key=item.id, **values)
        session.add(fair)
    else:
        for name, value in values.items():
            setattr(fair, name, value)
    await session.flush()
    return fair


async def _sync_categories(session: AsyncSession, up: _Upserter, fair: Fair,
                           items: list[CategoryIn]) -> None:
    removed = await up.sync(Category, fair, "key",
                            [(item.id, {"name": item.name.as_dict()}) for item in items])
    for row in removed:
        await session.delete(row)
    up.report.note_removed("categories", [row.key for row in removed])
    await session.flush()


async def _sync_stands(session: AsyncSession, up: _Upserter, fair: Fair,
                       items: list[StandIn]) -> None:
    removed = await up.sync(Stand, fair, "number", [
        (item.number, {"zone": item.zone.as_dict(), "x": item.x, "y": item.y})
        for item in items
    ])
    for row in removed:
        await session.execute(
            update(Exhibitor).where(Exhibitor.stand_id == row.id).values(stand_id=None))
        await session.delete(row)
    up.report.note_removed("stands", [row.number for row in removed])
    await session.flush()


async def _sync_exhibitors(session: AsyncSession, up: _Upserter, fair: Fair,
                           items: list[ExhibitorIn], locate: Locator) -> None:
    stands = {row.number: row.id for row in await session.scalars(
        select(Stand).where(Stand.fair_id == fair.id))}
    categories = {row.key: row.id for row in await session.scalars(
        select(Category).where(Category.fair_id == fair.id))}
    values: list[tuple[str, dict[str, Any]]] = []
    for index, item in enumerate(items):
        if item.stand is not None and item.stand not in stands:
            raise CatalogueError(locate(("exhibitors", index, "stand"),
                                        f'unknown stand "{item.stand}"'))
        if item.category is not None and item.category not in categories:
            raise CatalogueError(locate(("exhibitors", index, "category"),
                                        f'unknown category "{item.category}"'))
        values.append((item.id, {
            "kind": item.kind,
            "name": item.name.as_dict(),
            "aliases": list(item.aliases),
            "category_id": categories.get(item.category) if item.category else None,
            "city": item.city.as_dict(),
            "region": item.region.as_dict(),
            "products": [product.as_dict() for product in item.products],
            "stand_id": stands.get(item.stand) if item.stand else None,
            "women_led": item.women_led,
            "labels": list(item.labels),
            "phone": item.phone,
            "public_phone": item.public_phone,
        }))
    removed = await up.sync(Exhibitor, fair, "key", values)
    for row in removed:
        await session.execute(
            update(Contact).where(Contact.exhibitor_id == row.id).values(exhibitor_id=None))
        await session.delete(row)
    up.report.note_removed("exhibitors", [row.key for row in removed])
    await session.flush()


async def _sync_places(session: AsyncSession, up: _Upserter, fair: Fair,
                       items: list[PlaceIn]) -> None:
    """The fair's places become exactly those of the file, in its order."""
    removed = await up.sync(Place, fair, "key", [
        (item.id, {"kind": item.kind, "name": item.name.as_dict(), "x": item.x, "y": item.y,
                   "position": position})
        for position, item in enumerate(items)
    ])
    if removed:
        await session.execute(delete(Place).where(Place.id.in_([row.id for row in removed])))
        up.report.note_removed("places", [row.key for row in removed])
    await session.flush()


async def _rooms(session: AsyncSession, fair: Fair, items: list[WorkshopIn],
                 locate: Locator) -> list[tuple[dict[str, str], str | None]]:
    """Each workshop's room name and, when the file names a place, that place's id."""
    names = {row.key: row.name for row in await session.scalars(
        select(Place).where(Place.fair_id == fair.id))}
    # A room named as a place is (a spreadsheet's room_fr, room_ar) is that place.
    named = {(name.get("fr"), name.get("ar")): key for key, name in names.items()}
    rooms: list[tuple[dict[str, str], str | None]] = []
    for index, item in enumerate(items):
        if isinstance(item.room, Text):
            key = named.get((item.room.fr, item.room.ar))
            rooms.append((dict(names[key]), key) if key else (item.room.as_dict(), None))
        elif item.room in names:
            rooms.append((dict(names[item.room]), item.room))
        else:
            raise CatalogueError(locate(("workshops", index, "room"),
                                        f'unknown place "{item.room}"'))
    return rooms


def _speaker_columns(value: SpeakerText | str) -> dict[str, Any]:
    """`speaker` keeps a plain text (or the French name, for readers of the column alone);
    `speaker_names` the names by script when the catalogue gives them."""
    names = speaker_names(value)
    if isinstance(value, str):
        return {"speaker": names.get("fr", ""), "speaker_names": None}
    first = names.get("fr") or names.get("en") or names.get("ar", "")
    return {"speaker": first, "speaker_names": names}


async def _sync_workshops(session: AsyncSession, up: _Upserter, fair: Fair,
                          items: list[WorkshopIn], zone: ZoneInfo, locate: Locator) -> None:
    rooms = await _rooms(session, fair, items, locate)
    removed = await up.sync(Workshop, fair, "key", [(item.id, {
            "title": item.title.as_dict(),
            "description": item.description.as_dict() if item.description else None,
            **_speaker_columns(item.speaker),
            "room": room,
            "place": place,
            "starts_at": _local(item.starts, zone),
            "ends_at": _local(item.ends, zone),
            "capacity": item.capacity,
            "language": item.language,
            "audience": item.audience,
            "cancelled": False,
        }) for item, (room, place) in zip(items, rooms, strict=True)])
    for row in removed:
        registrants = list(await session.scalars(
            select(Registration).where(
                Registration.workshop_id == row.id,
                Registration.status != RegistrationStatus.CANCELLED,
            )))
        has_history = await session.scalar(
            select(func.count()).select_from(Registration)
            .where(Registration.workshop_id == row.id))
        if not has_history:
            await session.delete(row)
            up.report.note_removed("workshops", [row.key])
            continue
        if row.cancelled:
            continue
        up.report.cancelled_workshops.append(row.key)
        told = await cancel_workshop(session, row, registrants)
        up.report.cancelled.append(CancelledWorkshop(
            key=row.key, title=dict(row.title), starts_at=row.starts_at,
            registrants=len(registrants), told=told))
    await session.flush()
    # A capacity lowered below the seats already confirmed drops nobody: organizers are told.
    over: dict[int, tuple[str, int, int]] = {}
    for workshop_id, key, capacity, confirmed in (await session.execute(
            select(Workshop.id, Workshop.key, Workshop.capacity, func.count(Registration.id))
            .join(Registration, Registration.workshop_id == Workshop.id)
            .where(Workshop.fair_id == fair.id, Workshop.cancelled.is_(False),
                   Registration.status.in_([RegistrationStatus.CONFIRMED,
                                            RegistrationStatus.OFFERED]))
            .group_by(Workshop.id, Workshop.key, Workshop.capacity))).all():
        if confirmed > capacity:
            up.report.over_capacity.append(f"{key} ({confirmed} for {capacity})")
            over[workshop_id] = (key, confirmed, capacity)
    if over:
        titles: dict[int, dict[str, str]] = dict((await session.execute(
            select(Workshop.id, Workshop.title).where(Workshop.id.in_(list(over))))).all())
        up.report.capacity_warnings.extend(
            OverCapacity(key=key, title=dict(titles[workshop_id]), confirmed=confirmed,
                         capacity=capacity)
            for workshop_id, (key, confirmed, capacity) in over.items())


async def cancel_workshop(session: AsyncSession, workshop: Workshop,
                          registrants: list[Registration] | None = None) -> int:
    """Cancel a workshop in the session's transaction and queue one notice per registrant
    (confirmed, offered or waiting); returns how many will be told. Their registrations are
    kept, as history. The catalogue import and the organizer console both cancel here."""
    workshop.cancelled = True
    if registrants is None:
        registrants = list(await session.scalars(
            select(Registration).where(
                Registration.workshop_id == workshop.id,
                Registration.status != RegistrationStatus.CANCELLED,
            )))
    return await _tell_cancelled(session, workshop, registrants)


async def _tell_cancelled(session: AsyncSession, workshop: Workshop,
                          registrants: list[Registration]) -> int:
    """Queue one notice per registrant of a cancelled workshop; how many are told."""
    if not registrants:
        return 0
    told = 0
    contacts = {row.id: row for row in await session.scalars(
        select(Contact).where(Contact.id.in_([r.contact_id for r in registrants])))}
    now = utcnow()
    for registration in registrants:
        contact = contacts[registration.contact_id]
        if not can_receive_later(contact.channel):
            continue
        key = f"workshop-cancelled:{workshop.id}:{contact.id}"
        exists = await session.scalar(
            select(func.count()).select_from(OutboxMessage)
            .where(OutboxMessage.idempotency_key == key))
        if exists:
            continue
        notice = WorkshopCancelledNotice(workshop=workshop.key, title=workshop.title,
                                         starts_at=workshop.starts_at)
        session.add(OutboxMessage(
            contact_id=contact.id, channel=contact.channel, kind=notice.kind,
            payload=notice.dump(), due_at=now, idempotency_key=key))
        told += 1
    return told


async def _sync_reminders(session: AsyncSession, up: _Upserter, fair: Fair,
                          items: list[ReminderIn], zone: ZoneInfo) -> None:
    removed = await up.sync(Reminder, fair, "key", [
        (item.id, {"audience": item.audience, "at": _local(item.at, zone),
                   "text": item.text.as_dict()})
        for item in items
    ])
    for row in removed:
        # What was queued for a reminder the organizers removed must not go out.
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.idempotency_key.startswith(f"reminder:{row.id}:"),
                   OutboxMessage.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.SKIPPED, error="reminder removed from the catalogue"))
    if removed:
        await session.execute(delete(Reminder).where(
            Reminder.id.in_([row.id for row in removed])))
        up.report.note_removed("reminders", [row.key for row in removed])


async def _sync_info(session: AsyncSession, up: _Upserter, fair: Fair,
                     items: list[InfoIn]) -> None:
    """The fair's practical answers become exactly those of the file, in its order."""
    removed = await up.sync(InfoAnswer, fair, "key", [
        (item.id, {"topic": item.topic.as_dict() if item.topic else None,
                   "keywords": list(item.keywords or []), "answer": item.answer.as_dict(),
                   "position": position})
        for position, item in enumerate(items)
    ])
    if removed:
        await session.execute(delete(InfoAnswer).where(
            InfoAnswer.id.in_([row.id for row in removed])))
        up.report.note_removed("info answers", [row.key for row in removed])


# The largest catalogue file the console takes (the sample fair is about 40 kB; a national
# network's spreadsheet a few MB).
UPLOAD_LIMIT = 10 * 1024 * 1024
UPLOAD_ID_RE = re.compile(r"[A-Za-z0-9_-]{32}")
_RELEASE = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
            "return redis.call('del', KEYS[1]) end return 0")


class UploadTooLarge(CatalogueError):
    """A catalogue file over UPLOAD_LIMIT."""


@dataclass
class CatalogueUpload:
    """A catalogue file uploaded to the console, kept between its dry run and its import."""

    id: str
    name: str
    data: bytes
    by: str
    at: dt.datetime
    applied_by: str = ""
    applied_at: dt.datetime | None = None


class CatalogueUploads:
    """Uploaded catalogue files in Redis (keys.catalogue_upload), for an hour, so that any
    process of the deployment can apply what another one checked; and the lock that lets one
    console import run at a time."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._release = redis.register_script(_RELEASE)

    async def keep(self, name: str, data: bytes, by: str, now: dt.datetime) -> str:
        """Keep a file for keys.CATALOGUE_UPLOAD_TTL seconds; returns its (unguessable) id."""
        if len(data) > UPLOAD_LIMIT:
            raise UploadTooLarge(name, f"is larger than {UPLOAD_LIMIT // (1024 * 1024)} MB")
        upload_id = secrets.token_urlsafe(24)
        record = {"name": name, "data": base64.b64encode(data).decode(), "by": by,
                  "at": now.isoformat()}
        await self.redis.set(keys.catalogue_upload(upload_id), json.dumps(record),
                             ex=keys.CATALOGUE_UPLOAD_TTL)
        return upload_id

    async def get(self, upload_id: str) -> CatalogueUpload | None:
        """The upload of that id, or None when it is unknown, expired or not an id at all."""
        if not UPLOAD_ID_RE.fullmatch(upload_id):
            return None
        raw, applied = await self.redis.mget([keys.catalogue_upload(upload_id),
                                              keys.catalogue_upload_applied(upload_id)])
        if not raw:
            return None
        record = json.loads(raw)
        upload = CatalogueUpload(id=upload_id, name=str(record["name"]),
                                 data=base64.b64decode(record["data"]), by=str(record["by"]),
                                 at=dt.datetime.fromisoformat(record["at"]))
        if applied:
            marks = json.loads(applied)
            upload.applied_by = str(marks["by"])
            upload.applied_at = dt.datetime.fromisoformat(marks["at"])
        return upload

    async def mark_applied(self, upload_id: str, by: str, now: dt.datetime) -> None:
        """Remember that the upload was imported (who, when), as long as the upload lives."""
        await self.redis.set(keys.catalogue_upload_applied(upload_id),
                             json.dumps({"by": by, "at": now.isoformat()}),
                             ex=keys.CATALOGUE_UPLOAD_TTL)

    async def lock(self) -> str | None:
        """Take the console's import lock; its token, or None when another import runs."""
        token = secrets.token_hex(16)
        taken = await self.redis.set(keys.CATALOGUE_IMPORT_LOCK, token, nx=True,
                                     ex=keys.CATALOGUE_IMPORT_LOCK_TTL)
        return token if taken else None

    async def unlock(self, token: str) -> None:
        """Release the import lock, if it is still the one `token` took."""
        await self._release(keys=[keys.CATALOGUE_IMPORT_LOCK], args=[token])


@dataclass
class LoadedFair:
    """The fair this deployment serves, as the console's catalogue page shows it."""

    key: str
    name: dict[str, str]
    imported_at: dt.datetime
    totals: dict[str, int]


async def loaded_fair(session: AsyncSession) -> LoadedFair | None:
    """The active fair with when it was last imported and what it holds; None before any."""
    fair = await active_fair(session)
    if fair is None:
        return None
    return LoadedFair(key=fair.key, name=dict(fair.name), imported_at=fair.imported_at,
                      totals=await catalogue_counts(session, fair.id))
