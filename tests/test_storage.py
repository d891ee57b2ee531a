"""The SQL storage layer on SQLite and a real PostgreSQL: migrations, timestamps, repositories."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, insert, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.settings import ORGANIZER_CHANNELS
from storage import database
from storage.feedback import FeedbackRepository
from storage.models import (
    Base,
    Contact,
    ExhibitorSurvey,
    Feedback,
    Registration,
    RegistrationStatus,
    Role,
    StandCardView,
)
from storage.repositories import (
    ROLE_BY_COMMAND,
    ROLE_BY_SETTING,
    CatalogueRepository,
    ContactRepository,
    FairView,
)

KINDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]

MakeDatabase = Callable[..., Awaitable[str]]
Sessions = async_sessionmaker[AsyncSession]
UTC = dt.UTC
T = TypeVar("T")


@pytest.fixture
async def engines() -> AsyncIterator[Callable[[str], AsyncEngine]]:
    """`engines(url)` -> an engine on that database, disposed after the test."""
    made: list[AsyncEngine] = []

    def make(url: str) -> AsyncEngine:
        engine = database.create_engine(url)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        await engine.dispose()


@pytest.fixture
async def sessions_for(
    engines: Callable[[str], AsyncEngine], make_database: MakeDatabase
) -> Callable[..., Awaitable[Sessions]]:
    """`await sessions_for(kind, sample=...)` -> sessions on a fresh migrated database."""

    async def make(kind: str, *, sample: bool) -> Sessions:
        url = await make_database(kind, sample=sample)
        return database.create_sessionmaker(engines(url))

    return make


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    return set(names)


def _schema_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def _count(sessions: Sessions, model: type[Base], *where: Any) -> int:
    async with sessions() as session:
        value = await session.scalar(select(func.count()).select_from(model).where(*where))
    return int(value or 0)


async def _all(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Run the calls at once; every one finishes before the first failure is raised."""
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return cast(list[T], outcomes)


# ------------------------------------------------------------------------------- migrations


@pytest.mark.parametrize("kind", KINDS)
async def test_0007_keeps_the_last_rating_of_a_day_and_dates_the_others(
    kind: str, make_database: MakeDatabase, engines: Callable[[str], AsyncEngine]
) -> None:
    """Ratings given before 0007 get their day; of one person's ratings of one target on one
    day, only the latest is kept (the unique constraint needs it), every other one stays."""
    engine = engines(await make_database(kind, sample=False, migrated=False))
    await database.upgrade(engine, "0006")
    async with engine.begin() as connection:
        fair = (await connection.execute(text(
            "INSERT INTO fairs (key, name, city, venue, timezone, opens, closes, hours, "
            "active, imported_at) VALUES ('f', '{}', '{}', '{}', 'Africa/Casablanca', "
            "'2026-12-13', '2026-12-16', '10:00-20:00', true, '2026-11-01 10:00:00') "
            "RETURNING id"))).scalar_one()
        person = (await connection.execute(text(
            "INSERT INTO contacts (channel, user_id, language_confirmed, role, opted_out, "
            "unreachable, created_at) VALUES ('web', 'p', false, 'VISITOR', false, false, "
            "'2026-12-13 09:00:00') RETURNING id"))).scalar_one()
        for key, rating, at in (("A1", 2, "2026-12-13 10:00:00"),
                                ("A1", 5, "2026-12-13 15:00:00"),
                                ("A1", 3, "2026-12-14 11:00:00"),
                                ("A2", 4, "2026-12-13 12:00:00")):
            await connection.execute(text(
                "INSERT INTO feedback (fair_id, contact_id, target_kind, target_key, rating, "
                "language, created_at) VALUES (:fair, :person, 'stand', :key, :rating, 'fr', "
                f"'{at}')"), {"fair": fair, "person": person, "key": key, "rating": rating})

    await database.upgrade(engine)
    async with engine.connect() as connection:
        rows = (await connection.execute(text(
            "SELECT target_key, rating, day FROM feedback ORDER BY target_key, day"))).all()
    assert [(key, rating, str(day)) for key, rating, day in rows] == [
        ("A1", 5, "2026-12-13"), ("A1", 3, "2026-12-14"), ("A2", 4, "2026-12-13")]


