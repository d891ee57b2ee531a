"""Organizers' `/stats`: its words and its chart give the same figures, a phone's screen of
lines at a time with "More" for the rest, and chart titles that fit."""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text

from bot.i18n import Renderer, load_translations
from bot.report import (
    contacts_chart,
    fair_ratings_chart,
    registrations_chart,
    stands_chart,
    summary_figure,
    workshop_ratings_chart,
)
from handlers.figures import workshop_lines
from handlers.messages import Msg
from storage.reports import RatingCounts, ReportRepository, WorkshopFill
from tests.conftest import AppFactory
from tests.platforms import TelegramFactory
from tests.test_report import seed

CASABLANCA = dt.timezone(dt.timedelta(hours=1))
BOSS, KARIM, AMINA = 3001, 3002, 3003


def fill(key: str, capacity: int, confirmed: int, offered: int = 0,
         waitlisted: int = 0) -> WorkshopFill:
    return WorkshopFill(key=key, title={"fr": f"Atelier {key}", "ar": f"ورشة {key}"},
                        starts_at=dt.datetime(2026, 12, 13, 9, tzinfo=dt.UTC),
                        capacity=capacity, confirmed=confirmed, offered=offered,
                        waitlisted=waitlisted, cancelled=0)


def chart_texts(figure: Any) -> list[str]:
    figure.draw_without_rendering()
    return [item.get_text() for item in figure.findobj(Text)]


def test_the_text_and_the_chart_count_the_same_seats() -> None:
    """29 confirmed and 1 seat offered to the waiting list, of 30: full, in both."""
    renderer = Renderer(load_translations(), CASABLANCA)
    rates = [fill("a", 30, 29, offered=1, waitlisted=2), fill("b", 30, 29)]
    lines = [renderer.text(line, "fr") for line in workshop_lines(rates, CASABLANCA)]
    assert lines[2] == ("13/12 10:00 · Atelier a\u202f: 30 sur 30 (100\u202f%), 2 en attente")
    assert lines[3] == ("13/12 10:00 · Atelier b\u202f: 29 sur 30 (96\u202f%), 0 en attente")
    assert lines[1].startswith("En tout")
    assert "59" in lines[1] and "60" in lines[1] and "98" in lines[1]
    arabic = [renderer.text(line, "ar") for line in workshop_lines(rates, CASABLANCA)]
    assert "\u206830\u2069 من \u206830\u2069 (\u2068100\u2069%)" in arabic[2]
    shown = chart_texts(summary_figure(RatingCounts((0, 0, 0, 1, 2)), rates, renderer))
    assert "100\u00a0%" in shown and "96\u00a0%" in shown
    assert "97\u00a0%" not in shown


async def test_chart_titles_fit_in_their_pictures(make_app: AppFactory) -> None:
    app = await make_app(redis="fake")
    await seed(app)
    found = await ReportRepository(app.sessions).report()
    assert found is not None

    def fr(msg: Msg) -> str:
        return app.renderer.message(msg, "fr")

    zone = app.renderer.zone
    drawn = [fair_ratings_chart(found.fair_ratings, fr),
             workshop_ratings_chart(found.workshop_ratings, fr, zone),
             stands_chart(found.stands, fr),
             registrations_chart(found.workshops, fr, zone),
             contacts_chart(found.contacts_by_channel, found.contacts_by_language, fr),
             summary_figure(found.fair_ratings, found.workshops, app.renderer)]
    titles = []
    for figure in drawn:
        renderer = FigureCanvasAgg(figure).get_renderer()
        figure.draw(renderer)
        shown = {axes.get_title(loc="left") for axes in figure.get_axes()} - {""}
        titles.extend(shown)
        for text in figure.findobj(Text):
            if text.get_text() in shown:
                box = text.get_window_extent(renderer)
                assert box.x0 >= -0.5 and box.x1 <= figure.bbox.x1 + 0.5, text.get_text()
    assert "Places prises, en\u202f% de la capacité" in titles


async def test_stats_show_a_phones_screen_then_more(make_telegram: TelegramFactory) -> None:
    tg = await make_telegram(organizers=f"telegram:{BOSS},telegram:{KARIM}")
    await tg.say(BOSS, "bonjour")
    await tg.tap(BOSS, "Français")

    first = html.unescape(await tg.say(BOSS, "/stats"))

    lines = first.splitlines()
    assert len(lines) == 15, lines
    assert "contact" in lines[0]
    assert "Ateliers, places prises" in first
    assert tg.labels(BOSS)[0] == "Suite"
    photos = tg.fake.calls_of("sendPhoto", BOSS)
    assert len(photos) == 1
    more = html.unescape(await tg.tap(BOSS, "Suite"))
    assert more.splitlines()[0] == "Chiffres, page 2 sur 2\u202f:"
    assert "16/12 15:30 · Bonne gouvernance\u202f: 0 sur " in more
    assert "Suite" not in tg.labels(BOSS)
    assert len(tg.fake.calls_of("sendPhoto", BOSS)) == 1  # the chart once, with the first page

    # someone who is not an organizer taps a copy of the button: not valid, no figures
    await tg.say(AMINA, "bonjour")
    await tg.tap(AMINA, "Français")
    before = len(tg.fake.calls_of("sendMessage", AMINA))
    await tg.fake.tap(AMINA, "stats:1", message_id=1)
    answer = "\n".join(await tg.settle(AMINA, before))
    assert "places prises" not in answer and "Chiffres" not in answer

    await tg.say(KARIM, "السلام عليكم")
    await tg.tap(KARIM, "العربية")
    arabic = html.unescape(await tg.say(KARIM, "إحصائيات"))
    assert len(arabic.splitlines()) == 15
    assert "الورشات، المقاعد المحجوزة:" in arabic
    assert tg.labels(KARIM)[0] == "المزيد"
    more = html.unescape(await tg.tap(KARIM, "المزيد"))
    assert more.splitlines()[0] == "الأرقام، الصفحة \u20682\u2069 من \u20682\u2069:"
    assert "في الانتظار: \u20680\u2069" in more
