"""What a handler receives: the person, their conversation, the fair and the repositories."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

from handlers.messages import Inbound
from handlers.session import Session
from storage.cooperatives import CooperativeRepository, LinkAttempts
from storage.feedback import FeedbackRepository
from storage.outbox import Outbox
from storage.registrations import RegistrationRepository
from storage.reports import ReportRepository
from storage.repositories import (
    CatalogueRepository,
    ContactRepository,
    ContactView,
    FairView,
    SavedStandRepository,
)


@dataclass
class Context:
    """Made by the engine for one inbound message; handlers read it and may change
    `language` and `session` (saved by the engine afterwards)."""

    inbound: Inbound
    contact: ContactView
    language: str
    session: Session
    fair: FairView
    catalogue: CatalogueRepository
    contacts: ContactRepository
    feedback: FeedbackRepository
    cooperatives: CooperativeRepository
    link_attempts: LinkAttempts
    outbox: Outbox
    registrations: RegistrationRepository
    saved: SavedStandRepository
    reports: ReportRepository
    now: dt.datetime
    zone: ZoneInfo

    async def set_language(self, language: str) -> None:
        """The person chose their language: stored, and used from this reply on."""
        await self.contacts.set_language(self.contact.id, language, confirmed=True)
        self.contact = replace(self.contact, language=language, language_confirmed=True)
        self.language = language

    async def set_opted_out(self, opted_out: bool) -> None:
        """The person stops (or resumes) announcements and reminders."""
        await self.contacts.set_opted_out(self.contact.id, opted_out)
        self.contact = replace(self.contact, opted_out=opted_out)

    @property
    def flow(self) -> str | None:
        """The multi-step conversation the person is in, if any."""
        return self.session.flow

    def enter(self, flow: str, **data: Any) -> None:
        """Start a multi-step conversation; its data lives in the session."""
        self.session.flow = flow
        self.session.data = data

    def update(self, **changes: Any) -> None:
        """Change some of the current flow's data."""
        self.session.data = {**self.session.data, **changes}

    def leave(self) -> None:
        self.session.flow = None
        self.session.data = {}

    @property
    def data(self) -> dict[str, Any]:
        return self.session.data

    def local_day(self, moment: dt.datetime) -> dt.date:
        return moment.astimezone(self.zone).date()
