"""The console's Today page: real traffic through the web chat, Telegram's and WhatsApp's
inbound messages, then what the organizer sees (contacts per channel and language, messages per
minute, intents, what was not understood, workshops' seats, ratings) and what is stored (one
count per message, buttons included; two writes add up)."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from sqlalchemy import select

from bot.app import App
from handlers.messages import Inbound, Kind
from storage.catalogue import cancel_workshop
from storage.models import Workshop, utcnow
from storage.questions import QuestionLog
from storage.today import TodayRepository
from tests.conftest import AppFactory, ChatFactory
from tests.console import ConsoleFactory

pytestmark = pytest.mark.timeout(180)

GIBBERISH = "blorf quux zzzt"


def section(page: str, name: str) -> str:
    """The inside of `<section id="name">`, its character references read."""
    found = re.search(rf'<section id="{name}"[^>]*data-refreshable[^>]*>(.*?)</section>', page,
                      re.S)
    assert found is not None, f"no section #{name} in the page"
    return html.unescape(found.group(1))


def rows(part: str, attribute: str) -> dict[str, list[str]]:
    """The cells' texts of each `<tr data-ATTRIBUTE="key">`, tags left out."""
    found: dict[str, list[str]] = {}
    for key, row in re.findall(rf'<tr data-{attribute}="([^"]+)"[^>]*>(.*?)</tr>', part, re.S):
        cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
        found[key] = [re.sub(r"[ \t\n]+", " ", html.unescape(re.sub(r"<[^>]+>", " ", cell)))
                      .strip() for cell in cells]
    return found


