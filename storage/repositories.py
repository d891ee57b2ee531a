"""Queries the conversation needs, returning plain read-only views (no ORM objects leak out)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import and_, delete, func, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.catalogue import (
    KNOWN_INFO_TOPICS,
    active_fair,
    normalize_stand_number,
    stand_order,
)
from storage.models import (
    Category,
    Contact,
    Exhibitor,
    InfoAnswer,
    Place,
    Registration,
    RegistrationStatus,
    Role,
    SavedStand,
    Stand,
    Workshop,
    utcnow,
)
from storage.search import SearchEntry, SearchIndex
from storage.text import fold

Sessions = async_sessionmaker[AsyncSession]

# Where an organizer's role comes from (contacts.role_source).
ROLE_BY_SETTING = "setting"  # TADAMON_ORGANIZERS: withdrawn at the next start once unlisted
ROLE_BY_COMMAND = "cli"  # `tadamon organizer add`: kept until `tadamon organizer remove`

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ContactView:
    id: int
    channel: str
    user_id: str
    language: str | None
    language_confirmed: bool
    role: Role
    opted_out: bool
    unreachable: bool = False
    created: bool = False


@dataclass(frozen=True, slots=True)
class FairView:
    id: int
    key: str
    name: dict[str, str]
    city: dict[str, str]
    venue: dict[str, str]
    info: dict[str, str] | None
    timezone: str
    opens: dt.date
    closes: dt.date
    hours: str
    privacy: dict[str, str] | None = None
    """The catalogue's own privacy notice; None: the service's default text."""


@dataclass(frozen=True, slots=True)
class ExhibitorView:
    key: str
    kind: str
    name: dict[str, str]
    category: dict[str, str] | None
    city: dict[str, str]
    region: dict[str, str]
    products: list[dict[str, str]]
    women_led: bool
    labels: list[str]
    phone: str | None

    @property
    def all_labels(self) -> list[str]:
        """Its labels, with women-led among them when the catalogue gives it as a flag."""
        if self.women_led and "women-led" not in self.labels:
            return ["women-led", *self.labels]
        return list(self.labels)


@dataclass(frozen=True, slots=True)
class StandView:
    number: str
    zone: dict[str, str]
    x: int
    y: int
    exhibitors: tuple[ExhibitorView, ...]


@dataclass(frozen=True, slots=True)
class ZoneView:
    index: int
    name: dict[str, str]
    stands: int


@dataclass(frozen=True, slots=True)
class WorkshopView:
    id: int
    key: str
    title: dict[str, str]
    description: dict[str, str] | None
    speaker: dict[str, str]  # the name by script; a plain text under "fr"; {} for none
    room: dict[str, str]
    starts_at: dt.datetime
    ends_at: dt.datetime
    capacity: int
    taken: int
    language: str
    audience: str
    cancelled: bool
    waiting: int = 0
    place: str | None = None  # the id of the catalogue's place the room is, if it names one

    @property
    def seats_left(self) -> int:
        return max(self.capacity - self.taken, 0)


@dataclass(frozen=True, slots=True)
class PlaceView:
    """A room or facility of the catalogue (`kind`: room, entrance, toilets, prayer, first_aid,
    food, info, exit) at its point on the floor plan."""

    id: str
    kind: str
    name: dict[str, str]
    x: int
    y: int


@dataclass(frozen=True, slots=True)
class InfoAnswerView:
    """A practical answer of the catalogue: `known` topics (toilets, prayer, parking...) have
    the words people use built in, and may have no `topic` name; others bring both."""

    id: str
    topic: dict[str, str] | None
    keywords: tuple[str, ...]
    answer: dict[str, str]
    known: bool


def _contact_view(row: Contact, created: bool = False) -> ContactView:
    return ContactView(row.id, row.channel, row.user_id, row.language, row.language_confirmed,
                       row.role, row.opted_out, row.unreachable, created)


class ContactRepository:
    """The people Tadamon talks to, keyed by (channel, platform user id)."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def arrive(self, channel: str, user_id: str, language: str | None,
                     alt_id: str | None = None) -> ContactView:
        """Find or create the contact and record the time of this inbound message. A contact
        made before the person wrote (an organizer named by the setting or the command line)
        counts as new at their first message, so they are welcomed like anyone."""
        now = utcnow()
        # Writing to us proves the person can be reached again.
        values: dict[str, Any] = {"last_inbound_at": now, "unreachable": False}
        if alt_id:
            values["platform_alt_id"] = alt_id
        async with self.sessions() as session, session.begin():
            # One statement for the common case: a known person writes again.
            row = await self._touch(session, channel, user_id, values, first=False)
            if row is not None:
                return _contact_view(row)
            row = await self._touch(session, channel, user_id, values, first=True,
                                    language=language)
            if row is not None:
                return _contact_view(row, created=True)
        try:
            async with self.sessions() as session, session.begin():
                row = Contact(channel=channel, user_id=user_id, language=language,
                              role=Role.VISITOR, last_inbound_at=now, created_at=now,
                              platform_alt_id=alt_id or None)
                session.add(row)
                await session.flush()
                return _contact_view(row, created=True)
        except IntegrityError:
            # Another process created it between our two transactions: use theirs.
            async with self.sessions() as session:
                found = await self._find(session, channel, user_id)
                assert found is not None
                return _contact_view(found)

    async def _touch(self, session: AsyncSession, channel: str, user_id: str,
                     values: dict[str, Any], *, first: bool,
                     language: str | None = None) -> Contact | None:
        """Record an inbound message on the person's row: one who wrote before (`first`
        False), or one whose row was made before they ever wrote (`first` True)."""
        written = (Contact.last_inbound_at.is_(None) if first
                   else Contact.last_inbound_at.is_not(None))
        if first and language is not None:
            values = {**values, "language": func.coalesce(Contact.language, language)}
        return (await session.scalars(
            update(Contact)
            .where(Contact.channel == channel, Contact.user_id == user_id, written)
            .values(**values)
            .returning(Contact),
            execution_options={"synchronize_session": False},
        )).first()

    async def _find(self, session: AsyncSession, channel: str, user_id: str) -> Contact | None:
        result = await session.scalars(
            select(Contact).where(Contact.channel == channel, Contact.user_id == user_id))
        return result.first()

    async def set_language(self, contact_id: int, language: str, confirmed: bool = True) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(update(Contact).where(Contact.id == contact_id)
                                  .values(language=language, language_confirmed=confirmed))

    async def set_opted_out(self, contact_id: int, opted_out: bool) -> None:
        """Opt out of bulk messages (announcements, reminders), or back in."""
        async with self.sessions() as session, session.begin():
            await session.execute(update(Contact).where(Contact.id == contact_id).values(
                opted_out=opted_out, opted_out_at=utcnow() if opted_out else None))

    async def set_unreachable(self, channel: str, user_id: str, unreachable: bool) -> None:
        """Record that the platform refuses our messages to this person (blocked), or not."""
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(Contact).where(Contact.channel == channel, Contact.user_id == user_id)
                .values(unreachable=unreachable))

    async def sync_organizers(self, listed: Sequence[str], channels: Sequence[str]
                              ) -> tuple[list[str], list[str]]:
        """Apply the organizers setting (`CHANNEL:USER_ID` entries), at start-up: each entry is
        an organizer by the setting, unless the command line made them one; an organizer by the
        setting who is no longer listed, and any organizer on a channel not in `channels`, is
        one no more. Returns (granted, withdrawn), as `CHANNEL:USER_ID`."""
        try:
            return await self._sync_organizers(listed, channels)
        except IntegrityError:
            # Another process starting at the same time made one of the contacts: again.
            return await self._sync_organizers(listed, channels)

    async def _sync_organizers(self, listed: Sequence[str], channels: Sequence[str]
                               ) -> tuple[list[str], list[str]]:
        key = Contact.channel + literal(":") + Contact.user_id
        async with self.sessions() as session, session.begin():
            stale = (select(Contact).where(
                Contact.role == Role.ORGANIZER,
                or_(and_(Contact.role_source == ROLE_BY_SETTING, key.not_in(listed)),
                    Contact.channel.not_in(channels)))
                .with_for_update())
            withdrawn = []
            for former in await session.scalars(stale):
                self._withdraw(former)
                withdrawn.append(f"{former.channel}:{former.user_id}")
            found = {f"{row.channel}:{row.user_id}": row for row in await session.scalars(
                select(Contact).where(key.in_(listed)).with_for_update())}
            granted = []
            for entry in dict.fromkeys(listed):
                contact = found.get(entry)
                if contact is None:
                    channel, _sep, user_id = entry.partition(":")
                    contact = Contact(channel=channel, user_id=user_id)
                    session.add(contact)
                elif contact.role == Role.ORGANIZER and contact.role_source is not None:
                    continue  # already one, by the setting or by the command line
                contact.role, contact.role_source = Role.ORGANIZER, ROLE_BY_SETTING
                granted.append(entry)
        return granted, withdrawn

    async def grant_organizer(self, channel: str, user_id: str, source: str) -> ContactView:
        """Make a person an organizer (`source`: ROLE_BY_SETTING or ROLE_BY_COMMAND), creating
        the contact if they have not written yet."""
        async with self.sessions() as session, session.begin():
            row = await self._find(session, channel, user_id)
            if row is None:
                row = Contact(channel=channel, user_id=user_id)
                session.add(row)
            row.role, row.role_source = Role.ORGANIZER, source
            await session.flush()
            return _contact_view(row)

    async def withdraw_organizer(self, channel: str, user_id: str) -> bool:
        """Take the organizer role back, whatever gave it; False when they had none."""
        async with self.sessions() as session, session.begin():
            row = await self._find(session, channel, user_id)
            if row is None or row.role != Role.ORGANIZER:
                return False
            self._withdraw(row)
            return True

    @staticmethod
    def _withdraw(row: Contact) -> None:
        # A member of a linked cooperative is one again.
        row.role = Role.COOPERATIVE if row.exhibitor_id is not None else Role.VISITOR
        row.role_source = None

    async def role(self, contact_id: int) -> Role | None:
        """The person's role as stored now (None: no such contact): organizer-only actions ask
        it, so that a role taken back by another process counts at once."""
        async with self.sessions() as session:
            return await session.scalar(select(Contact.role).where(Contact.id == contact_id))

    async def organizers(self) -> list[tuple[ContactView, str | None]]:
        """Every organizer with where their role comes from, by channel and id."""
        async with self.sessions() as session:
            rows = await session.scalars(select(Contact).where(Contact.role == Role.ORGANIZER)
                                         .order_by(Contact.channel, Contact.user_id))
            return [(_contact_view(row), row.role_source) for row in rows]

    async def get(self, channel: str, user_id: str) -> ContactView | None:
        async with self.sessions() as session:
            row = await self._find(session, channel, user_id)
            return _contact_view(row) if row else None


