"""The workshops of the served fair as the organizer console lists them: seats, offers, the
waiting list and who came, per workshop; and cancelling one from the console."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select

from storage.catalogue import active_fair, cancel_workshop
from storage.models import Registration, RegistrationStatus, Workshop
from storage.registrations import _locked
from storage.repositories import Sessions


@dataclass(frozen=True, slots=True)
class WorkshopLine:
    """One workshop with its counts."""

    id: int
    key: str
    title: dict[str, Any]
    room: dict[str, Any]
    starts_at: dt.datetime
    ends_at: dt.datetime
    capacity: int
    cancelled: bool
    confirmed: int = 0
    offered: int = 0
    waiting: int = 0
    checked_in: int = 0


@dataclass(frozen=True, slots=True)
class Cancelled:
    """What cancelling a workshop did: how many registrants will be told, or that it was
    cancelled already (nobody is told twice)."""

    told: int
    already: bool


async def served_fair_id(sessions: Sessions) -> int | None:
    """The id of the fair this deployment serves."""
    async with sessions() as session:
        fair = await active_fair(session)
    return None if fair is None else fair.id


def _counted(status: RegistrationStatus) -> Any:
    return func.sum(case((Registration.status == status, 1), else_=0))


async def workshop_lines(sessions: Sessions, fair_id: int, key: str | None = None
                         ) -> list[WorkshopLine]:
    """The fair's workshops by start time (or only the one with this key), with counts."""
    query = (
        select(Workshop,
               _counted(RegistrationStatus.CONFIRMED),
               _counted(RegistrationStatus.OFFERED),
               _counted(RegistrationStatus.WAITLISTED),
               func.sum(case(((Registration.status == RegistrationStatus.CONFIRMED)
                              & Registration.checked_in_at.is_not(None), 1), else_=0)))
        .outerjoin(Registration, Registration.workshop_id == Workshop.id)
        .where(Workshop.fair_id == fair_id)
        .group_by(Workshop.id)
        .order_by(Workshop.starts_at, Workshop.key))
    if key is not None:
        query = query.where(Workshop.key == key)
    async with sessions() as session:
        rows = (await session.execute(query)).all()
    return [WorkshopLine(workshop.id, workshop.key, workshop.title, workshop.room,
                         workshop.starts_at, workshop.ends_at, workshop.capacity,
                         workshop.cancelled, int(confirmed or 0), int(offered or 0),
                         int(waiting or 0), int(present or 0))
            for workshop, confirmed, offered, waiting, present in rows]


async def cancel_by_organizers(sessions: Sessions, workshop_id: int) -> Cancelled:
    """Cancel a workshop and queue its registrants' notices, in one transaction (the same
    storage.catalogue.cancel_workshop as the catalogue import); twice is harmless."""
    async with sessions() as session, session.begin():
        workshop = await _locked(session, workshop_id)
        if workshop is None or workshop.cancelled:
            return Cancelled(0, already=True)
        return Cancelled(await cancel_workshop(session, workshop), already=False)
