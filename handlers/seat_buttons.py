"""The buttons of a seat at a workshop, handled by handlers/registrations.py and offered by
the workshop card too. They sit here, not in registrations.py, because registrations.py
imports the workshop card (handlers/workshops.py), which would otherwise import it back."""

from __future__ import annotations

from handlers.buttons import Button
from handlers.messages import Choice, _


class Register(Button, prefix="reg"):
    """Register for a workshop."""

    workshop_id: int


class Unregister(Button, prefix="unreg"):
    """Cancel a registration, or leave the waiting list."""

    workshop_id: int


class OfferAnswer(Button, prefix="offer", is_global=True):
    """Accept or decline a seat freed for the person; the handler checks the offer is theirs."""

    accept: bool
    workshop_id: int


def offer_choices(workshop_id: int) -> list[Choice]:
    """The two buttons of a seat offered to someone on the waiting list."""
    return [Choice(OfferAnswer(accept=True, workshop_id=workshop_id).pack(), _("Accept the seat")),
            Choice(OfferAnswer(accept=False, workshop_id=workshop_id).pack(), _("Decline"))]
