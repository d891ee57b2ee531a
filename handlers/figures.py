"""The fair's key figures in words, for organizers' `/stats` and the command line's summary."""

from __future__ import annotations

from handlers.messages import Msg, _, _n
from storage.reports import KeyFigures

CHANNEL_NAMES = {"telegram": "Telegram", "whatsapp": "WhatsApp", "web": "Web"}


def figure_lines(figures: KeyFigures) -> list[Msg]:
    """The key figures as sentences, for `/stats` and the command line's summary."""
    channels = ", ".join(f"{CHANNEL_NAMES.get(channel, channel)} {count}"
                         for channel, count in figures.contacts_by_channel.items())
    if figures.fair_average is None:
        rating = _("Rating of the fair: no rating yet")
    else:
        rating = _n("Rating of the fair: {average} out of 5 ({n} rating)",
                    "Rating of the fair: {average} out of 5 ({n} ratings)",
                    figures.fair_ratings, average=round(figures.fair_average, 1))
    return [
        _n("{n} contact ({channels})", "{n} contacts ({channels})", figures.contacts,
           channels=channels or "-"),
        rating,
        _n("{n} confirmed registration", "{n} confirmed registrations",
           figures.confirmed_registrations),
        _n("{n} comment", "{n} comments", figures.comments),
    ]
