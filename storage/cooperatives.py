"""Cooperatives: link codes, and the chats of their members linked to them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select

from storage.catalogue import active_fair
from storage.models import Contact, Exhibitor, Role, Stand
from storage.repositories import Sessions

# No 0/O or 1/I/L: codes are read off paper and typed on phones. No 3, 7 or 9 either: in
# Latin-letter Darija they stand for Arabic letters, and a code must not look like Darija.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ2456"
CODE_LENGTH = 8


@dataclass(frozen=True, slots=True)
class CoopCode:
    exhibitor: str
    name: dict[str, str]
    stand: str | None
    code: str


@dataclass(frozen=True, slots=True)
class LinkedCooperative:
    exhibitor: str
    name: dict[str, str]
    stand: str | None
    zone: dict[str, str] | None


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


class CooperativeRepository:
    """Link codes of the served fair's exhibitors and the chats linked to them."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def codes(self, revoke: str | None = None) -> list[CoopCode]:
        """Every exhibitor's code, making the missing ones; `revoke` (an exhibitor id) gets a
        new code, so the old one stops working."""
        async with self.sessions() as session, session.begin():
            fair = await active_fair(session)
            if fair is None:
                return []
            rows = (await session.execute(
                select(Exhibitor, Stand.number)
                .outerjoin(Stand, Stand.id == Exhibitor.stand_id)
                .where(Exhibitor.fair_id == fair.id).order_by(Exhibitor.key))).all()
            found: list[CoopCode] = []
            for exhibitor, number in rows:
                if exhibitor.link_code is None or exhibitor.key == revoke:
                    exhibitor.link_code = new_code()
                found.append(CoopCode(exhibitor.key, exhibitor.name, number,
                                      exhibitor.link_code))
            return found

    async def exhibitor_of(self, contact_id: int) -> int | None:
        """The exhibitor a chat is linked to, if any."""
        async with self.sessions() as session:
            return await session.scalar(select(Contact.exhibitor_id)
                                        .where(Contact.id == contact_id))

    async def link(self, contact_id: int, code: str) -> LinkedCooperative | None:
        """Link a chat to the cooperative whose code this is (several members may link);
        None when no exhibitor has this code."""
        normalized = code.strip().upper().replace("-", "").replace(" ", "")
        async with self.sessions() as session, session.begin():
            row = (await session.execute(
                select(Exhibitor, Stand)
                .outerjoin(Stand, Stand.id == Exhibitor.stand_id)
                .where(Exhibitor.link_code == normalized))).first()
            if row is None:
                return None
            exhibitor, stand = row
            contact = await session.get(Contact, contact_id)
            if contact is None:
                return None
            contact.exhibitor_id = exhibitor.id
            if contact.role != Role.ORGANIZER:  # an organizer keeps their rights
                contact.role = Role.COOPERATIVE
            return LinkedCooperative(exhibitor.key, exhibitor.name,
                                     stand.number if stand else None,
                                     stand.zone if stand else None)
