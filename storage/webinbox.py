"""The web chat's inbox: what was queued for a web chat person, kept in SQL until their page
fetches it (each message shown once), their browsers' Web Push subscriptions, and the keys the
service makes for itself once (the VAPID key pair)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from storage.models import Contact, ServiceKey, WebInboxEntry, WebPushSubscription, utcnow
from storage.repositories import Sessions

WEB = "web"
# A message shown is kept this long (a page that lost the answer on the way has no second
# chance, but the row helps to understand what happened), then deleted when the person next
# gets a message.
SHOWN_KEPT = dt.timedelta(days=1)
# One person's browsers (a phone, a laptop): past this, the oldest subscription goes.
MAX_SUBSCRIPTIONS = 5


@dataclass(frozen=True, slots=True)
class PushTarget:
    """One browser subscription to push to."""

    endpoint: str
    p256dh: str
    auth: str


class WebInbox:
    """Keeps, serves and forgets what waits for web chat people, and their push subscriptions."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def contact_id(self, public_id: str) -> int | None:
        """The contact of a web chat person (None before their first message)."""
        async with self.sessions() as session:
            found = await session.scalar(select(Contact.id).where(
                Contact.channel == WEB, Contact.user_id == public_id))
        return int(found) if found is not None else None

    async def keep(self, contact_id: int, reply: dict[str, Any],
                   outbox_id: int | None = None, now: dt.datetime | None = None) -> bool:
        """Keep a message for the person; False when this outbox row was kept already."""
        entry = WebInboxEntry(contact_id=contact_id, outbox_id=outbox_id, reply=reply,
                              created_at=now or utcnow())
        try:
            async with self.sessions() as session, session.begin():
                if outbox_id is not None and await session.scalar(
                        select(WebInboxEntry.id).where(WebInboxEntry.outbox_id == outbox_id)):
                    return False
                session.add(entry)
        except IntegrityError:  # another worker kept the same row meanwhile
            return False
        return True

    async def take(self, contact_id: int, now: dt.datetime | None = None
                   ) -> list[dict[str, Any]]:
        """The messages not shown yet, oldest first, marked shown in the same statement: two
        pages polling at once never get the same message."""
        now = now or utcnow()
        async with self.sessions() as session, session.begin():
            rows = (await session.execute(
                update(WebInboxEntry)
                .where(WebInboxEntry.contact_id == contact_id, WebInboxEntry.shown_at.is_(None))
                .values(shown_at=now)
                .returning(WebInboxEntry.id, WebInboxEntry.reply)
                .execution_options(synchronize_session=False))).all()
            if rows:  # most looks find nothing: they cost one statement, not two
                await session.execute(delete(WebInboxEntry).where(
                    WebInboxEntry.contact_id == contact_id,
                    WebInboxEntry.shown_at < now - SHOWN_KEPT))
        return [dict(reply) for _id, reply in sorted(rows, key=lambda row: int(row[0]))]

    async def waiting(self, contact_id: int) -> int:
        """How many messages wait for the person."""
        async with self.sessions() as session:
            count = await session.scalar(select(func.count()).select_from(WebInboxEntry).where(
                WebInboxEntry.contact_id == contact_id, WebInboxEntry.shown_at.is_(None)))
        return int(count or 0)

    async def subscribe(self, contact_id: int, target: PushTarget) -> None:
        """Keep a browser's push subscription for the person (a browser's endpoint belongs
        to the last session that gave it)."""
        async with self.sessions() as session, session.begin():
            await session.execute(delete(WebPushSubscription).where(
                WebPushSubscription.endpoint == target.endpoint))
            session.add(WebPushSubscription(contact_id=contact_id, endpoint=target.endpoint,
                                            p256dh=target.p256dh, auth=target.auth,
                                            created_at=utcnow()))
            await session.flush()
            ids = list(await session.scalars(
                select(WebPushSubscription.id)
                .where(WebPushSubscription.contact_id == contact_id)
                .order_by(WebPushSubscription.id.desc())))
            if len(ids) > MAX_SUBSCRIPTIONS:
                await session.execute(delete(WebPushSubscription).where(
                    WebPushSubscription.id.in_(ids[MAX_SUBSCRIPTIONS:])))

    async def subscriptions(self, contact_id: int) -> list[PushTarget]:
        """The person's browsers to push to."""
        async with self.sessions() as session:
            rows = await session.scalars(select(WebPushSubscription).where(
                WebPushSubscription.contact_id == contact_id)
                .order_by(WebPushSubscription.id))
            return [PushTarget(row.endpoint, row.p256dh, row.auth) for row in rows]

    async def unsubscribe(self, endpoint: str) -> None:
        """Forget a subscription (its push service says it is gone)."""
        async with self.sessions() as session, session.begin():
            await session.execute(delete(WebPushSubscription).where(
                WebPushSubscription.endpoint == endpoint))


async def service_key(sessions: Sessions, name: str, make: Callable[[], str]) -> str:
    """The key kept under `name`; made by `make` and kept the first time it is asked for. Every
    process gets the same one: the first to keep it wins."""
    async with sessions() as session:
        found = await session.scalar(select(ServiceKey.value).where(ServiceKey.name == name))
    if found is not None:
        return str(found)
    try:
        async with sessions() as session, session.begin():
            session.add(ServiceKey(name=name, value=make(), created_at=utcnow()))
    except IntegrityError:
        pass  # another process kept its own first: use that one
    async with sessions() as session:
        kept = await session.execute(select(ServiceKey.value).where(ServiceKey.name == name))
        return str(kept.scalar_one())