@pytest.mark.parametrize("kind", KINDS)
async def test_0012_keeps_the_speaker_of_workshops_stored_before(
    kind: str, make_database: MakeDatabase, engines: Callable[[str], AsyncEngine]
) -> None:
    """A speaker stored as a plain text before 0012 is served as that text, to every reader;
    a workshop without one still has none."""
    engine = engines(await make_database(kind, sample=False, migrated=False))
    await database.upgrade(engine, "0011")
    async with engine.begin() as connection:
        fair = (await connection.execute(text(
            "INSERT INTO fairs (key, name, city, venue, timezone, opens, closes, hours, "
            "active, imported_at) VALUES ('f', '{\"fr\": \"Salon\", \"ar\": \"معرض\"}', "
            "'{}', '{}', 'Africa/Casablanca', '2026-12-13', '2026-12-16', '10:00-20:00', true, "
            "'2026-11-01 10:00:00') RETURNING id"))).scalar_one()
        for key, speaker in (("marketing", "M. Youssef Bennani"), ("finance", "")):
            await connection.execute(text(
                "INSERT INTO workshops (fair_id, key, title, speaker, room, starts_at, ends_at, "
                "capacity, language, audience, cancelled) VALUES (:fair, :key, "
                "'{\"fr\": \"Atelier\", \"ar\": \"ورشة\"}', :speaker, "
                "'{\"fr\": \"Salle 1\", \"ar\": \"القاعة 1\"}', '2026-12-13 10:00:00', "
                "'2026-12-13 11:00:00', 40, 'ar', 'all', false)"),
                {"fair": fair, "key": key, "speaker": speaker})

    await database.upgrade(engine)
    catalogue = CatalogueRepository(database.create_sessionmaker(engine))
    served = {view.key: view.speaker for view in await catalogue.workshops(fair)}
    assert served == {"marketing": {"fr": "M. Youssef Bennani"}, "finance": {}}


@pytest.mark.parametrize("kind", KINDS)
async def test_upgrade_creates_the_models_schema_and_is_idempotent(
    kind: str, make_database: MakeDatabase, engines: Callable[[str], AsyncEngine]
) -> None:
    """`upgrade()` builds every table of the models, twice is harmless, no drift from models."""
    engine = engines(await make_database(kind, sample=False, migrated=False))
    assert await _tables(engine) == set()

    await database.upgrade(engine)
    assert await _tables(engine) == set(Base.metadata.tables) | {"alembic_version"}
    async with engine.begin() as connection:
        await connection.execute(
            insert(Contact).values(
                channel="web", user_id="kept", language_confirmed=False, role="visitor",
                opted_out=False, unreachable=False, created_at=dt.datetime.now(UTC),
            )
        )

    await database.upgrade(engine)  # a second start: nothing to do, nothing lost
    head = ScriptDirectory.from_config(database.alembic_config()).get_current_head()
    async with engine.connect() as connection:
        versions = (await connection.execute(text("SELECT version_num FROM alembic_version")))
        assert versions.scalars().all() == [head]
        # Nothing is ignored: the migration must say exactly what the models say.
        differences = await connection.run_sync(_schema_differences)
    assert differences == []
    assert await _tables(engine) == set(Base.metadata.tables) | {"alembic_version"}
    sessions = database.create_sessionmaker(engine)
    assert await _count(sessions, Contact, Contact.user_id == "kept") == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_concurrent_upgrades_of_an_empty_database_both_succeed(
    kind: str, make_database: MakeDatabase, engines: Callable[[str], AsyncEngine]
) -> None:
    """Two processes starting together on a new database: one migrates, the other waits."""
    url = await make_database(kind, sample=False, migrated=False)
    first, second = engines(url), engines(url)
    # return_exceptions: both finish before the test ends, even when one of them fails
    outcomes = await asyncio.gather(database.upgrade(first), database.upgrade(second),
                                    return_exceptions=True)
    assert list(outcomes) == [None, None]
    assert await _tables(first) == set(Base.metadata.tables) | {"alembic_version"}
    async with first.connect() as connection:
        versions = await connection.execute(text("SELECT version_num FROM alembic_version"))
        assert len(versions.scalars().all()) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_ping_answers(
    kind: str, make_database: MakeDatabase, engines: Callable[[str], AsyncEngine]
) -> None:
    """`ping()` is True on a live database."""
    engine = engines(await make_database(kind, sample=False))
    assert await database.ping(engine) is True


