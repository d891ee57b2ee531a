"""Erasure and retention against real databases (SQLite and PostgreSQL) and a real Redis: an
erased person leaves no row that names them, in any table (every table of the schema is read,
so a table added later cannot be forgotten), nor any Redis key; their seat goes to the next
person waiting; the report's figures do not change; the retention pass erases exactly the
people silent for the retention time."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import ForeignKey, select

from bot.app import App
from storage import keys
from storage.models import (
    AuditEntry,
    Base,
    Contact,
    Feedback,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationStatus,
    Role,
    Workshop,
)
from storage.outbox import Outcome
from storage.privacy import PersonalData, Pseudonyms, person
from storage.registrations import OfferOutcome
from storage.registrations import Outcome as Registered
from storage.reports import FairReport, ReportRepository, feedback_rows
from storage.websessions import WebSessionRepository
from tests.conftest import AppFactory, cli_env, run_tadamon

# Today (2026-12-02 in these tests' world) and the sample fair's days: 13 to 16 December.
NOW = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC)
AMINA = ("telegram", "700100200")
YOUSSEF = ("whatsapp", "212612345678")
OTHERS = [("telegram", "700100300"), ("whatsapp", "212698765432")]
COMMENT = "Très bien ! Appelez-moi au 06 11 22 33 44 ou amina.b@example.ma"


def wamid(number: str) -> str:
    """A WhatsApp message id as the Cloud API makes them: base64 of bytes holding the number."""
    raw = b"\x1c\x18\x0c" + number.encode() + b"\x15\x02\x00\x11\x18\x12" + b"3EB0C7A1F2"
    return "wamid." + base64.b64encode(raw).decode()


async def _workshop(app: App, fair_id: int, capacity: int = 1) -> int:
    starts = dt.datetime(2026, 12, 14, 11, 0, tzinfo=dt.UTC)
    async with app.sessions() as session, session.begin():
        row = Workshop(fair_id=fair_id, key="privacy-test", capacity=capacity,
                       title={"fr": "Atelier test", "ar": "ورشة تجريبية"},
                       room={"fr": "Salle 9", "ar": "القاعة 9"}, starts_at=starts,
                       ends_at=starts + dt.timedelta(hours=2), language="ar+fr",
                       audience="all")
        session.add(row)
        await session.flush()
        return row.id


async def _people(app: App) -> dict[tuple[str, str], int]:
    ids = {}
    for who in (AMINA, YOUSSEF, *OTHERS):
        contact = await app.engine.contacts.arrive(who[0], who[1], "fr")
        ids[who] = contact.id
    return ids


async def _a_fair_of_activity(app: App) -> dict[str, Any]:
    """Amina holds the only seat of a workshop, Youssef waits for it; Amina saved stands,
    rated the fair, a stand and the workshop (with a comment giving her number and email),
    answered the exhibitors' survey, received a broadcast (sent, with a platform message id)
    and has one message still to be sent; her conversation is in Redis."""
    engine = app.engine
    fair = await engine.catalogue.fair()
    assert fair is not None
    ids = await _people(app)
    amina, youssef = ids[AMINA], ids[YOUSSEF]
    workshop = await _workshop(app, fair.id)
    assert (await engine.registrations.register(fair.id, amina, workshop, NOW)
            ).outcome is Registered.CONFIRMED
    assert (await engine.registrations.register(fair.id, youssef, workshop, NOW)
            ).outcome is Registered.WAITLISTED
    snapshot = await engine.catalogue.current(fair.id)
    assert snapshot is not None
    stands = sorted(snapshot.stands)[:2]
    for number in stands:
        await engine.saved.save(fair.id, amina, number, NOW)
    day = dt.date(2026, 12, 13)
    rated = await engine.feedback.rate(fair.id, amina, "fair", fair.key, 5, "fr", day)
    await engine.feedback.comment(rated.id, amina, COMMENT, "fr")
    await engine.feedback.rate(fair.id, amina, "stand", stands[0], 4, "fr", day)
    await engine.feedback.rate(fair.id, amina, "workshop", "privacy-test", 3, "fr", day)
    await engine.feedback.rate(fair.id, ids[OTHERS[0]], "fair", fair.key, 2, "ar", day)
    await engine.feedback.answer_survey(fair.id, amina, None, "fr", satisfaction=4,
                                        comment="Appelez le 0611223344")
    # A broadcast sent to everyone (the platform's message ids recorded), then one queued.
    sent_id, _count = await engine.outbox.queue_broadcast(
        fair.id, "all", {"fr": "Bienvenue", "ar": "مرحبا"}, NOW)
    claimed = await engine.outbox.claim(100, 60, NOW)
    await engine.outbox.settle_many(
        [Outcome(row.id, OutboxStatus.SENT,
                 wamid(row.user_id) if row.channel == "whatsapp" else f"tg-{row.id}", None, None)
         for row in claimed if row.broadcast_id == sent_id], NOW)
    await engine.outbox.queue_broadcast(fair.id, "all", {"fr": "Demain", "ar": "غدا"},
                                        NOW + dt.timedelta(hours=2))
    await engine.state.save_session(*AMINA, {"v": 1, "language": "fr"})
    return {"fair": fair, "ids": ids, "workshop": workshop, "stands": stands,
            "broadcast": sent_id}


def _rows_naming(rows: dict[str, list[dict[str, Any]]], contact_id: int,
                 texts: tuple[str, ...]) -> list[str]:
    """Every cell, in every table, that names the person: a column referring to contacts
    holding their id, or a text holding one of `texts` (their id on the platform, their
    phone number as people write it, their email), also inside base64 (WhatsApp's ids)."""
    found = []
    for table in Base.metadata.sorted_tables:
        person_columns = {column.name for column in table.columns
                          if any(isinstance(fk, ForeignKey) and fk.column.table.name == "contacts"
                                 for fk in column.foreign_keys)}
        for row in rows[table.name]:
            for name, value in row.items():
                if name in person_columns and value == contact_id:
                    found.append(f"{table.name}.{name} = {value}")
                    continue
                if table.name == "contacts" and name == "id" and value == contact_id:
                    found.append(f"contacts.id = {value}")
                    continue
                text = value if isinstance(value, str) else json.dumps(value, default=str)
                decoded = _unbase64(text)
                for needle in texts:
                    if needle in text or needle in decoded:
                        found.append(f"{table.name}.{name} holds {needle!r}")
    return found


def _unbase64(text: str) -> str:
    out = []
    for word in text.replace("wamid.", " ").split():
        try:
            out.append(base64.b64decode(word + "=" * (-len(word) % 4)).decode("latin-1"))
        except ValueError:
            continue
    return " ".join(out)


async def _all_rows(app: App) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {}
    async with app.sessions() as session:
        for table in Base.metadata.sorted_tables:
            result = await session.execute(select(table))
            rows[table.name] = [dict(row._mapping) for row in result]
    return rows


async def _redis_naming(app: App, texts: tuple[str, ...]) -> list[str]:
    found = []
    async for key in app.redis.scan_iter(match=f"{keys.PREFIX}*"):
        name = key.decode() if isinstance(key, bytes) else key
        kind = await app.redis.type(name)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        value = await app.redis.get(name) if kind == "string" else b""
        text = name + " " + (value.decode("latin-1") if isinstance(value, bytes)
                             else str(value or ""))
        found += [f"redis {name}" for needle in texts if needle in text]
    return found


def _figures(report: FairReport | None) -> dict[str, Any]:
    """The report's figures: everything but the survey's free comments."""
    assert report is not None
    out = dataclasses.asdict(report)
    for answer in out["survey"]:
        answer.pop("comment")
    return out


AMINA_TEXTS = (AMINA[1], "0611223344", "06 11 22 33 44", "amina.b@example.ma")


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_an_erased_person_leaves_no_row_or_key_naming_them(
        make_app: AppFactory, database: str) -> None:
    app = await make_app(database=database)
    world = await _a_fair_of_activity(app)
    amina, youssef = world["ids"][AMINA], world["ids"][YOUSSEF]
    rows = await _all_rows(app)
    # The check sees the person where they are: it cannot pass for want of looking.
    before = _rows_naming(rows, amina, AMINA_TEXTS)
    assert {f"contacts.id = {amina}", f"registrations.contact_id = {amina}",
            f"saved_stands.contact_id = {amina}", f"feedback.contact_id = {amina}",
            f"outbox.contact_id = {amina}", f"exhibitor_surveys.contact_id = {amina}",
            "contacts.user_id holds '700100200'", "feedback.comment holds '06 11 22 33 44'",
            } <= set(before)
    assert any("outbox.platform_message_id" in item
               for item in _rows_naming(rows, youssef, (YOUSSEF[1],)))
    assert await _redis_naming(app, (AMINA[1],))
    report = ReportRepository(app.sessions)
    figures = _figures(await report.report())

    personal = PersonalData(app.sessions, app.engine.registrations, app.redis)
    erased = await personal.erase(*AMINA, NOW)

    assert erased is not None
    assert (erased.registrations, erased.seats_freed, erased.saved_stands) == (1, 1, 2)
    assert erased.messages == 1  # tomorrow's broadcast, still to be sent
    assert erased.ratings == 4  # three ratings and the survey, kept naming nobody
    rows = await _all_rows(app)
    assert _rows_naming(rows, amina, AMINA_TEXTS) == []
    assert await _redis_naming(app, (AMINA[1],)) == []
    # Her seat is offered to Youssef, who waited for it; his message says so.
    async with app.sessions() as session:
        status = await session.scalar(select(Registration.status).where(
            Registration.contact_id == youssef))
        offers = (await session.scalars(select(OutboxMessage.kind).where(
            OutboxMessage.contact_id == youssef,
            OutboxMessage.status == OutboxStatus.PENDING))).all()
        comments = (await session.scalars(select(Feedback.comment).where(
            Feedback.contact_id.is_(None), Feedback.comment.is_not(None)))).all()
    assert status is RegistrationStatus.OFFERED
    assert "offer" in offers
    assert comments == ["Très bien ! Appelez-moi au <number> ou <email>"]
    # Once he takes the seat, the report's figures are the same as before the erasure: the
    # ratings stay, and the erased person is still counted among the contacts.
    assert await app.engine.registrations.answer_offer(
        youssef, world["workshop"], True, NOW) is OfferOutcome.ACCEPTED
    after = _figures(await report.report())
    for fill in (*figures["workshops"], *after["workshops"]):
        fill.pop("waitlisted")  # Youssef no longer waits: he has the seat
    assert after == figures
    # The broadcast sent before still counts her message.
    summary = await app.engine.outbox.broadcast(world["broadcast"])
    assert summary is not None and summary.counts.get("sent") == 4
    # The exports still hold her ratings and the messages she was sent, naming nobody.
    feedback = [row for row in await feedback_rows(app.sessions) if row["user_id"] == ""]
    assert sorted(row["rating"] for row in feedback) == [3, 4, 5]
    assert {row["channel"] for row in feedback} == {""}
    deliveries = [row for row in await app.engine.outbox.deliveries() if row["user_id"] == ""]
    assert [row["status"] for row in deliveries] == ["sent"]
    # Erasing again finds nobody.
    assert await personal.erase(*AMINA, NOW) is None


async def test_a_web_chat_person_is_erased_with_their_session(make_app: AppFactory) -> None:
    app = await make_app()
    sessions = WebSessionRepository(app.sessions, app.redis)
    token = await sessions.issue(None)
    public = await sessions.resolve(token)
    assert public is not None
    contact = await app.engine.contacts.arrive("web", public, "ar")
    # A code to continue on WhatsApp, taken before the erasure and used after it.
    code = await app.engine.transfer_codes.issue(contact.id, NOW)
    assert await app.redis.exists(keys.web_session(
        (await _all_rows(app))["web_sessions"][0]["token_hash"]))

    erased = await PersonalData(app.sessions, app.engine.registrations, app.redis).erase(
        "web", public, NOW)

    assert erased is not None
    rows = await _all_rows(app)
    assert _rows_naming(rows, -1, (public,)) == []
    assert rows["web_sessions"] == []
    assert await _redis_naming(app, (public,)) == []
    assert await app.engine.transfer_codes.take(code, NOW) is None
    # Another process (no copy in memory) no longer knows the token: the page asks for a new
    # session, and the person starts from zero.
    assert await WebSessionRepository(app.sessions, app.redis).resolve(token) is None


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_retention_erases_exactly_the_people_silent_for_the_retention_time(
        make_app: AppFactory, database: str) -> None:
    app = await make_app(database=database)
    world = await _a_fair_of_activity(app)
    ids = world["ids"]
    organizer = await app.engine.contacts.grant_organizer("telegram", "700100999", "cli")
    fair = world["fair"]
    ended = dt.datetime.combine(fair.closes + dt.timedelta(days=1), dt.time(),
                                dt.timezone(dt.timedelta(hours=1)))
    # Youssef wrote again a month after the fair; the others last wrote on 2 December.
    async with app.sessions() as session, session.begin():
        for contact in await session.scalars(select(Contact)):
            contact.last_inbound_at = NOW
            contact.created_at = NOW - dt.timedelta(days=1)
        row = await session.get(Contact, ids[YOUSSEF])
        assert row is not None
        row.last_inbound_at = ended + dt.timedelta(days=30)
    personal = PersonalData(app.sessions, app.engine.registrations, app.redis)
    report = ReportRepository(app.sessions)
    figures = _figures(await report.report())

    # The day before the retention time ends: nobody is erased.
    assert await personal.sweep(ended + dt.timedelta(days=179), 180) == 0
    assert len((await _all_rows(app))["contacts"]) == 5

    later = ended + dt.timedelta(days=180, hours=1)
    assert await personal.sweep(later, 180) == 3

    rows = await _all_rows(app)
    left = {(row["channel"], row["user_id"]) for row in rows["contacts"]}
    assert left == {YOUSSEF, ("telegram", "700100999")}
    assert organizer.role is Role.ORGANIZER
    for who in (AMINA, *OTHERS):
        assert _rows_naming(rows, ids[who], (who[1],)) == []
    # Messages sent before the retention time no longer name anyone (Youssef's included),
    # and still count.
    sent = [row for row in rows["outbox"] if row["status"] == "sent"]
    assert len(sent) == 4 and all(row["contact_id"] is None and row["payload"] == {}
                                  and row["platform_message_id"] is None for row in sent)
    after = _figures(await report.report())
    for name in ("contacts", "contacts_by_channel", "fair_ratings", "fair_average",
                 "comments"):
        assert after["figures"][name] == figures["figures"][name]
    assert after["contacts_by_channel"] == figures["contacts_by_channel"]
    assert after["contacts_by_language"] == figures["contacts_by_language"]
    assert after["fair_ratings"] == figures["fair_ratings"]
    assert after["stands"] == figures["stands"]
    assert after["workshop_ratings"] == figures["workshop_ratings"]
    # A second pass finds nobody else.
    assert await personal.sweep(later + dt.timedelta(hours=1), 180) == 0


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_tadamon_forget_erases_and_audits_without_the_id(
        make_app: AppFactory, database: str, tmp_path: Any) -> None:
    app = await make_app(database=database)
    world = await _a_fair_of_activity(app)
    url = app.settings.database_url
    env = cli_env(TADAMON_DATABASE_URL=url,
                  TADAMON_REDIS_URL=app.settings.redis_url or "")

    code, out, err = await run_tadamon("forget", "whatsapp:+212 612-345-678", env=env,
                                       cwd=tmp_path)

    assert code == 0, err
    assert out.strip() == (
        "whatsapp:212612345678 erased: 1 registration removed (0 held a seat, offered to the "
        "next person waiting), 0 saved stands, 1 message not sent; 0 ratings kept without a "
        "name")
    rows = await _all_rows(app)
    assert _rows_naming(rows, world["ids"][YOUSSEF], (YOUSSEF[1], "612345678")) == []
    async with app.sessions() as session:
        audit = (await session.scalars(select(AuditEntry))).all()
    assert [(entry.actor, entry.action, entry.subject) for entry in audit] == [
        ("command line", "person erased", "whatsapp")]
    code, out, _err = await run_tadamon("forget", "whatsapp:212612345678", env=env,
                                        cwd=tmp_path)
    assert code == 0
    assert "nobody is known as whatsapp:212612345678" in out
    code, _out, err = await run_tadamon("forget", "signal:123", env=env, cwd=tmp_path)
    assert code == 2
    assert err.strip() == ("tadamon: 'signal:123' is not CHANNEL:USER_ID with CHANNEL "
                                  "telegram, whatsapp or web")


def test_log_references_and_pseudonyms_never_show_the_id() -> None:
    reference = person(*YOUSSEF)
    assert reference.startswith("whatsapp:#") and len(reference) == len("whatsapp:#") + 8
    assert YOUSSEF[1] not in reference and "612345678" not in reference
    assert person(*YOUSSEF) == reference != person(*AMINA)
    pseudonyms = Pseudonyms(b"k" * 32)
    assert pseudonyms(*YOUSSEF) == Pseudonyms(b"k" * 32)(*YOUSSEF) != pseudonyms(*AMINA)
    assert Pseudonyms(b"j" * 32)(*YOUSSEF) != pseudonyms(*YOUSSEF)
    assert YOUSSEF[1] not in pseudonyms(*YOUSSEF)
    assert pseudonyms("web", "") == ""



async def test_the_worker_applies_the_retention_setting(make_app: AppFactory) -> None:
    from bot.worker import OutboxWorker

    app = await make_app(retention_days=30)
    await _people(app)
    fair = await app.engine.catalogue.fair()
    assert fair is not None
    # Everyone last wrote on 2 December; the fair's last day is 16 December.
    ended = dt.datetime(fair.closes.year, fair.closes.month, fair.closes.day + 1,
                        tzinfo=dt.UTC)
    worker = OutboxWorker(app, clock=lambda: ended + dt.timedelta(days=29))
    assert await worker.apply_retention() == 0
    worker = OutboxWorker(app, clock=lambda: ended + dt.timedelta(days=31))
    assert await worker.apply_retention() == 4
    assert (await _all_rows(app))["contacts"] == []
