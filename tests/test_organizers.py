"""Organizers: Telegram or WhatsApp identities only, given by the setting (applied at each start)
or the command line, and refused at once when `tadamon organizer remove` takes the role back."""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.app import App
from storage.models import Broadcast, Contact, Role
from storage.questions import QuestionLog
from tests.conftest import AppFactory, cli_env, run_tadamon
from tests.platforms import TelegramChat, TelegramFactory, WhatsAppFactory

AMINA, KARIM, BOSS = 1001, 1002, 1003
NOW = dt.datetime(2026, 12, 11, 10, 0, tzinfo=ZoneInfo("Africa/Casablanca"))


async def organizer(app: App, *args: str, cwd: Path, **settings: str) -> tuple[int, str, str]:
    """`tadamon organizer ARGS` against the app's own database, as an operator runs it."""
    env = cli_env(TADAMON_DATABASE_URL=app.settings.database_url, **settings)
    return await run_tadamon("organizer", *args, env=env, cwd=cwd)


async def french(tg: TelegramChat, user: int) -> None:
    await tg.say(user, "bonjour")
    await tg.tap(user, "Français")




async def test_a_broadcast_text_longer_than_a_template_holds_is_refused_with_the_limit(
    make_telegram: TelegramFactory,
) -> None:
    tg = await make_telegram(organizers=f"telegram:{BOSS}")
    await french(tg, BOSS)
    await tg.say(BOSS, "/broadcast")
    refused = await tg.say(BOSS, "Le salon ferme à 20:00. " * 50)  # 1,200 characters
    assert "Le texte doit compter entre 1 et 1000 caractères." in refused
    # longer than any chat message is read (2,000): the same answer, not "too long"
    assert "entre 1 et 1000 caractères" in await tg.say(BOSS, "Fermeture. " * 300)
    assert "texte en arabe" in await tg.say(BOSS, "Le salon ferme à 20:00.")
    refused = await tg.say(BOSS, "يغلق المعرض على الساعة 20:00. " * 40)
    assert "texte en arabe" not in refused and "1000" in refused

    await tg.say(KARIM, "السلام عليكم")
    await tg.tap(KARIM, "العربية")
    await tg.app.engine.contacts.grant_organizer("telegram", str(KARIM), "cli")
    await tg.say(KARIM, "/broadcast")
    arabic = await tg.say(KARIM, "x" * 1001)
    assert "يجب أن يتراوح النص بين حرف واحد و" in arabic and "1000" in arabic


async def test_organizer_remove_takes_effect_at_once_on_telegram(
    make_telegram: TelegramFactory, tmp_path: Path,
) -> None:
    tg = await make_telegram(organizers=f"telegram:{BOSS}")
    await french(tg, BOSS)
    assert "Écrivez le texte en français" in await tg.say(BOSS, "/broadcast")
    await tg.say(BOSS, "Le salon ferme à 20:00.")
    await tg.say(BOSS, "يغلق المعرض على الساعة 20:00.")
    assert "Tout le monde" in tg.labels(BOSS)

    code, out, err = await organizer(tg.app, "remove", f"telegram:{BOSS}", cwd=tmp_path,
                                     TADAMON_ORGANIZERS=f"telegram:{BOSS}")
    assert (code, out) == (0, f"telegram:{BOSS} is no longer an organizer\n"), err
    assert err == (f"tadamon: TADAMON_ORGANIZERS still lists telegram:{BOSS}: they will be an "
                   "organizer again at the next start unless it is taken out there\n")

    # the next step of the broadcast is a stale button; /stats an unknown command
    assert "Ce bouton n'est plus valable" in await tg.tap(BOSS, "Tout le monde")
    stats = await tg.say(BOSS, "/stats")
    assert "je n'ai pas compris" in stats and "places prises" not in stats
    assert "je n'ai pas compris" in await tg.say(BOSS, "/broadcast")
    async with tg.app.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Broadcast)) == 0
    # the conversation's copy of the person is corrected, and the broadcast forgotten
    session_state = await tg.app.state.load_session("telegram", str(BOSS))
    assert session_state["contact"]["role"] == Role.VISITOR
    assert "flow" not in session_state

    # added back on the command line: at once too
    assert (await organizer(tg.app, "add", f"telegram:{BOSS}", cwd=tmp_path))[0] == 0
    assert "Écrivez le texte en français" in await tg.say(BOSS, "/broadcast")


async def test_organizer_remove_takes_effect_at_once_on_whatsapp(
    make_whatsapp: WhatsAppFactory, tmp_path: Path,
) -> None:
    boss = "212600000103"
    wa = await make_whatsapp(organizers=f"whatsapp:{boss}")
    await wa.say(boss, "bonjour")
    await wa.tap(boss, "Français")
    assert "Ateliers, places prises" in await wa.say(boss, "statistiques")
    assert "Écrivez le texte en français" in await wa.say(boss, "diffusion")
    code, _out, err = await organizer(wa.app, "remove", f"whatsapp:{boss}", cwd=tmp_path)
    assert code == 0, err
    # the French text is no longer taken as a broadcast's, and "statistiques" is not a word
    assert "texte en arabe" not in await wa.say(boss, "Le salon ferme à 20:00.")
    assert "places prises" not in await wa.say(boss, "statistiques")


