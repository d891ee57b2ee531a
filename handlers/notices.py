"""Messages that are not replies: what a reminder, a broadcast or a notice says to a person.
Each outbox kind is worded by the feature it belongs to (`@feature.renders`); the worker asks
here."""

from __future__ import annotations

from handlers.messages import Reply
from handlers.organizers import broadcast_progress
from handlers.router import router
from storage.notices import Notice

__all__ = ["broadcast_progress", "notice"]


def notice(payload: Notice) -> Reply:
    """The reply an outbox row carries."""
    return router.renderers[type(payload)](payload)
