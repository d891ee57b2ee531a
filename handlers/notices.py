"""Messages that are not replies: what a reminder, a broadcast or a notice says to a person."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bot.messages import Local, Reply, When, _, reply


def notice(kind: str, payload: dict[str, Any]) -> Reply | None:
    """The reply an outbox row of `kind` carries; None for a kind this version does not know."""
    if kind in ("broadcast", "reminder"):
        return reply(Local(payload["text"]))
    if kind == "workshop_cancelled":
        return reply(_("The workshop {title} of {when} is cancelled by the organizers. We are "
                       "sorry for the inconvenience.",
                       title=Local(payload["title"]),
                       when=When(dt.datetime.fromisoformat(payload["starts_at"]), "day_time")))
    return None