def figure(part: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">([^<]*)<', part)
    assert found is not None, f"no #{element_id}"
    return found.group(1)


async def inbound(app: App, channel: str, user: str, text: str, message_id: str) -> str | None:
    """A text from Telegram or WhatsApp, as their adapters hand it to the engine."""
    answer = await app.engine.answer(Inbound(channel, user, Kind.TEXT, text,
                                             message_id=message_id))
    return None if answer.intent is None else answer.intent.value


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_today_shows_the_day_s_traffic_seats_and_ratings(
        make_console: ConsoleFactory, make_chat: ChatFactory, database: str) -> None:
    console = await make_console(database=database, web_sessions_per_minute=100_000)
    app = console.app
    now = utcnow()
    app.engine.clock = lambda: now
    minute = now.replace(second=0, microsecond=0)
    chat = await make_chat(app)

    # The web chat: a sentence in each language, buttons, a registration and a rating.
    assert (await chat("amina", "je voudrais voir le programme des ateliers")).body[
        "intent"] == "workshops"
    await chat.tap("amina", "dimanche 13 décembre")
    assert (await chat("amina", GIBBERISH)).body["intent"] == "unknown"
    await chat("amina", "/start ws_marketing-1")
    assert "Inscription confirmée" in (await chat.tap("amina", "S'inscrire")).text
    assert (await chat("karim", "فين كاين المرحاض؟")).body["intent"] == "info"
    await chat("karim", "تقييم")
    assert "★★★★★" in chat.last("karim").labels
    await chat.tap("karim", "★★★★★")
    await chat("karim", "/start stand_A18")
    await chat.tap("karim", "تقييم هذا الرواق")
    await chat.tap("karim", "★★★★")
    assert (await chat("youssef", "fin kayn l3sel")).lang == "ar"
    assert (await chat("john", "where are the toilets?")).body["intent"] == "info"
    # Telegram and WhatsApp; a redelivered update is not a second message.
    assert await inbound(app, "telegram", "1001", "where are the toilets?", "t1") == "info"
    assert await inbound(app, "telegram", "1001", "where are the toilets?", "t1") is None
    assert await inbound(app, "whatsapp", "212600000001", "فين كاين المرحاض؟", "w1") == "info"
    assert await inbound(app, "whatsapp", "212600000001", "fin kayn l3sel", "w2") == "stands"
    await app.engine.flush_statistics()

    fair = await TodayRepository(app.sessions).fair()
    assert fair is not None
    # One count per message handled, buttons and start links included, in its language.
    assert await TodayRepository(app.sessions).traffic_rows(fair.id) == [
        (minute, "telegram", "en", 1), (minute, "web", "ar", 7), (minute, "web", "en", 1),
        (minute, "web", "fr", 5), (minute, "whatsapp", "ar", 2)]

    status, page = await console.get("/admin/")
    assert status == 200
    assert ' data-refresh="15"' in page and "style=" not in page
    contacts = section(page, "contacts")
    assert figure(contacts, "contacts-total") == "6"
    assert "6 nouveaux aujourd'hui" in contacts
    assert rows(contacts, "channel") == {"web": ["Chat web", "4", "4"],
                                         "telegram": ["Telegram", "1", "1"],
                                         "whatsapp": ["WhatsApp", "1", "1"]}
    assert rows(contacts, "language") == {"ar": ["Arabe", "3", "3"], "en": ["Anglais", "2", "2"],
                                          "fr": ["Français", "1", "1"]}

    traffic = section(page, "traffic")
    assert figure(traffic, "traffic-minute") == "16"
    assert figure(traffic, "traffic-hour") == "16"
    assert "<svg" in traffic and traffic.count('<rect class="channel-') >= 3
    assert "16 messages dans la dernière heure" in traffic
    legend = dict(re.findall(r'<li data-channel="(\w+)">.*?class="count">(\d+)<', traffic, re.S))
    assert legend == {"telegram": "1", "web": "13", "whatsapp": "2"}

    intents = rows(section(page, "intents"), "intent")
    assert {key: cells[1] for key, cells in intents.items()} == {
        "info": "4", "workshops": "1", "stands": "2", "unknown": "1"}
    assert intents["info"][0] == "Infos pratiques"
    assert intents["unknown"][0] == "Pas compris"

    questions = section(page, "questions")
    assert "<bdi>blorf quux zzzt</bdi>" in questions
    assert re.search(r'<td class="number">1</td>', questions)

    seats = rows(section(page, "fill"), "workshop")
    assert seats["marketing-1"][0] == "Techniques de marketing"
    assert seats["marketing-1"][2:] == ["1 sur 50", "2\u00a0%", "0", "0"]
    assert seats["coop-finance-1"][2] == "0 sur 40"
    # The soonest first.
    assert list(seats)[:2] == ["coop-finance-1", "marketing-1"]

    ratings = section(page, "ratings")
    assert "5 sur 5" in ratings and "1 note" in ratings
    [stand] = rows(ratings, "stand").values()
    assert stand[1:] == ["4", "1"] and stand[0].startswith("A18 · ")


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_two_writes_of_the_counts_add_up(make_app: AppFactory, database: str) -> None:
    app = await make_app(database=database)
    fair = await TodayRepository(app.sessions).fair()
    assert fair is not None
    log = QuestionLog(app.sessions)
    now = dt.datetime(2026, 12, 13, 10, 15, 42, tzinfo=dt.UTC)
    minute = now.replace(second=0)
    day = dt.date(2026, 12, 13)
    for _ in range(2):
        log.count_message(fair.id, "telegram", "ar", now)
    log.count_message(fair.id, "web", None, now)
    await log.record(fair.id, day, "telegram", "ar", "info", None, now)
    await log.flush()
    log.count_message(fair.id, "telegram", "ar", now + dt.timedelta(seconds=10))
    log.count_message(fair.id, "telegram", "ar", now + dt.timedelta(minutes=1))
    await log.record(fair.id, day, "telegram", "ar", "info", None, now)
    await log.flush()
    today = TodayRepository(app.sessions)
    assert await today.traffic_rows(fair.id) == [
        (minute, "telegram", "ar", 3), (minute, "web", "", 1),
        (minute + dt.timedelta(minutes=1), "telegram", "ar", 1)]
    [counted] = await log.intent_counts(fair.id, day)
    assert (counted.intent, counted.messages) == ("info", 2)
    assert await log.intent_counts(fair.id, day + dt.timedelta(days=1)) == []
    traffic = await today.traffic(fair.id, now + dt.timedelta(minutes=1), minutes=3)
    assert traffic.series == {"telegram": (0, 3, 1), "web": (0, 1, 0)}
    assert (traffic.last_minute, traffic.total) == (1, 5)


async def test_the_empty_day_says_so_and_a_cancelled_workshop_is_marked(
        make_console: ConsoleFactory) -> None:
    console = await make_console()
    app = console.app
    async with app.sessions() as session, session.begin():
        workshop = await session.scalar(select(Workshop).where(Workshop.key == "marketing-1"))
        assert workshop is not None
        await cancel_workshop(session, workshop)
    status, page = await console.get("/admin/")
    assert status == 200
    assert "Aucun contact pour l'instant." in section(page, "contacts")
    assert "Aucun message dans la dernière heure." in section(page, "traffic")
    assert "<svg" not in section(page, "traffic")
    assert "Aucun message aujourd'hui pour l'instant." in section(page, "intents")
    assert "Aucune question sans réponse aujourd'hui." in section(page, "questions")
    assert "Aucune note pour l'instant." in section(page, "ratings")
    fill = section(page, "fill")
    assert '<tr data-workshop="marketing-1" class="cancelled">' in fill
    assert rows(fill, "workshop")["marketing-1"][0] == "Techniques de marketing Annulé"


async def test_viewers_see_it_the_signed_out_are_sent_to_sign_in_and_arabic_is_rtl(
        make_console: ConsoleFactory, make_chat: ChatFactory) -> None:
    viewer = await make_console(login="look@fair.ma", role="viewer")
    chat = await make_chat(viewer.app)
    await chat("karim", "فين كاين المرحاض؟")
    await viewer.app.engine.flush_statistics()
    status, page = await viewer.get("/admin/")
    assert status == 200 and "lecteur" in page
    for name in ("contacts", "traffic", "intents", "questions", "fill", "ratings"):
        section(page, name)

    status, page = await viewer.get("/admin/language/ar?next=/admin/")
    assert status == 200 and 'dir="rtl"' in page and 'lang="ar"' in page
    assert "الرسائل في الدقيقة" in page and "ما كتبه الناس اليوم" in page
    contacts = section(page, "contacts")
    assert rows(contacts, "language")["ar"] == ["العربية", "1", "1"]
    assert "الجدد اليوم: \u20681\u2069" in contacts
    assert "\u200f\u20680\u2069 من \u206850\u2069" in section(page, "fill")
    # The chart runs right to left, as the page does.
    assert 'transform="translate(600 0) scale(-1 1)"' in section(page, "traffic")

    status, page = await viewer.get("/admin/language/en?next=/admin/")
    assert status == 200 and "Messages per minute" in page and "1 new today" in page

    stranger = await make_console(app=viewer.app, login=None)
    response = await stranger.client.get("/admin/", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith("/admin/login")


async def test_without_a_fair_the_page_says_so(make_console: ConsoleFactory) -> None:
    console = await make_console(sample=False)
    status, page = await console.get("/admin/")
    assert status == 200
    assert "Aucun salon n'est encore chargé" in html.unescape(page)
    assert 'href="/admin/catalogue"' in page
