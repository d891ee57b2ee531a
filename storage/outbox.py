"""The outbox: every message that is not a direct reply. Here: what platforms report about
messages once sent (WhatsApp statuses); the workers that send come with their own issue."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import OutboxMessage, OutboxStatus, utcnow
from storage.repositories import Sessions

# Reports can arrive out of order (read before delivered): a later stage never goes back.
DELIVERY_STAGES = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}


class OutboxRepository:
    """Outbox rows and their delivery reports."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def record_delivery(self, channel: str, platform_message_id: str, status: str,
                              error: str | None = None) -> bool:
        """Record a platform's report on a sent message; False when no outbox row has that
        platform id (a direct reply, which the outbox does not keep) or the status is unknown."""
        stage = DELIVERY_STAGES.get(status)
        if stage is None:
            return False
        async with self.sessions() as session, session.begin():
            row = (await session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.channel == channel,
                    OutboxMessage.platform_message_id == platform_message_id)
                .with_for_update())).first()
            if row is None:
                return False
            if DELIVERY_STAGES.get(row.delivery_status or "", 0) < stage:
                row.delivery_status = status
                row.delivery_updated_at = utcnow()
                if status == "failed":
                    row.status = OutboxStatus.FAILED
                    row.error = error or "failed"
            return True
