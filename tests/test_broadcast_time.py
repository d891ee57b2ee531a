"""When a broadcast goes out, as organizers type it in French, Arabic, Darija or English, and the
chat's whole broadcast flow to a workshop's registrants; the command line's preview."""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.app import sample_catalogue
from handlers.moments import Unread, read_moment
from storage.models import Broadcast
from storage.registrations import Outcome
from tests import commands
from tests.conftest import cli_env
from tests.platforms import TelegramFactory

CASABLANCA = ZoneInfo("Africa/Casablanca")
# Saturday 12 December 2026, 17:05 at the fair, the eve of its opening.
NOW = dt.datetime(2026, 12, 12, 17, 5, tzinfo=CASABLANCA)
BOSS, AMINA, KARIM = 2001, 2002, 2003


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A moment of December 2026 at the fair, in UTC as the parser gives it."""
    return dt.datetime(2026, 12, day, hour, minute, tzinfo=CASABLANCA).astimezone(dt.UTC)


@pytest.mark.parametrize(("written", "expected"), [
    # French
    ("demain 9h", at(13, 9)),
    ("Demain à 9h30", at(13, 9, 30)),
    ("13/12 9h", at(13, 9)),
    ("13/12/2026 09h00", at(13, 9)),
    ("13.12 à 10h", at(13, 10)),
    ("13 décembre à 9h", at(13, 9)),
    ("aujourd'hui 18h", at(12, 18)),
    ("aujourd’hui à 18h30", at(12, 18, 30)),
    ("après-demain 10h", at(14, 10)),
    ("14 déc 8h du soir", at(14, 20)),
    ("18h", at(12, 18)),
    ("2026-12-13 09:00", at(13, 9)),
    ("2026-12-13T09:00", at(13, 9)),
    ("maintenant", NOW.astimezone(dt.UTC)),
    ("Maintenant !", NOW.astimezone(dt.UTC)),
    # Arabic, with Latin or Arabic-Indic digits
    ("غدا 9", at(13, 9)),
    ("غداً على الساعة 9", at(13, 9)),
    ("غدا 9:30", at(13, 9, 30)),
    ("اليوم 18:00", at(12, 18)),
    ("بعد غد 10", at(14, 10)),
    ("١٣/١٢ ٩:٠٠", at(13, 9)),
    ("13 دجنبر 9:30", at(13, 9, 30)),
    ("غدا 6 مساء", at(13, 18)),
    ("الآن", NOW.astimezone(dt.UTC)),
    ("دابا", NOW.astimezone(dt.UTC)),
    # Darija in Latin letters
    ("ghda 9", at(13, 9)),
    ("ghda f 9", at(13, 9)),
    ("ghedda 10h", at(13, 10)),
    ("lyoum 18h", at(12, 18)),
    ("ba3d ghda 10", at(14, 10)),
    ("daba", NOW.astimezone(dt.UTC)),
    # English
    ("tomorrow 9am", at(13, 9)),
    ("tomorrow at 6 pm", at(13, 18)),
    ("today 18:00", at(12, 18)),
    ("now", NOW.astimezone(dt.UTC)),
    # typed during the very minute it names: now
    ("17h05", NOW.astimezone(dt.UTC)),
])
def test_a_time_as_organizers_type_it_is_read_in_the_fairs_zone(
    written: str, expected: dt.datetime,
) -> None:
    assert read_moment(written, NOW, CASABLANCA) == expected


@pytest.mark.parametrize(("written", "why"), [
    ("12/12 8h", Unread.PAST),
    ("14h30", Unread.PAST),
    ("aujourd'hui 9h", Unread.PAST),
    ("اليوم 9", Unread.PAST),
    ("lyoum 9h", Unread.PAST),
    ("2026-12-01 09:00", Unread.PAST),
    ("demain", Unread.UNREADABLE),
    ("غدا", Unread.UNREADABLE),
    ("n'importe quand", Unread.UNREADABLE),
    ("31/02 9h", Unread.UNREADABLE),
    ("demain 25h", Unread.UNREADABLE),
    ("demain 9h61", Unread.UNREADABLE),
    ("demain 9h réunion", Unread.UNREADABLE),
    ("", Unread.UNREADABLE),
])
def test_a_time_gone_by_or_unreadable_is_not_a_moment(written: str, why: Unread) -> None:
    assert read_moment(written, NOW, CASABLANCA) is why


def test_a_time_is_read_in_the_fairs_zone_not_the_servers() -> None:
    tokyo = dt.datetime(2026, 12, 13, 1, 5, tzinfo=ZoneInfo("Asia/Tokyo"))  # = NOW
    assert read_moment("demain 9h", tokyo, CASABLANCA) == at(13, 9)


async def test_an_organizer_broadcasts_to_a_workshops_registrants_for_tomorrow_9(
    make_telegram: TelegramFactory,
) -> None:
    tg = await make_telegram(organizers=f"telegram:{BOSS},telegram:{KARIM}")
    tg.app.engine.clock = lambda: NOW
    await tg.say(AMINA, "bonjour")
    await tg.tap(AMINA, "Français")
    fair = await tg.app.engine.catalogue.fair()
    assert fair is not None
    workshops = sorted(await tg.app.engine.catalogue.workshops(fair.id),
                       key=lambda workshop: (workshop.starts_at, workshop.id))
    first = next(workshop for workshop in workshops if workshop.audience == "all")
    amina = await tg.app.engine.contacts.get("telegram", str(AMINA))
    assert amina is not None
    registered = await tg.app.engine.registrations.register(fair.id, amina.id, first.id, NOW)
    assert registered.outcome is Outcome.CONFIRMED

    await tg.say(BOSS, "bonjour")
    await tg.tap(BOSS, "Français")
    await tg.say(BOSS, "/broadcast")
    await tg.say(BOSS, "La salle 1 change : rendez-vous en salle 2.")
    await tg.say(BOSS, "تغيير القاعة: الموعد في القاعة 2.")
    assert "Inscrits à un atelier" in tg.labels(BOSS)
    choose = await tg.tap(BOSS, "Inscrits à un atelier")
    assert "Quel atelier\u202f? Ses inscrits, et sa liste d'attente, recevront l'annonce." in (
        choose)
    label = next(label for label in tg.labels(BOSS) if first.title["fr"] in label)
    assert label == f"{first.starts_at.astimezone(CASABLANCA):%d/%m %H:%M} · {first.title['fr']}"
    assert "Suite" in tg.labels(BOSS)  # the sample fair has more than one page of them
    when = await tg.tap(BOSS, label)
    assert "demain 9h, 13/12 9h, aujourd'hui 18h" in when

    unread = await tg.say(BOSS, "n'importe quand")
    assert ("Je n'ai pas compris l'heure «\u202fn'importe quand\u202f». Écrivez par exemple"
            "\u202f: demain 9h, 13/12 9h, 14h30, ou touchez «\u202fMaintenant\u202f»."
            in html.unescape(unread))
    past = await tg.say(BOSS, "aujourd'hui 9h")
    assert ("Ce moment est déjà passé\u202f: nous sommes samedi 12 décembre, 17:05. Écrivez "
            "une heure à venir" in past)

    preview = html.unescape(await tg.say(BOSS, "demain 9h"))
    assert f"Inscrits à l'atelier «\u202f{first.title['fr']}\u202f»" in preview
    assert ": 1 personne, dimanche 13 décembre, 09:00." in preview.replace("\u00a0", " ")
    await tg.tap(BOSS, "Envoyer")
    async with tg.app.sessions() as session:
        [broadcast] = (await session.scalars(select(Broadcast))).all()
    assert broadcast.audience == f"workshop:{first.key}"
    assert broadcast.scheduled_at.replace(tzinfo=dt.UTC) == at(13, 9)

    # in Arabic, with Darija and Arabic times
    await tg.say(KARIM, "السلام عليكم")
    await tg.tap(KARIM, "العربية")
    await tg.say(KARIM, "/broadcast")
    await tg.say(KARIM, "Fermeture à 20h.")
    await tg.say(KARIM, "يغلق المعرض على الساعة 20:00.")
    await tg.tap(KARIM, "المسجلون في ورشة")
    await tg.tap(KARIM, next(label for label in tg.labels(KARIM)
                             if first.title["ar"] in label))
    unread = await tg.say(KARIM, "شي وقت")
    assert "لم أفهم الموعد «شي وقت». اكتب مثلًا: غدًا \u20689:00\u2069" in html.unescape(unread)
    assert "قد مضى، فنحن الآن" in await tg.say(KARIM, "lyoum 9h")
    preview = html.unescape(await tg.say(KARIM, "غدا 9"))
    assert f"المسجلون في ورشة «{first.title['ar']}»" in preview
    assert "\u206809:00\u2069" in preview


def test_the_command_line_preview_shows_the_fairs_local_time(tmp_path: Path) -> None:
    env = cli_env(TADAMON_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/x.db")
    run = commands.run("import", sample_catalogue(), env=env, cwd=tmp_path, timeout=60)
    assert run.returncode == 0, run.stderr
    day = dt.datetime.now(CASABLANCA).date() + dt.timedelta(days=2)
    done = commands.run(
        "broadcast", "--audience", "all", "--at", f"{day:%Y-%m-%d}T09:00",
        "--text-fr", "Le salon ouvre à 9:00.", "--text-ar", "يفتح المعرض على الساعة 9:00.",
        env=env, cwd=tmp_path, given=b"n\n", timeout=60)
    stdout, stderr = done.text()
    assert done.returncode == 1, stderr
    assert stdout.startswith(
        f"audience all: 0 recipients, at {day:%Y-%m-%d} 09:00 (Africa/Casablanca)\n")
