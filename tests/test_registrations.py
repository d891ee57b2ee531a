"""Workshop registrations against real databases: seats never given twice, waiting-list positions
without gaps, offers that pass on, from one or several processes."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select

from bot.app import App
from storage.models import (
    Contact,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationStatus,
    Role,
    Workshop,
)
from storage.outbox import QuietHours
from storage.registrations import (
    CancelOutcome,
    OfferOutcome,
    Outcome,
    RegistrationRepository,
    offer_deadline,
)
from storage.reports import ReportRepository
from tests.conftest import AppFactory, cli_env, run_tadamon

ROOT = Path(__file__).resolve().parents[1]
ZONE = ZoneInfo("Africa/Casablanca")
# A Sunday morning, two days before the workshops below.
NOW = dt.datetime(2026, 12, 11, 10, 0, tzinfo=ZONE).astimezone(dt.UTC)

# One process's share of a race: `python -c RACE URL WORKSHOP FIRST COUNT` registers contacts
# FIRST..FIRST+COUNT-1 all at once and prints how many it confirmed.
RACE = """
import asyncio, sys, datetime as dt
from storage import database
from storage.registrations import RegistrationRepository, Outcome

async def main():
    url, workshop, first, count, fair = sys.argv[1], *map(int, sys.argv[2:6])
    engine = database.create_engine(url)
    repo = RegistrationRepository(database.create_sessionmaker(engine), "Africa/Casablanca")
    now = dt.datetime.fromisoformat(sys.argv[6])
    done = await asyncio.gather(*(repo.register(fair, contact, workshop, now)
                                  for contact in range(first, first + count)))
    await engine.dispose()
    print(sum(1 for result in done if result.outcome is Outcome.CONFIRMED))

