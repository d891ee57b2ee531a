"""The fair's key figures in words, for organizers' `/stats` and the command line's summary;
the seats a workshop has taken, counted one way for the text and the charts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from handlers.messages import Content, Isolated, Local, Msg, _, _n
from storage.questions import QuestionCount
from storage.reports import KeyFigures, WorkshopFill

# Platforms keep their brand names; the web chat is named in the reader's language.
CHANNEL_NAMES: dict[str, str | Msg] = {"telegram": "Telegram", "whatsapp": "WhatsApp",
                                       "web": _("Web chat")}


def channel_counts(counts: Mapping[str, int]) -> Msg | str:
    """"Telegram 12, WhatsApp 30, chat web 5", each name in the reader's language."""
    joined: Msg | str = "-"
    for index, (channel, count) in enumerate(counts.items()):
        part = _("{channel} {count}", channel=CHANNEL_NAMES.get(channel, channel), count=count)
        joined = part if index == 0 else _("{first}, {second}", first=joined, second=part)
    return joined


def figure_lines(figures: KeyFigures) -> list[Msg]:
    """The key figures as sentences, for `/stats` and the command line's summary."""
    channels = channel_counts(figures.contacts_by_channel)
    if figures.fair_average is None:
        rating = _("Rating of the fair: no rating yet")
    else:
        rating = _n("Rating of the fair: {average} out of 5 ({n} rating)",
                    "Rating of the fair: {average} out of 5 ({n} ratings)",
                    figures.fair_ratings, average=round(figures.fair_average, 1))
    return [
        _n("{n} contact ({channels})", "{n} contacts ({channels})", figures.contacts,
           channels=channels),
        rating,
        _n("{n} confirmed registration", "{n} confirmed registrations",
           figures.confirmed_registrations),
        _n("{n} comment", "{n} comments", figures.comments),
    ]


def seats_taken(fill: WorkshopFill) -> int:
    """Seats no one else can have: confirmed, and offered to someone from the waiting list."""
    return fill.confirmed + fill.offered


def percent(part: int, whole: int) -> int:
    """`part` of `whole` in whole percent, rounded down: 100 only when every seat is taken
    (a workshop without seats counts as full)."""
    return 100 * part // whole if whole else 100


def fill_percent(fill: WorkshopFill) -> int:
    """The share of a workshop's seats taken, as both `/stats` and its chart show it."""
    return percent(seats_taken(fill), fill.capacity)


def question_lines(questions: Sequence[QuestionCount]) -> list[Content]:
    """The day's most frequent questions not understood, as stored (folded, no personal
    data): what the organizers may add to the catalogue's answers."""
    if not questions:
        return [_("Questions not understood today: none yet.")]
    return [_("Questions not understood today, most frequent first:"),
            *(_n("“{question}” ({n} time)", "“{question}” ({n} times)", item.count,
                 question=item.question)
              for item in questions)]


def workshop_lines(rates: Sequence[WorkshopFill], zone: dt.tzinfo) -> list[Content]:
    """How full the workshops are, the total first, then each workshop with its waiting list."""
    if not rates:
        return [_("No workshop is planned at this fair.")]
    taken = sum(seats_taken(rate) for rate in rates)
    capacity = sum(rate.capacity for rate in rates)
    return [
        _("Workshops, seats taken:"),
        _("In all: {taken} of {capacity} seats ({percent}%).", taken=taken, capacity=capacity,
          percent=percent(taken, capacity)),
        *(_("{when} · {title}: {taken} of {capacity} ({percent}%), {waiting} waiting",
            when=Isolated(f"{rate.starts_at.astimezone(zone):%d/%m %H:%M}"),
            title=Local(rate.title), taken=seats_taken(rate), capacity=rate.capacity,
            percent=fill_percent(rate), waiting=rate.waitlisted)
          for rate in rates),
    ]