@dataclass(frozen=True, slots=True)
class Facet:
    """One value of a facet (a category, a region, a label) and its stands."""

    key: str
    name: dict[str, str]
    stands: tuple[tuple[str, dict[str, str]], ...]


def _facet_values(exhibitor: ExhibitorView, kind: str
                  ) -> list[tuple[str, dict[str, str]]]:
    if kind == "category":
        return [(_facet_key(exhibitor.category), exhibitor.category)] if exhibitor.category else []
    if kind == "region":
        return [(_facet_key(exhibitor.region), exhibitor.region)] if exhibitor.region else []
    return [(label, {"fr": label}) for label in exhibitor.all_labels]


def _facet_key(name: dict[str, str]) -> str:
    return fold(name.get("fr") or name.get("ar") or "")


CLOSE_TO_THE_BEST = 25.0
"""Search results shown: those within this many points of the best one."""


@dataclass(frozen=True, slots=True)
class CatalogueSnapshot:
    """The served fair's catalogue, read once per catalogue version and kept in memory."""

    version: int
    fair: FairView
    stands: dict[str, StandView]
    zones: tuple[ZoneView, ...]
    zone_stands: tuple[tuple[tuple[str, dict[str, str]], ...], ...]
    index: SearchIndex
    names: dict[str, dict[str, str]]  # exhibitor key -> name
    workshops: tuple[WorkshopView, ...]
    info: tuple[InfoAnswerView, ...] = ()
    places: tuple[PlaceView, ...] = ()
    # Pictures drawn from this version (floor maps, by stand and language): kept as long as
    # the version is served, so each is drawn once per process.
    pictures: dict[tuple[str, ...], bytes] = field(default_factory=dict)
    # What the conversation derives from this version (the understanding step's gazetteer),
    # built once per version and process, as the search index is.
    derived: dict[str, object] = field(default_factory=dict)