async def test_leaving_the_setting_takes_the_role_back_at_the_next_start(
    make_app: AppFactory, tmp_path: Path,
) -> None:
    first = await make_app(organizers=f"telegram:{BOSS},whatsapp:212600000103")
    url = first.settings.database_url
    assert (await organizer(first, "add", f"telegram:{KARIM}", cwd=tmp_path))[0] == 0
    listed = await organizer(first, "list", cwd=tmp_path)
    assert listed[1].splitlines() == [
        f"telegram:{KARIM}\ttadamon organizer add",
        f"telegram:{BOSS}\tTADAMON_ORGANIZERS (no longer listed here: taken back at the next "
        "start)",
        "whatsapp:212600000103\tTADAMON_ORGANIZERS (no longer listed here: taken back at the "
        "next start)",
    ]
    # the next start lists the WhatsApp organizer only
    second = await make_app(database_url=url, organizers="whatsapp:212600000103")
    roles = {(contact.channel, contact.user_id): source
             for contact, source in await second.engine.contacts.organizers()}
    assert roles == {("telegram", str(KARIM)): "cli", ("whatsapp", "212600000103"): "setting"}
    boss = await second.engine.contacts.get("telegram", str(BOSS))
    assert boss is not None and boss.role is Role.VISITOR


async def test_a_listed_organizer_is_welcomed_at_their_first_message(
    make_telegram: TelegramFactory,
) -> None:
    """The setting made their contact at start-up: their first message is still a first."""
    tg = await make_telegram(organizers=f"telegram:{BOSS}")
    welcome = await tg.say(BOSS, "/start")
    assert "Bienvenue à «\u202fSalon provincial" in welcome
    assert tg.labels(BOSS) == ["العربية", "Français", "English"]


async def test_web_chat_sessions_cannot_be_organizers(make_app: AppFactory,
                                                      tmp_path: Path) -> None:
    app = await make_app()
    for action in ("add", "remove"):
        code, out, err = await organizer(app, action, "web:session-boss", cwd=tmp_path)
        assert (code, out) == (2, "")
        assert err.splitlines() == [
            "tadamon: 'web:session-boss': a web chat session cannot be an organizer (anyone "
            "can open one); use telegram:USER_ID or whatsapp:USER_ID"]
    code, _out, err = await organizer(app, "add", "telegram:@boss", cwd=tmp_path)
    assert code == 2 and err == "tadamon: 'telegram:@boss': a Telegram user id is a whole number\n"
    async with app.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Contact)) == 0



async def test_stats_show_the_days_most_frequent_questions_not_understood(
    make_telegram: TelegramFactory,
) -> None:
    tg = await make_telegram(organizers=f"telegram:{BOSS}")
    # 00:30 on the fair's 14 December is still the 13th in UTC: the fair's day counts
    today = dt.datetime(2026, 12, 14, 0, 30, tzinfo=ZoneInfo("Africa/Casablanca"))
    tg.app.engine.clock = lambda: today
    await french(tg, BOSS)
    assert "Questions non comprises aujourd'hui\u202f: aucune pour l'instant." in await tg.say(
        BOSS, "/stats")

    fair = await tg.app.engine.catalogue.fair()
    assert fair is not None
    log = QuestionLog(tg.app.sessions)
    for channel, language, question in [
        ("whatsapp", "ar", "Wach kayn WIFI f salon ?"),
        ("web", "fr", "Où est la garderie pour les enfants ?"),
        ("telegram", "ar", "wach kayn wifi f salon"),
        ("web", "fr", "où est la garderie pour les enfants"),
        ("whatsapp", "ar", "wach kayn wifi f salon, 3ayto liya 0612345678"),
        ("web", "fr", "Wach kayn wifi f salon"),
    ]:
        await log.record(fair.id, dt.date(2026, 12, 14), channel, language, "unknown", question)
    await log.record(fair.id, dt.date(2026, 12, 13), "web", "fr", "unknown", "hier soir ?")

    stats = await tg.say(BOSS, "/stats")

    lines = html.unescape(stats).splitlines()  # Telegram HTML: <number> travels as &lt;...
    header = lines.index("Questions non comprises aujourd'hui, les plus fréquentes d'abord\u202f:")
    assert lines[header + 1:header + 4] == [
        "«\u202fwach kayn wifi f salon\u202f» (3\u00a0fois)",
        "«\u202fou est la garderie pour les enfants\u202f» (2\u00a0fois)",
        "«\u202fwach kayn wifi f salon 3ayto liya <number>\u202f» (1\u00a0fois)",
    ]
    assert "hier soir" not in stats and "0612345678" not in stats
    assert "Ateliers, places prises" in stats
