"""Who can be written to later (reminders, offers, notices, broadcasts), not only answered.

The web chat answers a person while they write and has no way to reach them afterwards: no row
is queued for its people, and no audience counts them. Every place that queues outbox rows or
counts an audience asks here, so the rule is written once."""

from __future__ import annotations

from sqlalchemy import ColumnElement

from storage.models import Contact

ANSWER_ONLY_CHANNELS = ("web",)


def can_receive_later(channel: str) -> bool:
    """True when a message can be sent to a person of `channel` other than as an answer."""
    return channel not in ANSWER_ONLY_CHANNELS


def receives_later() -> ColumnElement[bool]:
    """The SQL condition on `Contact` of `can_receive_later`."""
    return Contact.channel.not_in(ANSWER_ONLY_CHANNELS)