asyncio.run(main())
"""


async def _fair_id(app: App) -> int:
    fair = await app.engine.catalogue.fair()
    assert fair is not None
    return fair.id


async def add_workshop(app: App, *, capacity: int = 30, starts: dt.datetime | None = None,
                       hours: float = 2.0, audience: str = "all", key: str = "race") -> int:
    starts = starts or NOW + dt.timedelta(days=2)
    async with app.sessions() as session, session.begin():
        row = Workshop(fair_id=await _fair_id(app), key=key,
                       title={"fr": "Atelier test", "ar": "ورشة تجريبية"},
                       room={"fr": "Salle 9", "ar": "القاعة 9"}, starts_at=starts,
                       ends_at=starts + dt.timedelta(hours=hours), capacity=capacity,
                       language="ar+fr", audience=audience)
        session.add(row)
        await session.flush()
        return row.id


async def add_people(app: App, count: int, role: Role = Role.VISITOR) -> list[int]:
    async with app.sessions() as session, session.begin():
        start = int(await session.scalar(select(Contact.id).order_by(Contact.id.desc())
                                         .limit(1)) or 0) + 1
        await session.execute(insert(Contact), [
            {"id": start + index, "channel": "telegram", "user_id": str(70000 + start + index),
             "language": "fr", "role": role}
            for index in range(count)])
    return list(range(start, start + count))


async def registrations(app: App, workshop_id: int) -> list[Registration]:
    async with app.sessions() as session:
        return list(await session.scalars(select(Registration).where(
            Registration.workshop_id == workshop_id).order_by(Registration.id)))


async def assert_invariants(app: App, workshop_id: int, capacity: int) -> Counter[str]:
    rows = await registrations(app, workshop_id)
    statuses = Counter(str(row.status) for row in rows)
    holding = statuses["confirmed"] + statuses["offered"]
    assert holding <= capacity
    positions = sorted(row.position for row in rows
                       if row.status == RegistrationStatus.WAITLISTED and row.position)
    assert positions == list(range(1, statuses["waitlisted"] + 1))
    return statuses


@pytest.mark.postgres
async def test_500_attempts_for_30_seats_from_two_processes(make_app: AppFactory) -> None:
    """Two processes, 250 people each, all at once, for 30 seats on PostgreSQL: exactly 30
    confirmed and the other 470 waiting in positions 1..470."""
    app = await make_app(database="postgres")
    workshop = await add_workshop(app)
    people = await add_people(app, 500)
    fair = await _fair_id(app)
    env = cli_env(PYTHONPATH=str(ROOT))
    processes = [await asyncio.create_subprocess_exec(
        sys.executable, "-c", RACE, app.settings.database_url, str(workshop), str(first),
        "250", str(fair), NOW.isoformat(), env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE) for first in (people[0], people[250])]
    outputs = [await process.communicate() for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    confirmed_by = [int(out.decode().strip()) for out, _err in outputs]
    assert sum(confirmed_by) == 30
    statuses = await assert_invariants(app, workshop, 30)
    assert statuses == {"confirmed": 30, "waitlisted": 470}


async def test_500_attempts_for_30_seats_in_one_process_on_sqlite(make_app: AppFactory) -> None:
    app = await make_app()
    workshop = await add_workshop(app)
    people = await add_people(app, 500)
    repo = RegistrationRepository(app.sessions, ZONE)
    fair = await _fair_id(app)
    done = await asyncio.gather(*(repo.register(fair, person, workshop, NOW)
                                  for person in people))
    assert Counter(result.outcome for result in done) == {Outcome.CONFIRMED: 30,
                                                          Outcome.WAITLISTED: 470}
    assert sorted(result.position or 0 for result in done
                  if result.outcome is Outcome.WAITLISTED) == list(range(1, 471))
    assert await assert_invariants(app, workshop, 30) == {"confirmed": 30, "waitlisted": 470}
    # a second tap changes nothing
    again = await repo.register(fair, people[0], workshop, NOW)
    assert again.outcome is Outcome.ALREADY and again.status == RegistrationStatus.CONFIRMED


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres",
                                                             marks=pytest.mark.postgres)])
async def test_cancel_offer_accept_decline_and_expiry(make_app: AppFactory,
                                                      database: str) -> None:
    """A freed seat goes to the first waiting as an offer; a declined or expired offer passes
    on; the waiting list moves up without gaps."""
    app = await make_app(database=database)
    workshop = await add_workshop(app, capacity=1)
    alice, bashir, chama, driss = await add_people(app, 4)
    repo = RegistrationRepository(app.sessions, ZONE)
    fair = await _fair_id(app)
    assert (await repo.register(fair, alice, workshop, NOW)).outcome is Outcome.CONFIRMED
    for position, person in enumerate((bashir, chama, driss), start=1):
        result = await repo.register(fair, person, workshop, NOW)
        assert (result.outcome, result.position) == (Outcome.WAITLISTED, position)

    # Alice cancels: Bashir is offered the seat for 12 hours (the workshop is two days away).
    assert await repo.cancel(alice, workshop, NOW) is CancelOutcome.CANCELLED
    mine = await repo.mine(fair, bashir)
    assert [(item.status, item.offered_until) for item in mine] == [
        (RegistrationStatus.OFFERED, NOW + dt.timedelta(hours=12))]
    assert [(row.contact_id, row.position) for row in await registrations(app, workshop)
            if row.status == RegistrationStatus.WAITLISTED] == [(chama, 1), (driss, 2)]
    offers = await outbox_rows(app, "offer")
    assert [row.contact_id for row in offers] == [bashir]
    assert offers[0].payload["until"] == (NOW + dt.timedelta(hours=12)).isoformat()

    # Bashir declines: Chama is offered it; Driss moves up to 1.
    later = NOW + dt.timedelta(hours=1)
    assert await repo.answer_offer(bashir, workshop, False, later) is OfferOutcome.DECLINED
    assert await repo.answer_offer(bashir, workshop, True, later) is OfferOutcome.NO_OFFER
    # (Bashir's offer message, not sent yet here, will not go out now)
    assert [row.contact_id for row in await outbox_rows(app, "offer")] == [chama]
    assert await assert_invariants(app, workshop, 1) == {
        "cancelled": 2, "offered": 1, "waitlisted": 1}

    # Chama lets it expire: the worker's pass gives it to Driss, who accepts.
    assert await repo.expire_offers(later + dt.timedelta(hours=11)) == 0
    assert await repo.expire_offers(later + dt.timedelta(hours=13)) == 1
    much_later = later + dt.timedelta(hours=14)
    assert await repo.answer_offer(chama, workshop, True, much_later) is OfferOutcome.NO_OFFER
    assert await repo.answer_offer(driss, workshop, True, much_later) is OfferOutcome.ACCEPTED
    assert await assert_invariants(app, workshop, 1) == {"cancelled": 3, "confirmed": 1}
    # Alice may register again: the seat is taken, so she waits.
    result = await repo.register(fair, alice, workshop, much_later)
    assert (result.outcome, result.position) == (Outcome.WAITLISTED, 1)


async def outbox_rows(app: App, kind: str) -> list[OutboxMessage]:
    async with app.sessions() as session:
        return list(await session.scalars(select(OutboxMessage).where(
            OutboxMessage.kind == kind, OutboxMessage.status == OutboxStatus.PENDING)
            .order_by(OutboxMessage.id)))


async def test_overlap_cooperatives_only_started_and_full(make_app: AppFactory) -> None:
    app = await make_app()
    repo = RegistrationRepository(app.sessions, ZONE)
    fair = await _fair_id(app)
    morning = await add_workshop(app, key="morning")
    overlapping = await add_workshop(app, key="overlap",
                                     starts=NOW + dt.timedelta(days=2, hours=1))
    for_coops = await add_workshop(app, key="coops", audience="cooperatives")
    soon = await add_workshop(app, key="soon", capacity=1,
                              starts=NOW + dt.timedelta(minutes=45))
    (visitor, other), (member,) = await add_people(app, 2), await add_people(app, 1,
                                                                            Role.COOPERATIVE)
    assert (await repo.register(fair, visitor, morning, NOW)).outcome is Outcome.CONFIRMED
    clash = await repo.register(fair, visitor, overlapping, NOW)
    assert clash.outcome is Outcome.OVERLAP and clash.overlaps == (morning,)
    forced = await repo.register(fair, visitor, overlapping, NOW, allow_overlap=True)
    assert forced.outcome is Outcome.CONFIRMED

    assert (await repo.register(fair, visitor, for_coops, NOW)).outcome is (
        Outcome.COOPERATIVES_ONLY)
    assert (await repo.register(fair, member, for_coops, NOW)).outcome is Outcome.CONFIRMED

    assert (await repo.register(fair, visitor, soon, NOW)).outcome is Outcome.CONFIRMED
    # full, and less than an hour before the start: no waiting list
    assert (await repo.register(fair, other, soon, NOW)).outcome is Outcome.FULL
    after = NOW + dt.timedelta(hours=1)
    assert (await repo.register(fair, other, soon, after)).outcome is Outcome.STARTED
    assert await repo.cancel(visitor, soon, after) is CancelOutcome.STARTED
    assert await repo.cancel(other, soon, NOW) is CancelOutcome.NOT_REGISTERED
    assert (await repo.register(fair, other, 999_999, NOW)).outcome is Outcome.UNKNOWN


def test_offer_time_shrinks_as_the_start_nears_and_waits_for_the_morning() -> None:
    starts = dt.datetime(2026, 12, 14, 15, 0, tzinfo=ZONE)

    def local(day: int, hour: int, minute: int = 0) -> dt.datetime:
        return dt.datetime(2026, 12, day, hour, minute, tzinfo=ZONE)

    assert offer_deadline(local(13, 10), starts, ZONE) == local(13, 22)  # 12 h
    assert offer_deadline(local(14, 9), starts, ZONE) == local(14, 11)  # 2 h within a day
    assert offer_deadline(local(14, 13), starts, ZONE) == local(14, 14)  # not past start - 1 h
    assert offer_deadline(local(14, 14, 30), starts, ZONE) is None  # the last hour: no offer
    # made at 23:00 (quiet hours): counts from 08:00, when the message goes out
    assert offer_deadline(local(13, 23), starts, ZONE) == local(14, 10)
    # TADAMON_QUIET_HOURS=off: from the moment it is made; 07:00-09:00: from 09:00
    assert offer_deadline(local(13, 23), starts, ZONE, None) == local(14, 1)
    assert offer_deadline(local(14, 7), starts, ZONE,
                          QuietHours(dt.time(7), dt.time(9))) == local(14, 11)


async def test_reminders_and_feedback_prompt_follow_the_registration(make_app: AppFactory,
                                                                     tmp_path: Path) -> None:
    """Registering queues the evening-before and hour-before reminders and a feedback prompt
    after the end; cancelling skips them; an offer left to expire tells its person. The CSV
    export lists every registration."""
    app = await make_app()
    workshop = await add_workshop(app, capacity=1)
    amina, karim = await add_people(app, 2)
    repo = RegistrationRepository(app.sessions, ZONE)
    fair = await _fair_id(app)
    await repo.register(fair, amina, workshop, NOW)
    await repo.register(fair, karim, workshop, NOW)
    starts = NOW + dt.timedelta(days=2)
    local = starts.astimezone(ZONE)
    evening = dt.datetime.combine(local.date() - dt.timedelta(days=1), dt.time(18), ZONE)
    queued = [(row.kind, row.due_at, row.payload["soon"]) for row in
              await outbox_rows(app, "workshop_reminder") + await outbox_rows(app,
                                                                                 "feedback_prompt")]
    assert sorted(queued) == sorted([
        ("workshop_reminder", evening, False),
        ("workshop_reminder", starts - dt.timedelta(hours=1), True),
        ("feedback_prompt", starts + dt.timedelta(hours=2, minutes=15), False)])

    assert await repo.cancel(amina, workshop, NOW) is CancelOutcome.CANCELLED
    # skipped with the registration
    assert await outbox_rows(app, "workshop_reminder") == await outbox_rows(
        app, "feedback_prompt") == []
    # Karim got the offer and lets it run out: the worker's pass tells him.
    assert await repo.expire_offers(NOW + dt.timedelta(hours=13)) == 1
    told = await outbox_rows(app, "offer_expired")
    assert [row.contact_id for row in told] == [karim]
    rate = {rate.key: rate for rate in await ReportRepository(app.sessions)
            .workshop_fill(fair)}["race"]
    assert (rate.capacity, rate.confirmed, rate.offered, rate.waitlisted) == (1, 0, 0, 0)

    out = tmp_path / "registrations.csv"
    code, stdout, stderr = await run_tadamon(
        "export", "registrations", "--out", str(out),
        env=cli_env(TADAMON_DATABASE_URL=app.settings.database_url), cwd=tmp_path)
    assert code == 0, stderr
    assert "2 registrations written" in stdout
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "workshop_id,channel,user_id,status,created_at"
    assert sorted(line.split(",")[3] for line in lines[1:]) == ["cancelled", "cancelled"]
    assert all(line.startswith("race,telegram,") for line in lines[1:])


async def test_reminder_times_follow_the_settings(make_app: AppFactory) -> None:
    """TADAMON_REMINDER_EVENING=off and TADAMON_REMINDER_BEFORE=30: one reminder, half an hour
    before the start (and still the feedback prompt)."""
    app = await make_app(reminder_evening="off", reminder_before=30)
    workshop = await add_workshop(app)
    (amina,) = await add_people(app, 1)
    result = await app.engine.registrations.register(await _fair_id(app), amina, workshop, NOW)
    assert result.outcome is Outcome.CONFIRMED
    starts = NOW + dt.timedelta(days=2)
    assert [(row.due_at, row.payload["soon"]) for row in
            await outbox_rows(app, "workshop_reminder")] == [
        (starts - dt.timedelta(minutes=30), True)]
    assert len(await outbox_rows(app, "feedback_prompt")) == 1


async def test_reminders_and_offers_keep_the_fairs_own_time_zone(make_app: AppFactory) -> None:
    """TADAMON_TIMEZONE is only a default: the sample fair's record says Africa/Casablanca, so
    its evening reminder and the offer made at night count in Casablanca time, not Tokyo's."""
    app = await make_app(timezone="Asia/Tokyo")
    fair = await app.engine.catalogue.fair()
    assert fair is not None and fair.timezone == "Africa/Casablanca"
    workshop = await add_workshop(app, capacity=1)
    alice, bashir = await add_people(app, 2)
    repo = app.engine.registrations
    assert (await repo.register(fair.id, alice, workshop, NOW)).outcome is Outcome.CONFIRMED
    assert (await repo.register(fair.id, bashir, workshop, NOW)).outcome is Outcome.WAITLISTED
    starts = NOW + dt.timedelta(days=2)  # Sunday 13 December, 10:00 in Casablanca
    evening = dt.datetime(2026, 12, 12, 18, 0, tzinfo=ZONE)
    assert {row.due_at for row in await outbox_rows(app, "workshop_reminder")} == {
        evening, starts - dt.timedelta(hours=1)}
    # Alice cancels at 23:00 (quiet hours): Bashir's 12 hours count from 08:00, Casablanca.
    night = dt.datetime(2026, 12, 11, 23, 0, tzinfo=ZONE)
    assert await repo.cancel(alice, workshop, night) is CancelOutcome.CANCELLED
    assert [(item.status, item.offered_until) for item in await repo.mine(fair.id, bashir)] == [
        (RegistrationStatus.OFFERED, dt.datetime(2026, 12, 12, 20, 0, tzinfo=ZONE))]
