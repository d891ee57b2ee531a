"""Organizer reports: figures from a known data set on SQLite and PostgreSQL, the CSV tables and
PNG charts `tadamon report` writes, and `tadamon export feedback`."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from matplotlib.text import Text
from PIL import Image
from sqlalchemy import select

from bot.app import App
from bot.i18n import Renderer, load_translations
from bot.report import (
    NO_DATA,
    contacts_chart,
    registrations_chart,
    stands_chart,
    summary_chart,
    workshop_ratings_chart,
    write_report,
)
from handlers.figures import figure_lines
from handlers.messages import Msg, _, _n
from storage.models import (
    Contact,
    Exhibitor,
    ExhibitorSurvey,
    Fair,
    Feedback,
    Registration,
    RegistrationStatus,
    Workshop,
)
from storage.questions import QuestionLog
from storage.reports import RatingCounts, ReportRepository, StandRating, rank_stands
from tests.conftest import AppFactory, cli_env, run_tadamon

FAIR = "khouribga-ess-2026"
COMMENT = 'Très bien, "super" accueil — ممتاز'


def utc(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 12, day, hour, minute, tzinfo=dt.UTC)


# Casablanca is UTC+1 in December: two of these people arrive just after a local midnight.
CONTACTS = [  # channel, user id, language, created
    ("telegram", "101", "fr", utc(13, 9)),
    ("telegram", "102", "ar", utc(13, 15)),
    ("whatsapp", "212600000003", "ar", utc(13, 23, 30)),  # the 14th, 00:30 local
    ("whatsapp", "212600000004", "fr", utc(14, 10)),
    ("telegram", "105", None, utc(14, 12)),
    ("whatsapp", "212600000006", "ar", utc(12, 23, 10)),  # the 13th, 00:10 local
]
FEEDBACK = [  # who (index in CONTACTS), target kind, target key, rating, comment
    (0, "fair", FAIR, 5, COMMENT),
    (1, "fair", FAIR, 4, None),
    (2, "fair", FAIR, 4, "   "),
    (3, "fair", FAIR, 2, "Trop de bruit"),
    (4, "fair", FAIR, None, "Pas de note"),
    (0, "workshop", "coop-finance-1", 5, None),
    (1, "workshop", "coop-finance-1", 5, None),
    (2, "workshop", "coop-finance-1", 4, None),
    (3, "workshop", "marketing-1", 3, None),
    (5, "workshop", "marketing-1", 1, None),
    (0, "stand", "A1", 5, None),
    (1, "stand", "A1", 4, None),
    (2, "stand", "A1", 4, None),
    (3, "stand", "A1", 5, None),
    (4, "stand", "A2", 5, None),
    (0, "stand", "A3", 2, None),
    (1, "stand", "A3", 3, None),
    (5, "stand", "A3", 1, None),
    (2, "stand", "A9", 5, None),
    (3, "stand", "A9", 4, None),
    (4, "stand", "A10", 4, None),
    (5, "stand", "A10", 5, None),
]
REGISTRATIONS = [  # who, workshop key, status
    (0, "coop-finance-1", RegistrationStatus.CONFIRMED),
    (1, "coop-finance-1", RegistrationStatus.CONFIRMED),
    (2, "coop-finance-1", RegistrationStatus.CONFIRMED),
    (3, "coop-finance-1", RegistrationStatus.WAITLISTED),
    (4, "coop-finance-1", RegistrationStatus.CANCELLED),
    (0, "marketing-1", RegistrationStatus.CONFIRMED),
    (5, "marketing-1", RegistrationStatus.OFFERED),
    (1, "marketing-1", RegistrationStatus.CANCELLED),
]
PNGS = ["fair_ratings.png", "workshop_ratings.png", "stand_ratings.png",
        "workshop_registrations.png", "contacts_per_day.png"]
CSVS = ["key_figures.csv", "fair_ratings.csv", "workshop_ratings.csv", "stand_ratings.csv",
        "workshop_registrations.csv", "contacts_by_channel.csv", "contacts_by_language.csv",
        "exhibitor_survey.csv", "intents.csv", "questions.csv"]


async def seed(app: App) -> None:
    """The data set above, on the sample fair."""
    async with app.sessions() as session, session.begin():
        fair = (await session.scalars(select(Fair).where(Fair.key == FAIR))).one()
        workshops = {row.key: row.id for row in await session.scalars(
            select(Workshop).where(Workshop.fair_id == fair.id))}
        contacts = [Contact(channel=channel, user_id=user_id, language=language,
                            created_at=created)
                    for channel, user_id, language, created in CONTACTS]
        session.add_all(contacts)
        await session.flush()
        session.add_all(
            Feedback(fair_id=fair.id, contact_id=contacts[who].id, target_kind=kind,
                     target_key=key, rating=rating, comment=comment,
                     language=contacts[who].language or "fr",
                     created_at=utc(15, 10) + dt.timedelta(minutes=index))
            for index, (who, kind, key, rating, comment) in enumerate(FEEDBACK))
        session.add_all(
            Registration(workshop_id=workshops[key], contact_id=contacts[who].id, status=status,
                         position=1 if status is RegistrationStatus.WAITLISTED else None)
            for who, key, status in REGISTRATIONS)
        tifawin = (await session.scalars(select(Exhibitor).where(
            Exhibitor.fair_id == fair.id, Exhibitor.key == "coop-tifawin"))).one()
        session.add_all([
            ExhibitorSurvey(fair_id=fair.id, contact_id=contacts[2].id,
                            exhibitor_id=tifawin.id, satisfaction=4, come_again=True,
                            sales_band="2k-10k", comment="Merci, à l'an prochain",
                            language="fr"),
            ExhibitorSurvey(fair_id=fair.id, contact_id=contacts[3].id,
                            exhibitor_id=tifawin.id, satisfaction=1, come_again=False,
                            language="ar"),
        ])


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def assert_png(path: Path) -> None:
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert 600 <= width <= 2000 and 300 <= height <= 2000, (path.name, image.size)


def texts(figure: Any) -> list[str]:
    """Every text a chart shows (tick labels exist once it is laid out)."""
    figure.draw_without_rendering()
    return [item.get_text() for item in figure.findobj(Text)]


def french(renderer: Renderer, msg: Msg) -> str:
    return renderer.message(msg, "fr")


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres",
                                                             marks=pytest.mark.postgres)])
async def test_the_figures_of_a_known_data_set(make_app: AppFactory, database: str) -> None:
    app = await make_app(database=database, redis="fake")
    await seed(app)
    found = await ReportRepository(app.sessions).report()
    assert found is not None

    figures = found.figures
    assert (figures.contacts, dict(figures.contacts_by_channel)) == (
        6, {"telegram": 3, "whatsapp": 3})
    assert (figures.fair_ratings, figures.fair_average) == (4, 3.75)
    assert (figures.confirmed_registrations, figures.comments) == (4, 3)
    assert found.fair_ratings == RatingCounts((0, 1, 0, 2, 1))

    by_key = {item.key: item.ratings for item in found.workshop_ratings}
    assert by_key["coop-finance-1"] == RatingCounts((0, 0, 0, 1, 2))
    assert by_key["marketing-1"] == RatingCounts((1, 0, 1, 0, 0))
    assert by_key["governance-2"] == RatingCounts()
    assert by_key["coop-finance-1"].average == pytest.approx(14 / 3)

    # Ties at 4.5: more ratings first, then A9 before A10.
    assert [(stand.number, stand.count, stand.average) for stand in found.stands] == [
        ("A2", 1, 5.0), ("A1", 4, 4.5), ("A9", 2, 4.5), ("A10", 2, 4.5), ("A3", 3, 2.0)]
    assert [stand.number for stand in rank_stands(found.stands, best_first=False)] == [
        "A3", "A1", "A9", "A10", "A2"]
    # A2 holds two cooperatives: the first by catalogue id names it, as on its stand card.
    assert found.stands[0].name["fr"] == "Coopérative Al Ajyal de poterie"

    fill = {item.key: item for item in found.workshops}
    finance = fill["coop-finance-1"]
    assert (finance.capacity, finance.confirmed, finance.waitlisted, finance.offered,
            finance.cancelled, finance.fill_rate) == (40, 3, 1, 0, 1, 0.075)
    marketing = fill["marketing-1"]
    assert (marketing.confirmed, marketing.offered, marketing.cancelled,
            marketing.fill_rate) == (1, 1, 1, 0.02)

    day13, day14 = dt.date(2026, 12, 13), dt.date(2026, 12, 14)
    assert found.contacts_by_channel.rows() == [
        (day13, "telegram", 2), (day13, "whatsapp", 1),
        (day14, "telegram", 1), (day14, "whatsapp", 2)]
    assert found.contacts_by_language.rows() == [
        (day13, "ar", 2), (day13, "fr", 1),
        (day14, "ar", 1), (day14, "fr", 1), (day14, "unknown", 1)]

    fair = await app.engine.catalogue.fair()
    assert fair is not None
    ranked = await ReportRepository(app.sessions).stand_ratings(fair.id, min_ratings=2)
    assert [stand.number for stand in ranked] == ["A1", "A9", "A10", "A3"]


async def test_the_report_folder_holds_the_tables_and_charts(make_app: AppFactory,
                                                             tmp_path: Path) -> None:
    app = await make_app(redis="fake")
    await seed(app)
    found = await ReportRepository(app.sessions).report()
    assert found is not None
    progress: list[tuple[int, int]] = []

    written = write_report(found, tmp_path, app.renderer, lambda *step: progress.append(step))

    assert [path.name for path in written] == CSVS + PNGS
    assert progress[-1] == (15, 15)
    figures = {row["figure"]: row["value"] for row in read_csv(tmp_path / "key_figures.csv")}
    assert figures == {"contacts": "6", "contacts_telegram": "3", "contacts_whatsapp": "3",
                       "fair_ratings": "4", "fair_average": "3.75",
                       "confirmed_registrations": "4", "comments": "3",
                       "survey_answers": "2", "survey_satisfaction_average": "2.5",
                       "survey_come_again": "1", "survey_not_again": "1"}
    survey = read_csv(tmp_path / "exhibitor_survey.csv")
    assert [(row["exhibitor_id"], row["stand"], row["satisfaction"], row["come_again"],
             row["sales_band"], row["comment"], row["language"]) for row in survey] == [
        ("coop-tifawin", "A10", "4", "yes", "2k-10k", "Merci, à l'an prochain", "fr"),
        ("coop-tifawin", "A10", "1", "no", "", "", "ar")]
    assert [(row["rating"], row["count"]) for row in read_csv(tmp_path / "fair_ratings.csv")
            ] == [("1", "0"), ("2", "1"), ("3", "0"), ("4", "2"), ("5", "1")]
    workshops = {row["workshop_id"]: row for row in read_csv(tmp_path / "workshop_ratings.csv")}
    assert len(workshops) == 16
    assert {key: workshops["coop-finance-1"][key] for key in (
        "ratings", "average", "rating_4", "rating_5", "starts_at")} == {
        "ratings": "3", "average": "4.6667", "rating_4": "1", "rating_5": "2",
        "starts_at": "2026-12-13T10:00+01:00"}
    assert workshops["governance-2"]["average"] == ""
    stands = read_csv(tmp_path / "stand_ratings.csv")
    assert [(row["rank"], row["stand"], row["ratings"], row["average"]) for row in stands] == [
        ("1", "A2", "1", "5.0"), ("2", "A1", "4", "4.5"), ("3", "A9", "2", "4.5"),
        ("4", "A10", "2", "4.5"), ("5", "A3", "3", "2.0")]
    assert stands[1]["name_fr"] == "Coopérative Al Hirafi"
    assert stands[1]["name_ar"] == "تعاونية الحرفي"
    fill = {row["workshop_id"]: row for row in read_csv(tmp_path / "workshop_registrations.csv")}
    assert {key: fill["coop-finance-1"][key] for key in (
        "capacity", "confirmed", "offered", "waitlisted", "cancelled", "fill_rate")} == {
        "capacity": "40", "confirmed": "3", "offered": "0", "waitlisted": "1",
        "cancelled": "1", "fill_rate": "0.075"}
    assert fill["marketing-1"]["fill_rate"] == "0.02"
    assert read_csv(tmp_path / "contacts_by_channel.csv") == [
        {"day": "2026-12-13", "channel": "telegram", "contacts": "2"},
        {"day": "2026-12-13", "channel": "whatsapp", "contacts": "1"},
        {"day": "2026-12-14", "channel": "telegram", "contacts": "1"},
        {"day": "2026-12-14", "channel": "whatsapp", "contacts": "2"}]
    assert [row["language"] for row in read_csv(tmp_path / "contacts_by_language.csv")] == [
        "ar", "fr", "ar", "fr", "unknown"]
    for name in PNGS:
        assert_png(tmp_path / name)


async def test_charts_label_in_french_and_show_every_workshop(make_app: AppFactory) -> None:
    app = await make_app(redis="fake")
    await seed(app)
    found = await ReportRepository(app.sessions).report()
    assert found is not None

    def fr(msg: Msg) -> str:
        return french(app.renderer, msg)

    labels = texts(workshop_ratings_chart(found.workshop_ratings, fr, app.renderer.zone))
    assert "13/12 10:00 · Gestion financière d'une coopérative" in labels
    assert len({label for label in labels if "/12 " in label}) == 16
    stand_labels = texts(stands_chart(found.stands, fr))
    assert "A1 · Coopérative Al Hirafi" in stand_labels
    assert fr(_n("{average} ({n} rating)", "{average} ({n} ratings)", 4, average="4,5")
              ) in stand_labels
    assert french(app.renderer, NO_DATA) not in texts(
        registrations_chart(found.workshops, fr, app.renderer.zone))
    lines = [app.renderer.message(line, "en") for line in figure_lines(found.figures)]
    assert lines[0] == "6 contacts (Telegram 3, WhatsApp 3)"
    assert lines[1] == "Rating of the fair: 3.8 out of 5 (4 ratings)"


def test_many_stands_show_the_ten_best_and_the_ten_worst() -> None:
    renderer = Renderer(load_translations(), ZoneInfo("Africa/Casablanca"))

    def fr(msg: Msg) -> str:
        return french(renderer, msg)

    stands = rank_stands(StandRating(f"B{number}", {"fr": f"Coopérative {number}"}, 2,
                                     2 + number % 9) for number in range(1, 26))
    shown = texts(stands_chart(stands, fr))

    assert fr(_("Best rated stands")) in shown and fr(_("Lowest rated stands")) in shown
    bars = [label for label in dict.fromkeys(shown) if " · " in label]
    assert bars[:3] == ["B8 · Coopérative 8", "B17 · Coopérative 17", "B7 · Coopérative 7"]
    assert bars[10:13] == ["B9 · Coopérative 9", "B18 · Coopérative 18", "B1 · Coopérative 1"]
    assert len(bars) == 20


async def test_an_empty_fair_gives_empty_tables_and_charts_saying_so(
        make_app: AppFactory, tmp_path: Path) -> None:
    app = await make_app(redis="fake")
    found = await ReportRepository(app.sessions).report()
    assert found is not None
    assert (found.figures.contacts, found.figures.fair_average, found.stands) == (0, None, ())

    write_report(found, tmp_path, app.renderer)

    for name in PNGS:
        assert_png(tmp_path / name)
    assert read_csv(tmp_path / "stand_ratings.csv") == []
    assert read_csv(tmp_path / "contacts_by_channel.csv") == []
    assert {row["figure"]: row["value"] for row in read_csv(tmp_path / "key_figures.csv")}[
        "fair_average"] == ""
    no_data = french(app.renderer, NO_DATA)

    def fr(msg: Msg) -> str:
        return french(app.renderer, msg)

    zone = app.renderer.zone
    assert no_data in texts(workshop_ratings_chart(found.workshop_ratings, fr, zone))
    assert no_data in texts(stands_chart((), fr))
    assert texts(contacts_chart(found.contacts_by_channel, found.contacts_by_language, fr)
                 ).count(no_data) == 2
    assert no_data in texts(registrations_chart((), fr, zone))
    with Image.open(io.BytesIO(summary_chart(RatingCounts(), (), app.renderer))) as image:
        assert image.format == "PNG"


async def test_the_summary_chart_is_a_png(make_app: AppFactory) -> None:
    app = await make_app(redis="fake")
    await seed(app)
    found = await ReportRepository(app.sessions).report()
    assert found is not None

    png = summary_chart(found.fair_ratings, found.workshops, app.renderer)

    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        assert image.size[0] >= 1000 and image.size[1] >= 450


async def test_report_and_export_feedback_commands(make_app: AppFactory,
                                                   tmp_path: Path) -> None:
    app = await make_app(redis="fake")
    await seed(app)
    env = cli_env(TADAMON_DATABASE_URL=app.settings.database_url)

    code, out, err = await run_tadamon("report", "--out", "out/report", env=env, cwd=tmp_path)

    assert code == 0, err
    assert f"report of {FAIR}: 15 files written to out/report" in out
    assert "  contacts_per_day.png" in out
    assert "6 contacts (Telegram 3, WhatsApp 3)" in out
    assert "4 confirmed registrations" in out
    assert sorted(path.name for path in (tmp_path / "out/report").iterdir()) == sorted(
        CSVS + PNGS)
    for name in PNGS:
        assert_png(tmp_path / "out/report" / name)

    code, out, err = await run_tadamon("export", "feedback", "--out", "feedback.csv", env=env,
                                       cwd=tmp_path)

    assert (code, out.strip()) == (0, f"{len(FEEDBACK)} feedback written to feedback.csv"), err
    with (tmp_path / "feedback.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames is not None
        assert reader.fieldnames[:8] == ["target_kind", "target_id", "rating", "comment",
                                         "language", "channel", "user_id", "created_at"]
        rows = list(reader)
    assert len(rows) == len(FEEDBACK)
    first = rows[0]
    assert {key: first[key] for key in reader.fieldnames[:8]} == {
        "target_kind": "fair", "target_id": FAIR, "rating": "5", "comment": COMMENT,
        "language": "fr", "channel": "telegram", "user_id": "101",
        "created_at": "2026-12-15T10:00:00+00:00"}
    assert first["target_name_fr"].startswith("Salon provincial")
    assert (rows[4]["rating"], rows[4]["comment"], rows[4]["language"]) == (
        "", "Pas de note", "fr")
    workshop = rows[5]
    assert (workshop["target_kind"], workshop["target_id"], workshop["target_name_fr"]) == (
        "workshop", "coop-finance-1", "Gestion financière d'une coopérative")
    stand = next(row for row in rows if row["target_id"] == "A9")
    assert (stand["channel"], stand["user_id"], stand["target_name_fr"]) == (
        "whatsapp", "212600000003", "Coopérative Assafae de vannerie")

    code, out, err = await run_tadamon("export", "contacts", "--out", "contacts.csv", env=env,
                                       cwd=tmp_path)
    assert (code, out.strip()) == (0, "6 contacts written to contacts.csv"), err
    with (tmp_path / "contacts.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames is not None
        assert reader.fieldnames[:6] == ["channel", "user_id", "language", "role", "opted_out",
                                         "created_at"]
        contacts = list(reader)
    assert sorted((row["channel"], row["user_id"]) for row in contacts)[:2] == [
        ("telegram", "101"), ("telegram", "102")]
    assert {row["role"] for row in contacts} <= {"visitor", "cooperative", "organizer"}
    assert {row["opted_out"] for row in contacts} <= {"true", "false"}


async def test_report_refuses_a_file_and_a_database_without_fair(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("not a folder")
    env = cli_env(TADAMON_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/empty.db")

    code, _out, err = await run_tadamon("report", "--out", "taken", env=env, cwd=tmp_path)
    assert (code, err.strip()) == (2, "tadamon: --out taken: a file, not a folder")

    code, _out, err = await run_tadamon("report", "--out", "report", env=env, cwd=tmp_path)
    assert (code, err.strip()) == (
        2, "tadamon: no fair is loaded: import a catalogue first (tadamon import PATH)")
    assert not (tmp_path / "report").exists()



async def test_report_writes_what_people_asked(make_app: AppFactory, tmp_path: Path) -> None:
    app = await make_app(redis="fake")
    fair = await app.engine.catalogue.fair()
    assert fair is not None
    log = QuestionLog(app.sessions)
    first, second = dt.date(2026, 12, 13), dt.date(2026, 12, 14)
    for day, channel, language, intent, question, at in [
        (first, "telegram", "fr", "workshops", None, utc(13, 9)),
        (first, "telegram", "fr", "workshops", None, utc(13, 9, 5)),
        (first, "whatsapp", "ar", "info", None, utc(13, 10)),
        (first, "web", "fr", "unknown", "Y a-t-il le WIFI ?", utc(13, 10, 30)),
        (first, "whatsapp", "ar", "unknown", "=1+1 combien ça coûte", utc(13, 11)),
        (second, "web", "fr", "unknown", "y a t il le wifi", utc(14, 9)),
        (second, "telegram", "fr", "unknown", "y a-t-il le wifi?", utc(14, 17, 45)),
        (second, "whatsapp", "fr", "unknown", "rappelez moi au 0612345678", utc(14, 12)),
    ]:
        await log.record(fair.id, day, channel, language, intent, question, now=at)
    await log.flush()  # the counts of understood texts are written a moment later
    env = cli_env(TADAMON_DATABASE_URL=app.settings.database_url)

    code, out, err = await run_tadamon("report", "--out", "report", env=env, cwd=tmp_path)

    assert code == 0, err
    assert "  intents.csv" in out and "  questions.csv" in out
    assert read_csv(tmp_path / "report" / "intents.csv") == [
        {"day": "2026-12-13", "channel": "telegram", "language": "fr", "intent": "workshops",
         "messages": "2"},
        {"day": "2026-12-13", "channel": "web", "language": "fr", "intent": "unknown",
         "messages": "1"},
        {"day": "2026-12-13", "channel": "whatsapp", "language": "ar", "intent": "info",
         "messages": "1"},
        {"day": "2026-12-13", "channel": "whatsapp", "language": "ar", "intent": "unknown",
         "messages": "1"},
        {"day": "2026-12-14", "channel": "telegram", "language": "fr", "intent": "unknown",
         "messages": "1"},
        {"day": "2026-12-14", "channel": "web", "language": "fr", "intent": "unknown",
         "messages": "1"},
        {"day": "2026-12-14", "channel": "whatsapp", "language": "fr", "intent": "unknown",
         "messages": "1"},
    ]
    questions = (tmp_path / "report" / "questions.csv").read_text(encoding="utf-8")
    assert "0612345678" not in questions
    # most frequent first, times in the fair's time zone (UTC+1 in December)
    assert read_csv(tmp_path / "report" / "questions.csv") == [
        {"question": "y a t il le wifi", "count": "3", "first_seen": "2026-12-13T11:30+01:00",
         "last_seen": "2026-12-14T18:45+01:00"},
        {"question": "rappelez moi au <number>", "count": "1",
         "first_seen": "2026-12-14T13:00+01:00", "last_seen": "2026-12-14T13:00+01:00"},
        {"question": "1 1 combien ca coute", "count": "1",
         "first_seen": "2026-12-13T12:00+01:00", "last_seen": "2026-12-13T12:00+01:00"},
    ]
