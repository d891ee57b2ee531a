"""Today: the fair at a glance, refreshed by itself: contacts, messages per minute, what people
asked and what was not understood, workshops' seats and the ratings."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from aiohttp import web
from babel.dates import format_date, format_time

from bot.console.core import Page, _, requires
from bot.i18n import BABEL_LOCALES
from storage.console import ConsoleRole
from storage.reports import ReportRepository
from storage.today import TodayRepository, Traffic, day_start

REFRESH_SECONDS = 15
TRAFFIC_MINUTES = 60
TOP_QUESTIONS = 10
TOP_STANDS = 5

LANGUAGES = {"ar": _("Arabic"), "fr": _("French"), "en": _("English"),
             "unknown": _("Not chosen yet")}
# What each intent (CONTRACT, section Intents) reads as for an organizer.
INTENTS = {
    "welcome": _("Welcome"), "menu": _("Main menu"), "language": _("Language change"),
    "help": _("Help"),
    "info": _("Practical information"), "smalltalk": _("Small talk"),
    "workshops": _("Workshop programme"), "workshop": _("One workshop"),
    "my_workshops": _("My workshops"), "stands": _("Stands"), "stand": _("One stand"),
    "my_list": _("My list of stands"), "feedback": _("Feedback"), "stop": _("Stop messages"),
    "privacy": _("Privacy"), "cooperative": _("Cooperatives"), "organizer": _("Organizers"),
    "unknown": _("Not understood"),
}

# The chart's drawing box (SVG user units); the stylesheet scales it to the page's width.
CHART_WIDTH = 600
CHART_HEIGHT = 160
CHART_TOP = 8


@dataclass(frozen=True, slots=True)
class Bar:
    """One rectangle of the messages-per-minute chart: one channel's part of one minute."""

    x: float
    y: float
    width: float
    height: float
    channel: str
    label: str


def _ceiling(value: int) -> int:
    """A round top for the chart's scale, at least `value` (1, 2, 5, 10, 20, 50...)."""
    top = 1
    while True:
        for step in (1, 2, 5):
            if step * top >= value:
                return step * top
        top *= 10


def chart(traffic: Traffic, page: Page, zone: ZoneInfo) -> dict[str, object]:
    """The messages-per-minute chart: stacked bars per minute and channel, the scale's top,
    and the time of its first and last minute in the fair's time zone."""
    totals = traffic.per_minute
    top = _ceiling(max(totals, default=0))
    count = max(len(traffic.minutes), 1)
    slot = CHART_WIDTH / count
    plot = CHART_HEIGHT - CHART_TOP
    bars: list[Bar] = []
    for index, minute in enumerate(traffic.minutes):
        base = float(CHART_HEIGHT)
        for channel, counts in traffic.series.items():
            messages = counts[index]
            if not messages:
                continue
            height = plot * messages / top
            base -= height
            label = page.gettext(_("{time}: {count} ({channel})"),
                                 time=_clock(minute, zone, page), count=page.number(messages),
                                 channel=page.channel(channel))
            bars.append(Bar(round(index * slot + 1, 2), round(base, 2), round(slot - 2, 2),
                            round(height, 2), channel, label))
    first = traffic.minutes[0] if traffic.minutes else None
    last = traffic.minutes[-1] if traffic.minutes else None
    return {"bars": bars, "top": top, "width": CHART_WIDTH, "height": CHART_HEIGHT,
            "middle": CHART_HEIGHT - plot / 2, "top_y": CHART_TOP,
            "first": _clock(first, zone, page), "last": _clock(last, zone, page)}


def _clock(moment: dt.datetime | None, zone: ZoneInfo, page: Page) -> str:
    if moment is None:
        return ""
    return page.iso(format_time(moment.astimezone(zone), "HH:mm",
                                locale=BABEL_LOCALES[page.language]))



def language_name(page: Page, language: str) -> str:
    """A language in the page's language."""
    name = LANGUAGES.get(language)
    return page.gettext(name) if name else language


def intent_name(page: Page, intent: str) -> str:
    """An intent as organizers understand it."""
    name = INTENTS.get(intent)
    return page.gettext(name) if name else intent


def local_text(page: Page, texts: Mapping[str, str]) -> str:
    """A catalogue text in the page's language, else French, else any."""
    return (texts.get(page.language) or texts.get("fr") or texts.get("ar")
            or next(iter(texts.values()), ""))


@requires(ConsoleRole.VIEWER)
async def today_page(request: web.Request, page: Page) -> web.StreamResponse:
    """The fair's current day (in its time zone), as of the engine's clock."""
    app = page.console.app
    today = TodayRepository(app.sessions)
    fair = await today.fair()
    if fair is None:
        return page.render("today.html", fair=None, refresh=REFRESH_SECONDS)
    zone = ZoneInfo(fair.timezone)
    now = app.engine.clock()
    day = now.astimezone(zone).date()
    reports = ReportRepository(app.sessions)
    intents: Counter[str] = Counter()
    for row in await reports.questions.intent_counts(fair.id, day):
        intents[row.intent] += row.messages
    traffic = await today.traffic(fair.id, now, TRAFFIC_MINUTES)
    fair_ratings = await reports.fair_ratings(fair.id)
    workshop_ratings = [rated for rated in await reports.workshop_ratings(fair.id)
                        if rated.ratings.total]
    return page.render(
        "today.html", fair=fair, refresh=REFRESH_SECONDS,
        fair_name=local_text(page, fair.name),
        day=page.iso(format_date(day, "full", locale=BABEL_LOCALES[page.language])),
        updated=_clock(now, zone, page), zone=zone,
        contacts=await today.contacts(day_start(day, zone)),
        traffic=traffic, chart=chart(traffic, page, zone),
        channels=list(traffic.series),
        intents=intents.most_common(), intent_top=max(intents.values(), default=0),
        questions=await reports.questions.top_questions(fair.id, day, TOP_QUESTIONS),
        workshops=await today.workshop_seats(fair.id, now),
        fair_ratings=fair_ratings, workshop_ratings=workshop_ratings,
        stands=(await reports.stand_ratings(fair.id))[:TOP_STANDS],
        language_name=language_name, intent_name=intent_name,
        text=local_text, clock=lambda moment: _clock(moment, zone, page))


def routes() -> list[web.RouteDef]:
    return [web.get("/", today_page)]
