"""The outbox and its workers: broadcasts and notices reach each person once, in their
language, never an opted-out one, at the platform's pace."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.worker import BATCH, LEASE, OutboxWorker, quiet_until
from storage.models import (
    Contact,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationStatus,
    Workshop,
    utcnow,
)
from storage.outbox import Outbox
from storage.repositories import ROLE_BY_COMMAND
from tests.conftest import TADAMON, AppFactory, cli_env, run_tadamon
from tests.fakes.telegram import FakeTelegram
from tests.fakes.whatsapp import FakeWhatsApp

CASABLANCA = ZoneInfo("Africa/Casablanca")
NOON = dt.datetime(2026, 12, 13, 12, 0, tzinfo=CASABLANCA)
TEXT = {"fr": "Le salon ouvre à 10:00.", "ar": "يفتح المعرض على الساعة 10:00."}


def at_noon() -> dt.datetime:
    return NOON.astimezone(dt.UTC)


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


OutboxAppFactory = Callable[..., Awaitable[App]]


@pytest.fixture
def make_outbox_app(make_app: AppFactory, fake_telegram: FakeTelegram) -> OutboxAppFactory:
    """An app whose Telegram channel talks to the fake (not started: workers only send)."""

    async def make(**options: Any) -> App:
        settings: dict[str, Any] = {"telegram_token": fake_telegram.token,
                                    "telegram_api_base": fake_telegram.base_url,
                                    "telegram_rate": 100_000}
        settings.update(options)
        return await make_app(**settings)

    return make


async def add_contacts(app: App, count: int, channel: str = "telegram", start: int = 1000,
                       **fields: Any) -> list[int]:
    async with app.sessions() as session, session.begin():
        rows = [Contact(channel=channel, user_id=str(start + index),
                        language=fields.get("language", "fr" if index % 2 else "ar"),
                        opted_out=fields.get("opted_out", False),
                        last_inbound_at=fields.get("last_inbound_at"))
                for index in range(count)]
        session.add_all(rows)
        await session.flush()
        return [row.id for row in rows]


async def statuses(app: App) -> dict[str, int]:
    async with app.sessions() as session:
        rows = (await session.execute(select(OutboxMessage.status, func.count())
                                      .group_by(OutboxMessage.status))).all()
    return {status.value: count for status, count in rows}


async def test_broadcast_reaches_each_person_once_in_their_language(
    make_outbox_app: OutboxAppFactory, fake_telegram: FakeTelegram,
) -> None:
    app = await make_outbox_app()
    await add_contacts(app, 6)
    await add_contacts(app, 1, start=5000, opted_out=True)
    fair = await app.engine.catalogue.fair()
    assert fair is not None
    outbox = Outbox(app.sessions)
    assert await outbox.recipients("all") == 6
    broadcast_id, count = await outbox.queue_broadcast(fair.id, "all", TEXT, utcnow())
    assert count == 6
    assert await OutboxWorker(app, clock=at_noon).drain() == 6
    sent = {call.chat_id: call.text for call in fake_telegram.calls_of("sendMessage")}
    assert sent == {1000 + index: TEXT["ar" if index % 2 == 0 else "fr"] for index in range(6)}
    assert 5000 not in sent  # opted out
    assert (await outbox.progress(broadcast_id))["sent"] == 6
    # nothing left: a second pass sends nothing again
    assert await OutboxWorker(app, clock=at_noon).drain() == 0
    assert len(fake_telegram.calls_of("sendMessage")) == 6


async def test_audiences(make_outbox_app: OutboxAppFactory) -> None:
    app = await make_outbox_app()
    await add_contacts(app, 4)  # 2 ar, 2 fr visitors
    outbox = Outbox(app.sessions)
    assert await outbox.recipients("lang:ar") == 2
    assert await outbox.recipients("lang:fr") == 2
    assert await outbox.recipients("visitors") == 4
    assert await outbox.recipients("cooperatives") == 0
    assert await outbox.recipients("organizers") == 0
    assert await outbox.recipients("workshop:marketing-1") == 0
    with pytest.raises(ValueError, match="unknown audience"):
        await outbox.recipients("everyone")


async def test_opt_out_after_queueing_blocked_skipped_and_web_contacts_kept_in_their_inbox(
    make_outbox_app: OutboxAppFactory, fake_telegram: FakeTelegram,
) -> None:
    app = await make_outbox_app()
    ids = await add_contacts(app, 3)
    await add_contacts(app, 1, channel="web", start=9000)
    fair = await app.engine.catalogue.fair()
    assert fair is not None
    outbox = Outbox(app.sessions)
    await outbox.queue_broadcast(fair.id, "all", TEXT, utcnow())
    await app.engine.contacts.set_opted_out(ids[0], True)
    fake_telegram.fail("sendMessage", status=403, chat_id=1001)
    await OutboxWorker(app, clock=at_noon).drain()
    async with app.sessions() as session:
        rows = {row.contact_id: row for row in await session.scalars(select(OutboxMessage))}
        blocked = await session.get(Contact, ids[1])
    assert rows[ids[0]].status == OutboxStatus.SKIPPED and rows[ids[0]].error == "opted out"
    assert rows[ids[1]].status == OutboxStatus.SKIPPED
    assert "unreachable" in (rows[ids[1]].error or "")
    assert blocked is not None and blocked.unreachable
    assert rows[ids[2]].status == OutboxStatus.SENT
    # the web chat's visitor has it in their inbox: sent, not skipped
    assert sorted(row.channel for row in rows.values()) == ["telegram"] * 3 + ["web"]
    assert [row.status for row in rows.values() if row.channel == "web"] == [OutboxStatus.SENT]


async def test_quiet_hours_hold_bulk_messages_unless_urgent(
    make_outbox_app: OutboxAppFactory, fake_telegram: FakeTelegram,
) -> None:
    night = dt.datetime(2026, 12, 13, 23, 30, tzinfo=CASABLANCA)
    assert quiet_until(NOON, CASABLANCA) is None
    morning = quiet_until(night, CASABLANCA)
    assert morning == dt.datetime(2026, 12, 14, 8, 0, tzinfo=CASABLANCA)
    assert quiet_until(night.replace(hour=3), CASABLANCA) == dt.datetime(
        2026, 12, 13, 8, 0, tzinfo=CASABLANCA)
    app = await make_outbox_app()
    await add_contacts(app, 2)
    fair = await app.engine.catalogue.fair()
    assert fair is not None
    outbox = Outbox(app.sessions)
    now = night.astimezone(dt.UTC)
    held_id, _ = await outbox.queue_broadcast(fair.id, "all", TEXT, now)
    urgent_id, _ = await outbox.queue_broadcast(fair.id, "all", TEXT, now, urgent=True)
    await OutboxWorker(app, clock=lambda: now).drain()
    assert (await outbox.progress(urgent_id))["sent"] == 2
    assert (await outbox.progress(held_id))["pending"] == 2
    async with app.sessions() as session:
        due = set(await session.scalars(select(OutboxMessage.due_at)
                                        .where(OutboxMessage.broadcast_id == held_id)))
    assert due == {morning}


async def test_quiet_hours_within_a_day_hold_bulk_messages_until_their_end(
    make_outbox_app: OutboxAppFactory, fake_telegram: FakeTelegram,
) -> None:
    """TADAMON_QUIET_HOURS=13:00-14:00 (a fair's lunch break): held at 13:30 until 14:00, sent
    at noon and at night."""
    app = await make_outbox_app(quiet_hours="13:00-14:00")
    await add_contacts(app, 2)
    fair = await app.engine.catalogue.fair()
    assert fair is not None
    outbox = Outbox(app.sessions)
    lunch = dt.datetime(2026, 12, 13, 13, 30, tzinfo=CASABLANCA).astimezone(dt.UTC)
    held_id, _ = await outbox.queue_broadcast(fair.id, "all", TEXT, lunch)
    await OutboxWorker(app, clock=lambda: lunch).drain()
    assert (await outbox.progress(held_id))["pending"] == 2
    assert fake_telegram.calls_of("sendMessage") == []
    async with app.sessions() as session:
        due = set(await session.scalars(select(OutboxMessage.due_at)
                                        .where(OutboxMessage.broadcast_id == held_id)))
    assert due == {dt.datetime(2026, 12, 13, 14, 0, tzinfo=CASABLANCA)}
    night = dt.datetime(2026, 12, 13, 23, 30, tzinfo=CASABLANCA).astimezone(dt.UTC)
    night_id, _ = await outbox.queue_broadcast(fair.id, "all", TEXT, night)
    await OutboxWorker(app, clock=lambda: night).drain()
    assert (await outbox.progress(night_id))["sent"] == 2  # 22:00-08:00 no longer applies
    after = dt.datetime(2026, 12, 14, 14, 0, tzinfo=CASABLANCA).astimezone(dt.UTC)
    await OutboxWorker(app, clock=lambda: after).drain()
    assert (await outbox.progress(held_id))["sent"] == 2


async def test_quiet_hours_off_sends_bulk_messages_at_night(
    make_outbox_app: OutboxAppFactory, fake_telegram: FakeTelegram,
) -> None:
    app = await make_outbox_app(quiet_hours="off")
    await add_contacts(app, 2)
    fair = await app.engine.catalogue.fair()
    assert fair is not None
    outbox = Outbox(app.sessions)
    night = dt.datetime(2026, 12, 13, 3, 0, tzinfo=CASABLANCA).astimezone(dt.UTC)
    broadcast_id, _ = await outbox.queue_broadcast(fair.id, "all", TEXT, night)
    await OutboxWorker(app, clock=lambda: night).drain()
    assert (await outbox.progress(broadcast_id))["sent"] == 2
    assert len(fake_telegram.calls_of("sendMessage")) == 2


async def test_whatsapp_outside_the_window_without_template_is_skipped(
    make_outbox_app: OutboxAppFactory,
) -> None:
    async with FakeWhatsApp() as fake:
        app = await make_outbox_app(
            whatsapp_token=fake.token, whatsapp_phone_number_id=fake.phone_number_id,
            whatsapp_app_secret=fake.app_secret, whatsapp_verify_token=fake.verify_token,
            whatsapp_api_base=fake.base_url, whatsapp_templates="broadcast:fr=salon_annonce")
        now = at_noon()
        await add_contacts(app, 2, channel="whatsapp", start=212600000000,
                           last_inbound_at=now - dt.timedelta(days=3))
        fair = await app.engine.catalogue.fair()
        assert fair is not None
        outbox = Outbox(app.sessions)
        await outbox.queue_broadcast(fair.id, "all", TEXT, now)
        await OutboxWorker(app, clock=at_noon).drain()
        async with app.sessions() as session:
            rows = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        by_language = {row.payload["text"]["fr"]: row for row in rows}
        assert len(by_language) == 1
        outcomes = sorted((row.status.value, row.error or "") for row in rows)
        assert outcomes[0][0] == "sent"  # the French speaker: through the template
        assert outcomes[1][0] == "skipped"
        assert "no template for broadcast:ar" in outcomes[1][1]
        templates = fake.messages(type="template")
        assert [call.body["template"]["name"] for call in templates] == ["salon_annonce"]


@pytest.mark.postgres
async def test_two_workers_racing_send_each_row_exactly_once(
    make_outbox_app: OutboxAppFactory, fake_telegram: FakeTelegram,
) -> None:
    first = await make_outbox_app(database="postgres")
    second_settings = first.settings.model_copy()
    second = App(second_settings)
    try:
        await add_contacts(first, 2000)
        fair = await first.engine.catalogue.fair()
        assert fair is not None
        await Outbox(first.sessions).queue_broadcast(fair.id, "all", TEXT, utcnow())
        handled = await asyncio.gather(OutboxWorker(first, batch=50, clock=at_noon).drain(),
                                       OutboxWorker(second, batch=50, clock=at_noon).drain())
        assert sum(handled) == 2000
        assert min(handled) > 0  # both took part
        chats = [call.chat_id for call in fake_telegram.calls_of("sendMessage")]
        assert len(chats) == 2000 and len(set(chats)) == 2000
        assert await statuses(first) == {"sent": 2000}
    finally:
        await second.close()


async def test_a_dead_workers_claims_come_back_after_the_lease(
    make_outbox_app: OutboxAppFactory, fake_telegram: FakeTelegram,
) -> None:
    app = await make_outbox_app()
    await add_contacts(app, 5)
    fair = await app.engine.catalogue.fair()
    assert fair is not None
    outbox = Outbox(app.sessions)
    await outbox.queue_broadcast(fair.id, "all", TEXT, utcnow(), urgent=True)
    now = utcnow()
    claimed = await outbox.claim(limit=3, lease=60, now=now)  # then it "dies" unsettled
    assert len(claimed) == 3
    assert len(await outbox.claim(limit=10, lease=3600, now=now)) == 2  # what nobody holds
    assert await outbox.claim(limit=10, lease=60, now=now + dt.timedelta(seconds=59)) == []
    # A minute later the dead worker's lease has run out: another worker sends its three.
    later = now + dt.timedelta(seconds=61)
    assert await OutboxWorker(app, clock=lambda: later).drain() == 3
    assert len(fake_telegram.calls_of("sendMessage")) == 3


@pytest.mark.postgres
async def test_a_worker_killed_mid_broadcast_loses_nothing(
    make_outbox_app: OutboxAppFactory, fake_telegram: FakeTelegram, tmp_path: Path,
) -> None:
    """`tadamon worker` killed (SIGKILL) in the middle of a broadcast, then a worker once its
    leases have run out: everyone gets the message, and only what was in flight (sent, not
    recorded yet) goes twice."""
    app = await make_outbox_app(database="postgres")
    # Three batches of the worker's (BATCH): at the kill, at most two are claimed (it claims
    # the next while sending the last), so rows in flight, rows claimed but not sent and rows
    # never claimed are all left to the next worker.
    count = 3 * BATCH
    await add_contacts(app, count)
    fair = await app.engine.catalogue.fair()
    assert fair is not None
    outbox = Outbox(app.sessions)
    broadcast_id, _ = await outbox.queue_broadcast(fair.id, "all", TEXT, utcnow(), urgent=True)
    env = cli_env(TADAMON_DATABASE_URL=app.settings.database_url,
                  TADAMON_REDIS_URL=str(app.settings.redis_url),
                  TADAMON_TELEGRAM_TOKEN=fake_telegram.token,
                  TADAMON_TELEGRAM_API_BASE=fake_telegram.base_url,
                  TADAMON_TELEGRAM_RATE="100000")
    process = await asyncio.create_subprocess_exec(
        TADAMON, "worker", env=env, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await fake_telegram.wait_for("sendMessage", count=300, timeout=120)
    finally:
        process.kill()
        await process.wait()
    await asyncio.sleep(0.5)  # the requests it wrote before dying are answered
    sent_before = len(fake_telegram.calls_of("sendMessage"))
    recorded = (await outbox.progress(broadcast_id))["sent"]
    assert 300 <= sent_before < count
    assert recorded <= sent_before

    after_the_lease = utcnow() + dt.timedelta(seconds=LEASE + 1)
    await OutboxWorker(app, clock=lambda: after_the_lease).drain()
    per_chat: dict[int | str, int] = {}
    for call in fake_telegram.calls_of("sendMessage"):
        per_chat[call.chat_id] = per_chat.get(call.chat_id, 0) + 1
    assert set(per_chat) == {1000 + index for index in range(count)}  # nobody lost
    duplicated = sum(times - 1 for times in per_chat.values())
    assert duplicated <= sent_before - recorded  # at most what was in flight
    progress = await outbox.progress(broadcast_id)
    assert progress["sent"] == count and progress["pending"] == progress["sending"] == 0


async def test_a_slow_worker_claims_no_more_than_it_can_send_within_the_lease(
    make_outbox_app: OutboxAppFactory, fake_telegram: FakeTelegram,
) -> None:
    """At 2 messages a second and a 20 s lease, a worker claims 10 rows at a time (a quarter
    of what the lease has time for): rows it holds never outlive their lease while waiting."""
    app = await make_outbox_app(telegram_rate=2)
    await add_contacts(app, 25)
    fair = await app.engine.catalogue.fair()
    assert fair is not None
    outbox = Outbox(app.sessions)
    await outbox.queue_broadcast(fair.id, "all", TEXT, utcnow(), urgent=True)
    worker = OutboxWorker(app, lease=20)
    claimed = await outbox.claim(worker.batch, worker.lease)
    assert len(claimed) == 10
    assert OutboxWorker(app, lease=0.1).batch == 1


async def test_broadcast_command_line(make_outbox_app: OutboxAppFactory,
                                      fake_telegram: FakeTelegram, tmp_path: Path) -> None:
    app = await make_outbox_app()
    await add_contacts(app, 3)
    env = cli_env(TADAMON_DATABASE_URL=app.settings.database_url)

    async def run(*args: str) -> tuple[int, str, str]:
        return await run_tadamon(*args, env=env, cwd=tmp_path)

    code, out, err = await run("broadcast", "--audience", "lang:fr", "--text-fr", "Bonjour",
                               "--text-ar", "مرحبا", "--yes")
    assert code == 0, err
    broadcast_id = int(out.strip())
    code, out, _err = await run("broadcast", "status", str(broadcast_id))
    assert code == 0
    assert f"broadcast {broadcast_id}: 0/1 (0%)" in out
    code, _out, err = await run("broadcast", "--audience", "everyone", "--text-fr", "x",
                                "--text-ar", "y", "--yes")
    assert code == 2
    assert err.strip().count("\n") == 0 and "--audience" in err
    await OutboxWorker(app, clock=at_noon).drain()
    code, out, _err = await run("broadcast", "status", str(broadcast_id))
    assert "1/1 (100%) sent 1" in out
    target = tmp_path / "deliveries.csv"
    code, _out, err = await run("export", "deliveries", "--out", str(target))
    assert code == 0, err
    lines = target.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("broadcast_id,channel,user_id,status,sent_at,error")
    assert lines[1].startswith(f"{broadcast_id},telegram,1001,sent,")


async def test_catalogue_reminders_become_outbox_rows_once(
    make_outbox_app: OutboxAppFactory, fake_telegram: FakeTelegram, tmp_path: Path,
) -> None:
    import yaml

    from bot.app import sample_catalogue
    from bot.catalogue import import_catalogue
    from storage.outbox import queue_reminders

    app = await make_outbox_app()
    await add_contacts(app, 2)  # visitors: "all" reminders, not the cooperatives' ones
    now = utcnow()
    added = await queue_reminders(app.sessions, now)
    data = yaml.safe_load(sample_catalogue().read_text(encoding="utf-8"))
    for_all = [item for item in data["reminders"] if item["audience"] == "all"]
    assert added == 2 * len(for_all)
    assert await queue_reminders(app.sessions, now) == 0  # never twice
    await add_contacts(app, 1, start=3000)  # someone new arrives
    assert await queue_reminders(app.sessions, now) == len(for_all)
    # the organizers change one reminder's text and remove another, then import again
    changed, removed = for_all[0], for_all[1]
    changed["text"] = {"fr": "Ouverture avancée à 9:30.", "ar": "الافتتاح على الساعة 9:30."}
    data["reminders"] = [item for item in data["reminders"] if item["id"] != removed["id"]]
    edited = tmp_path / "fair.yaml"
    edited.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    await import_catalogue(app.sessions, edited)
    async with app.sessions() as session:
        rows = list(await session.scalars(select(OutboxMessage)
                                          .where(OutboxMessage.kind == "reminder")))
    texts = {row.payload["text"]["fr"] for row in rows if row.status == OutboxStatus.PENDING}
    assert "Ouverture avancée à 9:30." in texts
    skipped = [row for row in rows if row.status == OutboxStatus.SKIPPED]
    assert len(skipped) == 3
    assert all(row.error == "reminder removed from the catalogue" for row in skipped)
    # when it is time, the worker sends the changed reminder in each person's language
    due = dt.datetime.fromisoformat(str(changed["at"])).replace(tzinfo=CASABLANCA)
    later = (due + dt.timedelta(minutes=1)).astimezone(dt.UTC)
    assert quiet_until(later, CASABLANCA) is None  # the sample's reminders are in the day
    await OutboxWorker(app, clock=lambda: later).drain()
    sent = [call.text for call in fake_telegram.calls_of("sendMessage")]
    assert "Ouverture avancée à 9:30." in sent
    assert "الافتتاح على الساعة 9:30." in sent


async def test_organizer_commands(tmp_path: Path) -> None:
    env = cli_env(TADAMON_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/organizers.db",
                  TADAMON_ORGANIZERS="whatsapp:212600000001")

    async def run(*args: str) -> tuple[int, str, str]:
        return await run_tadamon("organizer", *args, env=env, cwd=tmp_path)

    assert await run("add", "telegram:42") == (0, "telegram:42 is an organizer\n", "")
    code, out, _err = await run("list")
    # the setting is applied when `run` or `worker` starts, not by a one-shot command
    assert out.splitlines() == ["telegram:42\ttadamon organizer add",
                                "whatsapp:212600000001\tTADAMON_ORGANIZERS (from the next start)"]
    assert (await run("remove", "telegram:42"))[0] == 0
    assert (await run("list"))[1].splitlines() == [
        "whatsapp:212600000001\tTADAMON_ORGANIZERS (from the next start)"]
    code, _out, err = await run("add", "fax:1")
    assert code == 2 and "CHANNEL:USER_ID" in err


async def test_coop_codes_command(tmp_path: Path) -> None:
    env = cli_env(TADAMON_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/coops.db",
                  TADAMON_PUBLIC_URL="https://salon.example.ma")

    async def run(*args: str) -> tuple[int, str, str]:
        return await run_tadamon(*args, env=env, cwd=tmp_path)

    from bot.app import sample_catalogue

    assert (await run("import", str(sample_catalogue())))[0] == 0
    code, out, err = await run("coop-codes")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == ("exhibitor_id,name_fr,name_ar,stand,code,telegram_link,"
                        "whatsapp_link,web_link")
    carpets = next(line for line in lines if line.startswith("coop-al-wafae-zarbia,"))
    first_code = carpets.split(",")[4]
    assert carpets.endswith(f",,,https://salon.example.ma/?start=coop_{first_code}")
    again = (await run("coop-codes"))[1]
    assert carpets in again.splitlines()  # codes are stable until revoked
    target = tmp_path / "codes.csv"
    assert (await run("coop-codes", "--revoke", "coop-al-wafae-zarbia", "--out",
                      str(target)))[0] == 0
    renewed = next(line for line in target.read_text(encoding="utf-8").splitlines()
                   if line.startswith("coop-al-wafae-zarbia,"))
    assert renewed.split(",")[4] != first_code
    assert (await run("coop-codes", "--revoke", "no-such-exhibitor"))[0] == 2


async def test_the_organizer_sees_the_progress_edited_then_the_outcome(
    make_outbox_app: OutboxAppFactory, fake_telegram: FakeTelegram,
) -> None:
    app = await make_outbox_app()
    await add_contacts(app, 4)
    organizer = await app.engine.contacts.grant_organizer("telegram", "777", ROLE_BY_COMMAND)
    await app.engine.contacts.set_language(organizer.id, "fr")
    fair = await app.engine.catalogue.fair()
    assert fair is not None
    outbox = Outbox(app.sessions)
    broadcast_id, count = await outbox.queue_broadcast(fair.id, "visitors", TEXT, utcnow(),
                                                       created_by=organizer.id)
    assert count == 4
    worker = OutboxWorker(app, clock=at_noon)
    await worker.report_progress()
    started = fake_telegram.calls_of("sendMessage", 777)
    assert [call.text for call in started] == [
        f"Diffusion {broadcast_id}\u202f: 0 sur 4 envoyés (0\u202f%)."]
    await worker.drain()
    await worker.report_progress()
    edits = fake_telegram.calls_of("editMessageText")
    assert edits[-1].params["message_id"] == started[0].result["message_id"]
    assert edits[-1].params["text"] == (
        f"Diffusion {broadcast_id} terminée\u202f: 4 envoyés, 0 écartés, 0 en échec.")
    await worker.report_progress()  # finished: nothing more is said
    assert len(fake_telegram.calls_of("editMessageText")) == len(edits)


async def test_linked_cooperatives_get_the_setup_and_workshop_reminders(
    make_outbox_app: OutboxAppFactory, fake_telegram: FakeTelegram,
) -> None:
    from storage.cooperatives import CooperativeRepository
    from storage.outbox import queue_reminders

    app = await make_outbox_app()
    member = await app.engine.contacts.arrive("telegram", "888", "fr")
    coops = CooperativeRepository(app.sessions)
    code = next(item.code for item in await coops.codes()
                if item.exhibitor == "coop-al-wafae-zarbia")
    assert await coops.link(member.id, code) is not None
    await add_contacts(app, 2)  # visitors: no cooperative reminders for them
    now = utcnow()
    await queue_reminders(app.sessions, now)
    async with app.sessions() as session:
        rows = list(await session.scalars(select(OutboxMessage).where(
            OutboxMessage.kind.in_(("coop_setup", "coop_workshop")))))
    assert {row.contact_id for row in rows} == {member.id}
    setup = [row for row in rows if row.kind == "coop_setup"]
    assert len(setup) == 1
    assert setup[0].due_at == dt.datetime(2026, 12, 12, 18, 0, tzinfo=CASABLANCA)
    assert len([row for row in rows if row.kind == "coop_workshop"]) == 6
    assert await queue_reminders(app.sessions, now) == 0  # never twice
    eve = dt.datetime(2026, 12, 12, 18, 1, tzinfo=CASABLANCA).astimezone(dt.UTC)
    await OutboxWorker(app, clock=lambda: eve).drain()
    sent = "\n".join(call.text or "" for call in fake_telegram.calls_of("sendMessage", 888))
    assert "Le salon ouvre demain, dimanche 13 décembre, à 10:00." in sent
    assert "Votre stand\u202f: A18, Hall A — Artisanat." in sent
    assert "Installation aujourd'hui de 14:00 à 19:00." in sent


async def test_outbox_messages_keep_the_fairs_own_time_zone(
    make_outbox_app: OutboxAppFactory, fake_telegram: FakeTelegram,
) -> None:
    """TADAMON_TIMEZONE is only a default: the sample fair's record says Africa/Casablanca, so
    reminders show its times and quiet hours end at its 08:00, not Tokyo's."""
    app = await make_outbox_app(timezone="Asia/Tokyo")
    fair = await app.engine.catalogue.fair()
    assert fair is not None and fair.timezone == "Africa/Casablanca"
    (amina,) = await add_contacts(app, 1, language="fr")
    starts = dt.datetime(2026, 12, 13, 10, 0, tzinfo=CASABLANCA)
    async with app.sessions() as session, session.begin():
        workshop = Workshop(fair_id=fair.id, key="tz", title={"fr": "Teinture naturelle"},
                            room={"fr": "Salle 2"}, starts_at=starts,
                            ends_at=starts + dt.timedelta(hours=2), capacity=5,
                            language="fr", audience="all")
        session.add(workshop)
    registered = await app.engine.registrations.register(
        fair.id, amina, workshop.id, dt.datetime(2026, 12, 11, 10, 0, tzinfo=CASABLANCA))
    assert registered.outcome.value == "confirmed"
    # Both reminders are due at 09:01 (the evening before, and the hour before).
    soon = dt.datetime(2026, 12, 13, 9, 1, tzinfo=CASABLANCA).astimezone(dt.UTC)
    assert await OutboxWorker(app, clock=lambda: soon).drain() == 2
    sent = [call.text or "" for call in fake_telegram.calls_of("sendMessage")]
    assert len(sent) == 2 and all("10:00" in text for text in sent), sent
    assert not any("18:00" in text for text in sent)  # 10:00 in Casablanca is 18:00 in Tokyo

    outbox = Outbox(app.sessions)
    night = dt.datetime(2026, 12, 13, 23, 30, tzinfo=CASABLANCA).astimezone(dt.UTC)
    held_id, _ = await outbox.queue_broadcast(fair.id, "all", TEXT, night)
    await OutboxWorker(app, clock=lambda: night).drain()  # 07:30 in Tokyo: quiet there too
    async with app.sessions() as session:
        due = set(await session.scalars(select(OutboxMessage.due_at)
                                        .where(OutboxMessage.broadcast_id == held_id)))
    assert due == {dt.datetime(2026, 12, 14, 8, 0, tzinfo=CASABLANCA)}


async def test_the_worker_keeps_to_its_own_clock(make_outbox_app: OutboxAppFactory) -> None:
    """Years from the machine's time, a message sent is recorded at the worker's time, and one
    that cannot be written is failed at once (its payload does not fit its kind)."""
    app = await make_outbox_app()
    (amina,) = await add_contacts(app, 1)
    fair = await app.engine.catalogue.fair()
    assert fair is not None
    later = dt.datetime(2040, 6, 1, 12, 0, tzinfo=CASABLANCA).astimezone(dt.UTC)
    outbox = Outbox(app.sessions)
    await outbox.queue_broadcast(fair.id, "all", TEXT, later)
    async with app.sessions() as session, session.begin():
        # A reminder whose payload lacks its workshop's start: it cannot be written.
        session.add(OutboxMessage(contact_id=amina, channel="telegram",
                                  kind="workshop_reminder", payload={"soon": True},
                                  due_at=later, idempotency_key="broken"))
    assert await OutboxWorker(app, clock=lambda: later).drain() == 2
    async with app.sessions() as session:
        rows = {row.kind: row for row in await session.scalars(select(OutboxMessage))}
    assert (rows["broadcast"].status, rows["broadcast"].sent_at) == (OutboxStatus.SENT, later)
    broken = rows["workshop_reminder"]
    assert broken.status == OutboxStatus.FAILED and "starts_at" in (broken.error or "")
    assert await OutboxWorker(app, clock=lambda: later + dt.timedelta(seconds=61)).drain() == 0


async def test_a_row_whose_payload_does_not_fit_fails_with_why_and_the_next_goes_out(
    make_outbox_app: OutboxAppFactory, fake_telegram: FakeTelegram,
) -> None:
    """A row queued with a payload its kind does not take (hand-edited, or by a version that
    wrote it otherwise) is failed at once with a clear error; the rows after it are sent."""
    app = await make_outbox_app()
    [amina, karim] = await add_contacts(app, 2)
    title = {"fr": "Emballage des produits du terroir", "ar": "تغليف المنتجات المحلية"}
    early = at_noon() - dt.timedelta(minutes=10)
    rows = [("offer", {"workshop_id": 7, "title": title, "room": title,
                       "starts_at": "2026-12-14T09:30:00+00:00"}),  # no "until"
            ("offer_expired", {"workshop_id": "sept", "title": title}),
            ("broadcast", ["Le salon ouvre à 10:00."]),
            ("postcard", {"text": TEXT}),
            ("offer_expired", {"workshop_id": 7, "title": title})]
    async with app.sessions() as session, session.begin():
        session.add_all([
            OutboxMessage(contact_id=amina if index < 4 else karim, channel="telegram",
                          kind=kind, payload=payload, due_at=early + dt.timedelta(seconds=index),
                          idempotency_key=f"test:{index}")
            for index, (kind, payload) in enumerate(rows)])
    assert await OutboxWorker(app, clock=at_noon).drain() == 5
    async with app.sessions() as session:
        stored = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    assert [(row.status, row.error) for row in stored] == [
        (OutboxStatus.FAILED, "offer payload does not fit: until: Field required"),
        (OutboxStatus.FAILED, "offer_expired payload does not fit: workshop_id: Input should "
                              "be a valid integer, unable to parse string as an integer"),
        (OutboxStatus.FAILED, "broadcast payload does not fit: payload: Input should be a "
                              "dictionary or an instance of BroadcastNotice"),
        (OutboxStatus.FAILED, "unknown message kind 'postcard'"),
        (OutboxStatus.SENT, None),
    ]
    [sent] = fake_telegram.calls_of("sendMessage")
    assert sent.chat_id == 1001 and "Emballage des produits du terroir" in sent.text


@pytest.mark.postgres
async def test_a_broadcast_to_a_workshop_with_the_longest_id_is_queued_and_sent(
    make_outbox_app: OutboxAppFactory, fake_telegram: FakeTelegram,
) -> None:
    """A workshop id may have 100 characters: a broadcast to its registrants is kept (its
    audience no longer overflows the column on PostgreSQL) and reaches them."""
    app = await make_outbox_app(database="postgres")
    [registrant] = await add_contacts(app, 1, language="fr")
    await add_contacts(app, 1, start=2000, language="fr")  # not registered
    key = "atelier-" + "x" * 92
    async with app.sessions() as session, session.begin():
        workshop = await session.scalar(select(Workshop).order_by(Workshop.id).limit(1))
        assert workshop is not None
        workshop.key = key
        session.add(Registration(workshop_id=workshop.id, contact_id=registrant,
                                 status=RegistrationStatus.CONFIRMED))
    fair = await app.engine.catalogue.fair()
    assert fair is not None
    outbox = Outbox(app.sessions)
    broadcast_id, count = await outbox.queue_broadcast(fair.id, f"workshop:{key}", TEXT,
                                                       utcnow())
    assert count == 1
    assert await OutboxWorker(app, clock=at_noon).drain() == 1
    assert [call.chat_id for call in fake_telegram.calls_of("sendMessage")] == [1000]
    assert (await outbox.progress(broadcast_id))["sent"] == 1
