"""Who can be written to later (reminders, offers, notices, broadcasts), not only answered.

Every channel can: Telegram and WhatsApp send, and the web chat keeps the message in the
person's inbox (storage/webinbox.py), shown when their page is open or next opened, with a Web
Push notification where they allowed it. Every place that queues outbox rows or counts an
audience asks here, so that a channel that can only answer is left out in one place."""

from __future__ import annotations

from sqlalchemy import ColumnElement, true

from storage.models import Contact

ANSWER_ONLY_CHANNELS: tuple[str, ...] = ()


def can_receive_later(channel: str) -> bool:
    """True when a message can be sent to a person of `channel` other than as an answer."""
    return channel not in ANSWER_ONLY_CHANNELS


def receives_later() -> ColumnElement[bool]:
    """The SQL condition on `Contact` of `can_receive_later`."""
    if not ANSWER_ONLY_CHANNELS:
        return true()
    return Contact.channel.not_in(ANSWER_ONLY_CHANNELS)