VersionSource = Callable[[], Awaitable[int]]


class CatalogueRepository:
    """Read access to the fair being served: stands, exhibitors, zones, workshops.

    The catalogue changes only at import, so it is held in memory and reloaded when the
    catalogue version (kept in Redis, bumped by every import) changes; the version is looked
    at most once a second. Seats taken are always read live."""

    def __init__(self, sessions: Sessions, version: VersionSource | None = None,
                 check_every: float = 1.0) -> None:
        self.sessions = sessions
        self.version = version
        self.check_every = check_every
        self._snapshot: CatalogueSnapshot | None = None
        self._checked_at = 0.0
        self._loading = asyncio.Lock()

    def invalidate(self) -> None:
        """Forget the snapshot: this process just changed the catalogue."""
        self._snapshot = None

    async def snapshot(self) -> CatalogueSnapshot | None:
        """The current catalogue, reloaded when its version changed."""
        current = self._snapshot
        now = time.monotonic()
        if current is not None and (self.version is None
                                    or now - self._checked_at < self.check_every):
            return current
        version = current.version if current else -1
        if self.version is not None:
            # One look per second for the whole process: the messages arriving while it is
            # under way serve the snapshot in hand rather than each asking Redis again.
            self._checked_at = now
            try:
                version = await self.version()
            except Exception:  # Redis down: keep serving what we have
                log.warning("catalogue version unavailable", exc_info=True)
        if current is not None and current.version == version:
            return current
        async with self._loading:
            if self._snapshot is None or self._snapshot is current:
                self._snapshot = await self._load(version)
        return self._snapshot

    async def _load(self, version: int) -> CatalogueSnapshot | None:
        async with self.sessions() as session:
            row = await active_fair(session)
            if row is None:
                return None
            fair = FairView(row.id, row.key, row.name, row.city, row.venue, row.info,
                            row.timezone, row.opens, row.closes, row.hours, row.privacy)
            stands = list(await session.scalars(
                select(Stand).where(Stand.fair_id == fair.id).order_by(Stand.id)))
            exhibitors = (await session.execute(
                select(Exhibitor, Category.name, Category.key)
                .outerjoin(Category, Category.id == Exhibitor.category_id)
                .where(Exhibitor.fair_id == fair.id)
                .order_by(Exhibitor.key))).all()
            workshops = list(await session.scalars(
                select(Workshop).where(Workshop.fair_id == fair.id)
                .order_by(Workshop.starts_at, Workshop.key)))
            info = tuple(
                InfoAnswerView(row.key, row.topic, tuple(row.keywords), row.answer,
                               row.key in KNOWN_INFO_TOPICS)
                for row in await session.scalars(
                    select(InfoAnswer).where(InfoAnswer.fair_id == fair.id)
                    .order_by(InfoAnswer.position, InfoAnswer.key)))
            places = tuple(
                PlaceView(row.key, row.kind, row.name, row.x, row.y)
                for row in await session.scalars(
                    select(Place).where(Place.fair_id == fair.id)
                    .order_by(Place.position, Place.key)))
        by_stand: dict[int, list[ExhibitorView]] = {}
        entries: list[SearchEntry] = []
        numbers = {stand.id: stand.number for stand in stands}
        for exhibitor, category, category_key in exhibitors:
            view = ExhibitorView(
                key=exhibitor.key, kind=exhibitor.kind, name=exhibitor.name,
                category=category, city=exhibitor.city, region=exhibitor.region,
                products=list(exhibitor.products), women_led=exhibitor.women_led,
                labels=list(exhibitor.labels),
                phone=exhibitor.phone if exhibitor.public_phone else None,
            )
            if exhibitor.stand_id is None:
                continue
            by_stand.setdefault(exhibitor.stand_id, []).append(view)
            entries.append(SearchEntry(
                stand=numbers[exhibitor.stand_id], exhibitor_id=exhibitor.key,
                name=exhibitor.name, aliases=tuple(exhibitor.aliases),
                products=tuple(exhibitor.products), city=exhibitor.city,
                region=exhibitor.region, category=category_key,
                category_name=category or {}, labels=tuple(exhibitor.labels)))
        stand_views = {
            stand.number: StandView(stand.number, stand.zone, stand.x, stand.y,
                                    tuple(by_stand.get(stand.id, ())))
            for stand in stands
        }
        zone_names: dict[str, dict[str, str]] = {}
        zone_members: dict[str, list[tuple[str, dict[str, str]]]] = {}
        for stand in stands:
            key = stand.zone.get("fr") or stand.zone.get("ar") or ""
            zone_names.setdefault(key, stand.zone)
            first = stand_views[stand.number].exhibitors
            zone_members.setdefault(key, []).append(
                (stand.number, first[0].name if first else {}))
        zones = tuple(ZoneView(index, name, len(zone_members[key]))
                      for index, (key, name) in enumerate(zone_names.items()))
        zone_stands = tuple(
            tuple(sorted(zone_members[key], key=lambda item: stand_order(item[0])))
            for key in zone_names)
        return CatalogueSnapshot(
            version=version, fair=fair, stands=stand_views, zones=zones,
            zone_stands=zone_stands, index=SearchIndex.build(entries),
            names={entry.exhibitor_id: dict(entry.name) for entry in entries},
            workshops=tuple(_workshop_view(row, 0) for row in workshops), info=info,
            places=places)

    async def fair(self) -> FairView | None:
        snapshot = await self.snapshot()
        return snapshot.fair if snapshot else None

    async def current(self, fair_id: int) -> CatalogueSnapshot | None:
        """The snapshot of that fair's catalogue, when it is the one served."""
        return await self._of(fair_id)

    async def _of(self, fair_id: int) -> CatalogueSnapshot | None:
        snapshot = await self.snapshot()
        return snapshot if snapshot is not None and snapshot.fair.id == fair_id else None

    async def stand(self, fair_id: int, number: str) -> StandView | None:
        """The stand with this number (`a 12` works too) and who exhibits there."""
        normalized = normalize_stand_number(number)
        snapshot = await self._of(fair_id)
        if normalized is None or snapshot is None:
            return None
        return snapshot.stands.get(normalized)

    async def zones(self, fair_id: int) -> list[ZoneView]:
        """The fair's zones in floor-plan order of their first stand."""
        snapshot = await self._of(fair_id)
        return list(snapshot.zones) if snapshot else []

    async def facet(self, fair_id: int, kind: str) -> list[Facet]:
        """The values of one facet of the exhibitors ("category", "region" or "label"), each
        with its stands (number order), the values in alphabetical order of their French."""
        snapshot = await self._of(fair_id)
        if snapshot is None:
            return []
        found: dict[str, tuple[dict[str, str], dict[str, dict[str, str]]]] = {}
        for stand in snapshot.stands.values():
            for exhibitor in stand.exhibitors:
                for key, name in _facet_values(exhibitor, kind):
                    found.setdefault(key, (name, {}))[1].setdefault(stand.number,
                                                                   exhibitor.name)
        return [Facet(key, name, tuple(sorted(stands.items(),
                                              key=lambda item: stand_order(item[0]))))
                for key, (name, stands) in sorted(found.items())]

    async def closest_categories(self, fair_id: int, query: str, limit: int = 3
                                 ) -> list[tuple[int, Facet]]:
        """The categories to offer when a search found nothing (those whose exhibitors came
        closest), each with its place among `facet(fair_id, "category")`."""
        snapshot = await self._of(fair_id)
        if snapshot is None:
            return []
        values = await self.facet(fair_id, "category")
        place = {value.key: index for index, value in enumerate(values)}
        found = []
        for category in snapshot.index.categories_like(query, limit):
            index = place.get(_facet_key(dict(snapshot.index.category_name(category))))
            if index is not None:
                found.append((index, values[index]))
        return found

    async def neighbours(self, fair_id: int, number: str, limit: int = 5
                         ) -> list[tuple[str, dict[str, str]]]:
        """(number, first exhibitor's name) of the closest stands on the floor plan."""
        snapshot = await self._of(fair_id)
        here = snapshot.stands.get(number) if snapshot else None
        if snapshot is None or here is None:
            return []
        others = sorted(
            (stand for stand in snapshot.stands.values()
             if stand.number != number and stand.exhibitors),
            key=lambda stand: ((stand.x - here.x) ** 2 + (stand.y - here.y) ** 2,
                               stand_order(stand.number)))
        return [(stand.number, stand.exhibitors[0].name) for stand in others[:limit]]

    async def did_you_mean(self, fair_id: int, query: str
                           ) -> tuple[str, dict[str, str]] | None:
        """(stand number, name) of the exhibitor whose name is closest to a query that found
        nothing, when one is close enough."""
        snapshot = await self._of(fair_id)
        suggestion = snapshot.index.did_you_mean(query) if snapshot is not None else None
        if suggestion is None:
            return None
        return suggestion.stand, dict(suggestion.name)

    async def stands_in_zone(self, fair_id: int,
                             zone_index: int) -> list[tuple[str, dict[str, str]]]:
        """(stand number, first exhibitor's name) for every stand of one zone, in number order."""
        snapshot = await self._of(fair_id)
        if snapshot is None or not 0 <= zone_index < len(snapshot.zone_stands):
            return []
        return list(snapshot.zone_stands[zone_index])

    async def find_exhibitors(self, fair_id: int, query: str,
                              limit: int = 40) -> list[tuple[str, dict[str, str]]]:
        """(stand number, name) of the exhibitors that best match the query (storage/search.py:
        stand numbers, names, then fuzzy words and their Arabizi skeletons), best first."""
        snapshot = await self._of(fair_id)
        if snapshot is None:
            return []
        hits = snapshot.index.search(query, limit)
        # Only those nearly as good as the best: "draa" is Coopérative Drâa, not every
        # exhibitor of the Drâa-Tafilalet region.
        return [(hit.stand, snapshot.names.get(hit.exhibitor_id, {})) for hit in hits
                if hit.score >= hits[0].score - CLOSE_TO_THE_BEST]

    async def info_answers(self, fair_id: int) -> list[InfoAnswerView]:
        """The fair's practical answers (the catalogue's `info:` section), in the file's
        order."""
        snapshot = await self._of(fair_id)
        return list(snapshot.info) if snapshot else []

    async def workshops(self, fair_id: int) -> list[WorkshopView]:
        """Every workshop of the fair in time order, with the seats taken (read live)."""
        snapshot = await self._of(fair_id)
        if snapshot is None or not snapshot.workshops:
            return []
        ids = [workshop.id for workshop in snapshot.workshops]
        async with self.sessions() as session:
            rows = (await session.execute(
                select(Registration.workshop_id, Registration.status, func.count())
                .where(Registration.workshop_id.in_(ids),
                       Registration.status != RegistrationStatus.CANCELLED)
                .group_by(Registration.workshop_id, Registration.status))).all()
        taken: dict[int, int] = {}
        waiting: dict[int, int] = {}
        for workshop_id, status, count in rows:
            into = waiting if status == RegistrationStatus.WAITLISTED else taken
            into[workshop_id] = into.get(workshop_id, 0) + int(count)
        return [replace(workshop, taken=taken.get(workshop.id, 0),
                        waiting=waiting.get(workshop.id, 0))
                for workshop in snapshot.workshops]

    async def workshop(self, fair_id: int, workshop_id: int) -> WorkshopView | None:
        for view in await self.workshops(fair_id):
            if view.id == workshop_id:
                return view
        return None

    async def workshop_by_key(self, fair_id: int, key: str) -> WorkshopView | None:
        for view in await self.workshops(fair_id):
            if view.key == key:
                return view
        return None


