"""Exports to share (`tadamon export NAME --anonymous`) and the report name no one: people on
Telegram, WhatsApp and the web chat register, rate and comment (with their phone number and
e-mail address in the comment), a broadcast reaches them (one send fails with an error that
quotes the number); the anonymous files hold a stable pseudonym in place of each id and no id,
number, address or name anywhere; the plain files are the ones organizers always had."""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import App
from bot.channels.telegram import TelegramChannel
from bot.channels.whatsapp import WhatsAppChannel
from bot.csvfiles import EXPORTS
from bot.http import make_web_app
from bot.worker import OutboxWorker
from storage.models import utcnow
from storage.outbox import Outbox
from storage.privacy import Pseudonyms
from storage.questions import redact
from tests.conftest import AppFactory, Chat, cli_env, run_tadamon
from tests.fakes.telegram import FakeTelegram
from tests.fakes.whatsapp import FakeWhatsApp
from tests.platforms import TelegramChat, WhatsAppChat
from tests.servers import free_port

pytestmark = pytest.mark.timeout(240)

CASABLANCA = ZoneInfo("Africa/Casablanca")
FAIR_TIME = dt.datetime(2026, 12, 13, 11, 0, tzinfo=CASABLANCA)
AMINA = 7001001  # Telegram
KARIM = "212612345678"  # WhatsApp wa_ids
FATIMA = "212661234567"
EMAIL = "amina.benali@gmail.com"
AMINA_SAYS = f"Très bien organisé ! Appelez-moi au 06 12 34 56 78 ou écrivez à {EMAIL}"
KARIM_SAYS = "الزرابي زوينة بزاف، عيطو ليا ٠٦١٢٣٤٥٦٧٨"
JOHN_SAYS = "Great workshop, my name is John Smith, text me on +212 6 61 23 45 67"
TEXT = {"fr": "Le salon ouvre à 10:00.", "ar": "يفتح المعرض على الساعة 10:00."}


@dataclass
class Fair:
    app: App
    telegram: TelegramChat
    whatsapp: WhatsAppChat
    web: Chat


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def fair(request: pytest.FixtureRequest, make_app: AppFactory) -> AsyncIterator[Fair]:
    """The sample fair with Telegram (polling) and WhatsApp (webhooks) on the fakes and the
    web chat, on SQLite or PostgreSQL; its clock on the fair's first morning."""
    async with FakeTelegram() as telegram, FakeWhatsApp() as whatsapp:
        app = await make_app(
            database=request.param,
            telegram_token=telegram.token, telegram_api_base=telegram.base_url,
            telegram_rate=1000, whatsapp_token=whatsapp.token,
            whatsapp_phone_number_id=whatsapp.phone_number_id,
            whatsapp_app_secret=whatsapp.app_secret,
            whatsapp_verify_token=whatsapp.verify_token, whatsapp_api_base=whatsapp.base_url,
            whatsapp_rate=1000, quiet_hours=None, web_sessions_per_minute=100_000)
        app.engine.clock = lambda: FAIR_TIME
        client: TestClient[Any, Any] = TestClient(
            TestServer(make_web_app(app), port=free_port()))
        await client.start_server()
        await app.start_channels()
        channels = {type(channel): channel for channel in app.channels}
        tg_channel, wa_channel = channels[TelegramChannel], channels[WhatsAppChannel]
        assert isinstance(tg_channel, TelegramChannel)
        assert isinstance(wa_channel, WhatsAppChannel)
        await telegram.wait_for("getUpdates")
        base = f"http://127.0.0.1:{client.server.port}"
        try:
            yield Fair(app, TelegramChat(telegram, app, tg_channel, base),
                       WhatsAppChat(whatsapp, app, wa_channel, f"{base}/whatsapp/webhook"),
                       Chat(client, app))
        finally:
            await app.stop_channels()
            await client.close()