# ------------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize("kind", KINDS)
async def test_timestamps_round_trip_as_aware_utc(
    kind: str, sessions_for: Callable[..., Awaitable[Sessions]]
) -> None:
    """10:00+01:00 is stored as 09:00 UTC and read back aware, and compares in SQL."""
    sessions = await sessions_for(kind, sample=False)
    local = dt.datetime(2026, 12, 13, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    async with sessions() as session, session.begin():
        session.add(Contact(channel="web", user_id="clock", last_inbound_at=local,
                            created_at=local))

    async with sessions() as session:
        row = (await session.scalars(select(Contact))).one()
        value = row.last_inbound_at
    assert value is not None
    assert value.tzinfo is not None
    assert value.utcoffset() == dt.timedelta(0)
    assert (value.year, value.month, value.day, value.hour, value.minute) == (2026, 12, 13, 9, 0)
    assert value == local
    assert row.created_at == local

    nine_utc = dt.datetime(2026, 12, 13, 9, 0, tzinfo=UTC)
    assert await _count(sessions, Contact, Contact.last_inbound_at == nine_utc) == 1
    assert await _count(sessions, Contact, Contact.last_inbound_at < nine_utc) == 0
    # 10:30 in Casablanca (UTC+1 in December) is 09:30 UTC: after the stored instant.
    casablanca = dt.datetime(2026, 12, 13, 10, 30, tzinfo=ZoneInfo("Africa/Casablanca"))
    assert await _count(sessions, Contact, Contact.last_inbound_at < casablanca) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_naive_datetime_is_refused(
    kind: str, sessions_for: Callable[..., Awaitable[Sessions]]
) -> None:
    """A naive datetime never reaches the database, neither stored nor compared."""
    sessions = await sessions_for(kind, sample=False)
    naive = dt.datetime(2026, 12, 13, 10, 0)
    async with sessions() as session:
        session.add(Contact(channel="web", user_id="naive", created_at=naive))
        with pytest.raises(StatementError) as stored:
            await session.flush()
        await session.rollback()
    assert isinstance(stored.value.orig, ValueError)

    async with sessions() as session:
        with pytest.raises(StatementError) as compared:
            await session.scalar(select(Contact).where(Contact.created_at < naive))
    assert isinstance(compared.value.orig, ValueError)
    assert await _count(sessions, Contact) == 0


# ------------------------------------------------------------------------------- contacts


@pytest.mark.parametrize("kind", KINDS)
async def test_arrive_creates_a_contact_once_per_channel_and_user(
    kind: str, sessions_for: Callable[..., Awaitable[Sessions]]
) -> None:
    """The first arrival creates the contact; later ones find it and record the time."""
    sessions = await sessions_for(kind, sample=False)
    contacts = ContactRepository(sessions)

    first = await contacts.arrive("telegram", "42", "fr")
    assert first.created is True
    assert (first.channel, first.user_id, first.language) == ("telegram", "42", "fr")
    assert first.role is Role.VISITOR
    assert first.opted_out is False
    async with sessions() as session:
        before = (await session.scalars(select(Contact))).one().last_inbound_at
    assert before is not None and before.tzinfo is not None

    again = await contacts.arrive("telegram", "42", "ar")
    assert again.created is False
    assert again.id == first.id
    assert again.language == "fr"  # the stored choice wins over a new guess

    same_id_elsewhere = await contacts.arrive("whatsapp", "42", None)
    assert same_id_elsewhere.created is True
    assert same_id_elsewhere.id != first.id

    assert await _count(sessions, Contact) == 2
    async with sessions() as session:
        row = (await session.scalars(select(Contact).where(Contact.id == first.id))).one()
    assert row.last_inbound_at is not None and row.last_inbound_at >= before
    assert await contacts.get("telegram", "42") == again
    assert await contacts.get("telegram", "43") is None


@pytest.mark.parametrize("kind", KINDS)
async def test_concurrent_arrivals_of_a_new_person_make_one_row(
    kind: str, sessions_for: Callable[..., Awaitable[Sessions]]
) -> None:
    """20 simultaneous first messages: one contact, one `created`, every caller gets it."""
    sessions = await sessions_for(kind, sample=False)
    contacts = ContactRepository(sessions)

    views = await _all(contacts.arrive("web", "crowd", "ar") for _ in range(20))

    assert {view.id for view in views} == {views[0].id}
    assert sum(view.created for view in views) == 1
    assert await _count(sessions, Contact, Contact.user_id == "crowd") == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_concurrent_first_arrivals_of_a_listed_organizer_all_see_the_role(
    kind: str, sessions_for: Callable[..., Awaitable[Sessions]]
) -> None:
    """The setting made the row before the person wrote: every racing first message sees the
    organizer role, and exactly one of them is their first contact (the welcome)."""
    sessions = await sessions_for(kind, sample=False)
    contacts = ContactRepository(sessions)
    await contacts.sync_organizers(("telegram:7",), ORGANIZER_CHANNELS)

    views = await _all(contacts.arrive("telegram", "7", "fr") for _ in range(10))

    assert {view.role for view in views} == {Role.ORGANIZER}
    assert sum(view.created for view in views) == 1
    assert await _count(sessions, Contact, Contact.role == Role.ORGANIZER) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_the_organizers_setting_is_applied_at_each_start(
    kind: str, sessions_for: Callable[..., Awaitable[Sessions]]
) -> None:
    """Listed people become organizers; unlisted ones stop being organizers at the next start,
    unless the command line named them; a web chat organizer from before is withdrawn."""
    sessions = await sessions_for(kind, sample=False)
    contacts = ContactRepository(sessions)
    await contacts.arrive("telegram", "7", "ar")  # wrote before being listed
    await contacts.grant_organizer("telegram", "9", ROLE_BY_COMMAND)
    await contacts.grant_organizer("web", "session-boss", ROLE_BY_COMMAND)  # older versions

    granted, withdrawn = await contacts.sync_organizers(
        ("telegram:7", "whatsapp:212600000001", "telegram:9"), ORGANIZER_CHANNELS)
    assert (granted, withdrawn) == (["telegram:7", "whatsapp:212600000001"],
                                    ["web:session-boss"])
    roles = {(contact.channel, contact.user_id): source
             for contact, source in await contacts.organizers()}
    assert roles == {("telegram", "7"): ROLE_BY_SETTING, ("telegram", "9"): ROLE_BY_COMMAND,
                     ("whatsapp", "212600000001"): ROLE_BY_SETTING}
    assert await contacts.sync_organizers(
        ("telegram:7", "whatsapp:212600000001", "telegram:9"), ORGANIZER_CHANNELS) == ([], [])

    # The next start, with only telegram:7 listed.
    assert await contacts.sync_organizers(("telegram:7",), ORGANIZER_CHANNELS) == (
        [], ["whatsapp:212600000001"])
    assert {(c.channel, c.user_id) for c, _ in await contacts.organizers()} == {
        ("telegram", "7"), ("telegram", "9")}
    removed = await contacts.get("whatsapp", "212600000001")
    assert removed is not None and removed.role is Role.VISITOR
    # A message does not bring the role back; nor does it give it to anyone else.
    assert (await contacts.arrive("whatsapp", "212600000001", "fr")).role is Role.VISITOR
    assert (await contacts.arrive("telegram", "8", "fr")).role is Role.VISITOR
    # Removed on the command line, a listed person stays removed until the next start.
    assert await contacts.withdraw_organizer("telegram", "7")
    assert (await contacts.arrive("telegram", "7", "ar")).role is Role.VISITOR
    assert not await contacts.withdraw_organizer("telegram", "7")
    assert await contacts.sync_organizers(("telegram:7",), ORGANIZER_CHANNELS) == (
        ["telegram:7"], [])


@pytest.mark.parametrize("kind", KINDS)
async def test_language_and_opt_out_are_stored(
    kind: str, sessions_for: Callable[..., Awaitable[Sessions]]
) -> None:
    """`set_language` and `set_opted_out` change only that contact, with the opt-out time."""
    sessions = await sessions_for(kind, sample=False)
    contacts = ContactRepository(sessions)
    amina = await contacts.arrive("whatsapp", "212600000001", None)
    other = await contacts.arrive("whatsapp", "212600000002", "fr")

    await contacts.set_language(amina.id, "ar")
    stored = await contacts.get("whatsapp", "212600000001")
    assert stored is not None
    assert (stored.language, stored.language_confirmed) == ("ar", True)
    await contacts.set_language(amina.id, "fr", confirmed=False)
    stored = await contacts.get("whatsapp", "212600000001")
    assert stored is not None
    assert (stored.language, stored.language_confirmed) == ("fr", False)

    await contacts.set_opted_out(amina.id, True)
    stored = await contacts.get("whatsapp", "212600000001")
    assert stored is not None and stored.opted_out is True
    async with sessions() as session:
        row = await session.get_one(Contact, amina.id)
    assert row.opted_out_at is not None and row.opted_out_at.tzinfo is not None

    await contacts.set_opted_out(amina.id, False)
    async with sessions() as session:
        row = await session.get_one(Contact, amina.id)
        untouched = await session.get_one(Contact, other.id)
    assert (row.opted_out, row.opted_out_at) == (False, None)
    assert (untouched.language, untouched.language_confirmed, untouched.opted_out) == (
        "fr", False, False)


# ------------------------------------------------------------------------------- registrations


@pytest.mark.parametrize("kind", KINDS)
async def test_a_person_registers_at_most_once_per_workshop(
    kind: str, sessions_for: Callable[..., Awaitable[Sessions]]
) -> None:
    """The unique constraint on (workshop, contact) refuses a second row."""
    sessions = await sessions_for(kind, sample=True)
    contact = await ContactRepository(sessions).arrive("telegram", "1", "fr")
    fair = await CatalogueRepository(sessions).fair()
    assert fair is not None
    first, second = (await CatalogueRepository(sessions).workshops(fair.id))[:2]

    async with sessions() as session, session.begin():
        session.add(Registration(workshop_id=first.id, contact_id=contact.id,
                                 status=RegistrationStatus.CONFIRMED))
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            session.add(Registration(workshop_id=first.id, contact_id=contact.id,
                                     status=RegistrationStatus.WAITLISTED, position=1))
    async with sessions() as session, session.begin():
        session.add(Registration(workshop_id=second.id, contact_id=contact.id,
                                 status=RegistrationStatus.CONFIRMED))

    assert await _count(sessions, Registration, Registration.contact_id == contact.id) == 2
    async with sessions() as session:
        statuses = (await session.scalars(select(Registration.status).where(
            Registration.workshop_id == first.id))).all()
    assert statuses == [RegistrationStatus.CONFIRMED]


# ------------------------------------------------------------------------------- catalogue


async def _sample(sessions: Sessions) -> tuple[CatalogueRepository, FairView]:
    catalogue = CatalogueRepository(sessions)
    fair = await catalogue.fair()
    assert fair is not None
    return catalogue, fair


@pytest.mark.parametrize("kind", KINDS)
async def test_catalogue_fair_and_stand_cards(
    kind: str, sessions_for: Callable[..., Awaitable[Sessions]]
) -> None:
    """The sample fair is served; `a 12` finds A12 and its exhibitor; private phones stay hidden."""
    catalogue, fair = await _sample(await sessions_for(kind, sample=True))
    assert fair.key == "khouribga-ess-2026"
    assert fair.timezone == "Africa/Casablanca"
    assert (fair.opens, fair.closes) == (dt.date(2026, 12, 13), dt.date(2026, 12, 16))
    assert fair.city == {"fr": "Khouribga", "ar": "خريبكة", "en": "Khouribga"}

    for typed in ("a 12", "A12", "A-12", "A١٢"):
        stand = await catalogue.stand(fair.id, typed)
        assert stand is not None, typed
        assert stand.number == "A12"
    assert stand is not None
    assert stand.zone["fr"] == "Hall A — Artisanat"
    assert [exhibitor.key for exhibitor in stand.exhibitors] == ["coop-tingis"]
    tingis = stand.exhibitors[0]
    assert tingis.name == {"fr": "Coopérative Tingis", "ar": "تعاونية طنجيس"}
    assert tingis.category is not None and tingis.category["fr"] == "Artisanat"
    assert tingis.phone is None

    shared = await catalogue.stand(fair.id, "A2")
    assert shared is not None
    assert [exhibitor.key for exhibitor in shared.exhibitors] == [
        "coop-al-ajyal", "coop-al-yasmine"]

    private = await catalogue.stand(fair.id, "A13")  # phone given with public_phone: false
    assert private is not None
    assert [(e.key, e.phone) for e in private.exhibitors] == [("coop-nour-poterie", None)]
    public = await catalogue.stand(fair.id, "A18")  # public_phone: true
    assert public is not None
    assert [e.phone for e in public.exhibitors] == ["+212600001234"]

    assert await catalogue.stand(fair.id, "Z99") is None
    assert await catalogue.stand(fair.id, "bonjour") is None
    assert await catalogue.stand(fair.id + 1000, "A12") is None


@pytest.mark.parametrize("kind", KINDS)
async def test_catalogue_zones_and_stands_in_zone(
    kind: str, sessions_for: Callable[..., Awaitable[Sessions]]
) -> None:
    """4 zones, 120 stands; a zone's stands come in number order (A1, A2, ..., A10)."""
    catalogue, fair = await _sample(await sessions_for(kind, sample=True))

    zones = await catalogue.zones(fair.id)
    assert [zone.index for zone in zones] == [0, 1, 2, 3]
    assert [(zone.name["fr"], zone.stands) for zone in zones] == [
        ("Hall A — Artisanat", 36),
        ("Hall B — Terroir", 36),
        ("Hall C — Créations féminines", 30),
        ("Espace D — Services et institutions", 18),
    ]
    assert sum(zone.stands for zone in zones) == 120
    assert all(zone.name["ar"] for zone in zones)

    hall_a = await catalogue.stands_in_zone(fair.id, 0)
    assert [number for number, _ in hall_a] == [f"A{n}" for n in range(1, 37)]
    names = dict(hall_a)
    assert names["A12"]["fr"] == "Coopérative Tingis"
    # A2 is shared: the first exhibitor is the same one the stand card lists first.
    assert names["A2"]["fr"] == "Coopérative Al Ajyal de poterie"
    espace_d = await catalogue.stands_in_zone(fair.id, 3)
    assert [number for number, _ in espace_d] == [f"D{n}" for n in range(1, 19)]
    assert await catalogue.stands_in_zone(fair.id, 4) == []
    assert await catalogue.stands_in_zone(fair.id, -1) == []


@pytest.mark.parametrize("kind", KINDS)
async def test_catalogue_workshops_in_time_order_with_seats_taken(
    kind: str, sessions_for: Callable[..., Awaitable[Sessions]]
) -> None:
    """16 workshops by start time; `taken` counts confirmed and offered seats only."""
    sessions = await sessions_for(kind, sample=True)
    catalogue, fair = await _sample(sessions)

    workshops = await catalogue.workshops(fair.id)
    assert len(workshops) == 16
    starts = [workshop.starts_at for workshop in workshops]
    assert starts == sorted(starts)
    assert all(start.tzinfo is not None for start in starts)
    first = workshops[0]
    assert first.key == "coop-finance-1"
    assert first.starts_at == dt.datetime(2026, 12, 13, 10, 0, tzinfo=ZoneInfo("Africa/Casablanca"))
    assert all(workshop.taken == 0 for workshop in workshops)

    contacts = ContactRepository(sessions)
    statuses = [RegistrationStatus.CONFIRMED, RegistrationStatus.CONFIRMED,
                RegistrationStatus.OFFERED, RegistrationStatus.WAITLISTED,
                RegistrationStatus.WAITLISTED, RegistrationStatus.CANCELLED]
    target = workshops[3]
    async with sessions() as session, session.begin():
        for number, status in enumerate(statuses):
            person = await contacts.arrive("web", f"p{number}", "fr")
            session.add(Registration(workshop_id=target.id, contact_id=person.id, status=status))
        session.add(Registration(workshop_id=workshops[5].id, contact_id=person.id,
                                 status=RegistrationStatus.CANCELLED))

    after = {workshop.key: workshop for workshop in await catalogue.workshops(fair.id)}
    assert after[target.key].taken == 3
    assert after[target.key].seats_left == target.capacity - 3
    assert after[workshops[5].key].taken == 0
    assert sum(workshop.taken for workshop in after.values()) == 3

    by_id = await catalogue.workshop(fair.id, target.id)
    assert by_id is not None and by_id.key == target.key and by_id.taken == 3
    by_key = await catalogue.workshop_by_key(fair.id, target.key)
    assert by_key == by_id
    assert await catalogue.workshop_by_key(fair.id, "no-such-workshop") is None


@pytest.mark.parametrize("kind", KINDS)
async def test_catalogue_finds_exhibitors_by_name_in_either_script(
    kind: str, sessions_for: Callable[..., Awaitable[Sessions]]
) -> None:
    """Name fragments match without accents or hamza marks, in French and in Arabic."""
    catalogue, fair = await _sample(await sessions_for(kind, sample=True))

    draa = ("A4", {"fr": "Coopérative Drâa de poterie verte", "ar": "تعاونية درعة للفخار الأخضر"})
    assert await catalogue.find_exhibitors(fair.id, "draa") == [draa]
    assert await catalogue.find_exhibitors(fair.id, "DRÂA") == [draa]
    assert (await catalogue.find_exhibitors(fair.id, "تيفاوين"))[0][0] == "A10"
    assert (await catalogue.find_exhibitors(fair.id, "tifaouine"))[0][0] == "A10"  # an alias
    ajyal = await catalogue.find_exhibitors(fair.id, "الاجيال")  # typed without the hamza
    assert [number for number, _ in ajyal] == ["A2"]
    assert ajyal[0][1]["fr"] == "Coopérative Al Ajyal de poterie"

    assert len(await catalogue.find_exhibitors(fair.id, "poterie", limit=3)) == 3
    assert await catalogue.find_exhibitors(fair.id, "po") == []
    assert await catalogue.find_exhibitors(fair.id, "zzzzzz") == []


# ------------------------------------------------------------------------------- feedback


@pytest.mark.parametrize("kind", KINDS)
async def test_feedback_rating_then_comment_only_by_its_author(
    kind: str, sessions_for: Callable[..., Awaitable[Sessions]]
) -> None:
    """`rate` stores a row; `comment` adds to it, but not on someone else's feedback; a second
    rating of the same target on the same day replaces the first, comment included."""
    sessions = await sessions_for(kind, sample=True)
    _, fair = await _sample(sessions)
    contacts = ContactRepository(sessions)
    author = await contacts.arrive("telegram", "author", "ar")
    stranger = await contacts.arrive("telegram", "stranger", "fr")
    feedback = FeedbackRepository(sessions)
    day = dt.date(2026, 12, 13)

    rated = await feedback.rate(fair.id, author.id, "stand", "A12", 5, "ar", day)
    assert not rated.replaced
    assert await feedback.comment(rated.id, author.id, "منتوجات رائعة", "ar") is True
    assert await feedback.comment(rated.id, stranger.id, "spam", "fr") is False
    assert await feedback.comment(rated.id + 1000, author.id, "nowhere", "fr") is False

    assert await feedback.for_contact(author.id) == [
        {"target_kind": "stand", "target_key": "A12", "rating": 5, "comment": "منتوجات رائعة",
         "language": "ar", "day": day}]
    assert await feedback.for_contact(stranger.id) == []
    async with sessions() as session:
        row = await session.get_one(Feedback, rated.id)
    assert (row.fair_id, row.contact_id, row.language) == (fair.id, author.id, "ar")
    assert row.created_at.tzinfo is not None
    assert await _count(sessions, Feedback) == 1

    again = await feedback.rate(fair.id, author.id, "stand", "A12", 2, "fr", day)
    assert again == type(rated)(rated.id, True)
    other_stand = await feedback.rate(fair.id, author.id, "stand", "A13", 4, "ar", day)
    next_day = await feedback.rate(fair.id, author.id, "stand", "A12", 3, "ar",
                                   day + dt.timedelta(days=1))
    assert not other_stand.replaced and not next_day.replaced
    assert [(item["target_key"], item["rating"], item["comment"], item["day"])
            for item in await feedback.for_contact(author.id)] == [
        ("A12", 2, None, day), ("A13", 4, None, day),
        ("A12", 3, None, day + dt.timedelta(days=1))]


@pytest.mark.parametrize("kind", KINDS)
async def test_card_views_are_counted_per_stand_and_day(
    kind: str, sessions_for: Callable[..., Awaitable[Sessions]]
) -> None:
    sessions = await sessions_for(kind, sample=True)
    _, fair = await _sample(sessions)
    feedback = FeedbackRepository(sessions)
    day = dt.date(2026, 12, 13)
    await asyncio.gather(*(feedback.count_view(fair.id, "A12", day) for _ in range(20)))
    await feedback.count_view(fair.id, "A12", day + dt.timedelta(days=1))
    await feedback.count_view(fair.id, "B7", day)
    assert await _views(sessions) == []  # a statistic: written a moment later, together
    await feedback.flush()
    assert await _views(sessions) == [
        ("A12", day, 20), ("A12", day + dt.timedelta(days=1), 1), ("B7", day, 1)]


async def _views(sessions: Sessions) -> list[tuple[Any, ...]]:
    async with sessions() as session:
        rows = (await session.execute(
            select(StandCardView.stand_number, StandCardView.day, StandCardView.views)
            .order_by(StandCardView.stand_number, StandCardView.day))).all()
    return [tuple(row) for row in rows]


@pytest.mark.parametrize("kind", KINDS)
async def test_survey_answers_are_kept_one_by_one(
    kind: str, sessions_for: Callable[..., Awaitable[Sessions]]
) -> None:
    sessions = await sessions_for(kind, sample=True)
    _, fair = await _sample(sessions)
    member = await ContactRepository(sessions).arrive("whatsapp", "212600000009", "fr")
    feedback = FeedbackRepository(sessions)
    assert await feedback.survey(fair.id, member.id) is None
    await feedback.answer_survey(fair.id, member.id, None, "fr", satisfaction=4)
    await feedback.answer_survey(fair.id, member.id, None, "ar", come_again=True)
    await feedback.answer_survey(fair.id, member.id, None, "ar", sales_band="2k-10k",
                                 comment="شكرا")
    assert await feedback.survey(fair.id, member.id) == {
        "satisfaction": 4, "come_again": True, "sales_band": "2k-10k", "comment": "شكرا",
        "language": "ar"}
    assert await _count(sessions, ExhibitorSurvey) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_an_organizer_taken_back_is_their_cooperative_member_again(
    kind: str, sessions_for: Callable[..., Awaitable[Sessions]]
) -> None:
    from storage.cooperatives import CooperativeRepository

    sessions = await sessions_for(kind, sample=True)
    contacts, coops = ContactRepository(sessions), CooperativeRepository(sessions)
    member = await contacts.arrive("whatsapp", "212600000009", "fr")
    code = (await coops.codes())[0].code
    assert await coops.link(member.id, code) is not None
    await contacts.sync_organizers(("whatsapp:212600000009",), ORGANIZER_CHANNELS)
    assert await contacts.role(member.id) is Role.ORGANIZER
    await contacts.sync_organizers((), ORGANIZER_CHANNELS)
    assert await contacts.role(member.id) is Role.COOPERATIVE