def _workshop_view(row: Workshop, taken: int) -> WorkshopView:
    speaker = row.speaker_names or ({"fr": row.speaker} if row.speaker else {})
    return WorkshopView(row.id, row.key, row.title, row.description, speaker, row.room,
                        row.starts_at, row.ends_at, row.capacity, taken, row.language,
                        row.audience, row.cancelled, place=row.place)


class SavedStandRepository:
    """The stands each person saved to their list during the visit."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def save(self, fair_id: int, contact_id: int, number: str,
                   now: dt.datetime | None = None) -> bool:
        """Add a stand to the person's list; False when it was there already."""
        try:
            async with self.sessions() as session, session.begin():
                session.add(SavedStand(contact_id=contact_id, fair_id=fair_id,
                                       stand_number=number, created_at=now or utcnow()))
        except IntegrityError:
            return False
        return True

    async def remove(self, fair_id: int, contact_id: int, number: str) -> bool:
        async with self.sessions() as session, session.begin():
            result = await session.execute(delete(SavedStand).where(
                SavedStand.fair_id == fair_id, SavedStand.contact_id == contact_id,
                SavedStand.stand_number == number))
        return bool(getattr(result, "rowcount", 0))

    async def stands(self, fair_id: int, contact_id: int) -> list[str]:
        """The person's saved stand numbers, in the order they saved them."""
        async with self.sessions() as session:
            return list(await session.scalars(
                select(SavedStand.stand_number)
                .where(SavedStand.fair_id == fair_id, SavedStand.contact_id == contact_id)
                .order_by(SavedStand.id)))


__all__ = [
    "CatalogueRepository",
    "ContactRepository",
    "ContactView",
    "ExhibitorView",
    "FairView",
    "InfoAnswerView",
    "SavedStandRepository",
    "StandView",
    "WorkshopView",
    "ZoneView",
]