async def people_write(fair: Fair) -> dict[str, tuple[str, str]]:
    """Four people register, rate and comment, in French, Arabic, Darija and English; a
    broadcast reaches them, and fails for Fatima. Returns each person's (channel, id) by name."""
    tg, wa, web = fair.telegram, fair.whatsapp, fair.web

    await tg.say(AMINA, "Bonjour, je voudrais m'inscrire à un atelier", language_code="fr")
    await tg.say(AMINA, "/start ws_legal-framework-1", language_code="fr")
    assert "Inscription confirmée" in await tg.tap(AMINA, "S'inscrire")
    await tg.say(AMINA, "/feedback")
    await tg.tap(AMINA, "★★★★")
    assert "commentaire a été enregistré" in await tg.say(AMINA, AMINA_SAYS)

    await wa.say(KARIM, "السلام عليكم")
    await wa.tap(KARIM, "العربية")
    await wa.say(KARIM, "/start ws_financing-1")
    assert "تم تسجيلك" in await wa.tap(KARIM, "التسجيل")
    await wa.say(KARIM, "STAND A18")
    await wa.tap(KARIM, "تقييم هذا الرواق")
    await wa.tap(KARIM, "★★★★★")
    assert "تم تسجيل تعليقك" in await wa.say(KARIM, KARIM_SAYS)

    await wa.say(FATIMA, "salam, fin kayn stand A12 3afak?")

    await web("john", "hello, which workshops are there today?")
    await web("john", "/start ws_valorisation-1")
    assert "You are registered" in (await web.tap("john", "Register")).text
    await web("john", "/start feedback")
    await web.tap("john", "★★★★★")
    assert "comment" in (await web("john", JOHN_SAYS)).text

    # A broadcast to everyone: Fatima's number is refused, and the error quotes it.
    wa.fake.fail(131030, to=FATIMA, times=10,
                 details=f"Recipient phone number +{FATIMA} not in allowed list")
    fair_row = await fair.app.engine.catalogue.fair()
    assert fair_row is not None
    # Sent now: WhatsApp's 24-hour window runs from the platform's time of their messages.
    _id, count = await Outbox(fair.app.sessions).queue_broadcast(
        fair_row.id, "all", TEXT, utcnow())
    assert count == 4
    await OutboxWorker(fair.app).drain()
    return {"amina": ("telegram", str(AMINA)), "karim": ("whatsapp", KARIM),
            "fatima": ("whatsapp", FATIMA), "john": ("web", web.user_id("john"))}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def make_folders(root: Path, *names: str) -> None:
    for name in names:
        (root / name).mkdir()


async def export(app: App, folder: Path, name: str, *options: str) -> list[dict[str, str]]:
    env = cli_env(TADAMON_DATABASE_URL=app.settings.database_url)
    code, out, err = await run_tadamon("export", name, "--out", f"{name}.csv", *options,
                                       env=env, cwd=folder)
    assert code == 0, err
    assert out.startswith(tuple("0123456789")) and f"written to {name}.csv" in out
    return read_csv(folder / f"{name}.csv")


def assert_names_no_one(cells: list[str], ids: list[str], where: str) -> None:
    """No cell holds a person's id, nor a number of theirs in any form (+212 6 12..., 06 12...),
    nor the e-mail address or the name they gave."""
    numbers = [person_id[-9:] for person_id in ids if person_id.isdigit() and len(person_id) > 9]
    for value in cells:
        digits = re.sub(r"\D", "", value)
        for person_id in ids:
            assert person_id not in value, (where, value)
        for number in [*numbers, "612345678", "661234567"]:
            assert number not in digits, (where, value)
        for private in (EMAIL, "gmail", "Smith", "John"):
            assert private not in value, (where, value)


async def test_anonymous_exports_name_no_one_and_keep_one_pseudonym_per_person(
        fair: Fair, tmp_path: Path) -> None:
    people = await people_write(fair)
    ids = [person_id for _channel, person_id in people.values()]
    pseudonym = await Pseudonyms.of(fair.app.sessions)
    expected = {person: pseudonym(channel, person_id)
                for person, (channel, person_id) in people.items()}
    assert all(re.fullmatch(r"p-[0-9a-f]{16}", value) for value in expected.values())
    assert len(set(expected.values())) == len(people)  # a pseudonym each

    seen: dict[str, set[str]] = {}
    make_folders(tmp_path, "plain", "first", "second")
    for name, export_def in EXPORTS.items():
        plain = await export(fair.app, tmp_path / "plain", name)
        anonymous = await export(fair.app, tmp_path / "first", name, "--anonymous")
        again = await export(fair.app, tmp_path / "second", name, "--anonymous")
        assert anonymous and list(anonymous[0]) == list(export_def.columns), name
        # The same file in two runs: every pseudonym is stable.
        assert (tmp_path / "first" / f"{name}.csv").read_bytes() == (
            tmp_path / "second" / f"{name}.csv").read_bytes(), name
        assert again == anonymous
        assert_names_no_one([value for row in anonymous for value in row.values()], ids, name)
        # Row by row the plain file, with the person's pseudonym in place of their id and
        # free texts cleaned; the plain file names people as it always did.
        assert len(plain) == len(anonymous), name
        for plain_row, row in zip(plain, anonymous, strict=True):
            assert row["user_id"] == pseudonym(plain_row["channel"], plain_row["user_id"])
            assert plain_row["user_id"] in ids
            for column in export_def.columns:
                if column not in ("user_id", *export_def.free_texts):
                    assert row[column] == plain_row[column], (name, column)
            seen.setdefault(name, set()).add(row["user_id"])

    # Every person under one pseudonym in every file.
    assert seen["contacts"] == set(expected.values())
    assert seen["deliveries"] == set(expected.values())
    assert seen["registrations"] == {expected["amina"], expected["karim"], expected["john"]}
    assert seen["feedback"] == {expected["amina"], expected["karim"], expected["john"]}

    by_person = {row["user_id"]: row for row in read_csv(tmp_path / "first" / "feedback.csv")}
    assert by_person[expected["amina"]]["comment"] == (
        "Très bien organisé ! Appelez-moi au <number> ou écrivez à <email>")
    assert by_person[expected["karim"]]["comment"] == "الزرابي زوينة بزاف، عيطو ليا <number>"
    assert by_person[expected["john"]]["comment"] == (
        "Great workshop, my name is <name> text me on <number>")
    assert by_person[expected["amina"]]["rating"] == "4"
    plain_feedback = (tmp_path / "plain" / "feedback.csv").read_text(encoding="utf-8")
    assert EMAIL in plain_feedback and "06 12 34 56 78" in plain_feedback

    deliveries = read_csv(tmp_path / "first" / "deliveries.csv")
    [refused] = [row for row in deliveries if row["user_id"] == expected["fatima"]]
    assert refused["status"] == "failed" and "<number>" in refused["error"]
    assert FATIMA in {row["user_id"] for row in read_csv(tmp_path / "plain" / "deliveries.csv")}


async def test_the_report_names_no_one(fair: Fair, tmp_path: Path) -> None:
    people = await people_write(fair)
    ids = [person_id for _channel, person_id in people.values()]
    env = cli_env(TADAMON_DATABASE_URL=fair.app.settings.database_url)
    code, _out, err = await run_tadamon("report", "--out", "report", env=env, cwd=tmp_path)
    assert code == 0, err
    tables = sorted((tmp_path / "report").glob("*.csv"))
    assert len(tables) >= 8
    for table in tables:
        with table.open(encoding="utf-8", newline="") as handle:
            cells = [value for row in csv.reader(handle) for value in row]
        assert_names_no_one(cells, ids, table.name)
    # The figures are all there: four contacts, three registrations, three comments.
    figures = {row["figure"]: row["value"]
               for row in read_csv(tmp_path / "report" / "key_figures.csv")}
    assert (figures["contacts"], figures["confirmed_registrations"], figures["comments"]) == (
        "4", "3", "3")
    for chart in (tmp_path / "report").glob("*.png"):
        data = chart.read_bytes()
        assert all(person_id.encode() not in data for person_id in ids), chart.name


@pytest.mark.parametrize(("written", "shared"), [
    ("Appelez-moi au 06 12 34 56 78 svp", "Appelez-moi au <number> svp"),
    ("mon numéro : +212 6-12-34-56-78 !", "mon numéro : <number> !"),
    ("رقمي ٠٦١٢٣٤٥٦٧٨ عافاك", "رقمي <number> عافاك"),
    ("tel 06\u200e12\u200e34\u200e56\u200e78 merci", "tel <number> merci"),
    ("06,12,34,56,78 dispo", "<number> dispo"),
    (f"Écrivez à {EMAIL} ou @karim_77", "Écrivez à <email> ou <user>"),
    ("Je m'appelle Amina Benali et j'ai adoré", "Je m'appelle <name> et j'ai adoré"),
    ("smiti Youssef, bghit ntsjl", "smiti <name> ntsjl"),
    ("اسمي فاطمة الزهراء، شكرا", "اسمي <name> شكرا"),
    ("Stand A12, 2 ateliers à 10h30 : TRÈS bien !", "Stand A12, 2 ateliers à 10h30 : TRÈS bien !"),
    ("=HYPERLINK(\"x\")", "=HYPERLINK(\"x\")"),
    ("", ""),
])
def test_a_shared_text_is_the_written_one_without_numbers_addresses_or_names(
        written: str, shared: str) -> None:
    assert redact(written) == shared
