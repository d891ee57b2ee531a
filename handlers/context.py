"""What a handler receives: the person, their conversation, the fair and the repositories."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, replace
from enum import StrEnum
from zoneinfo import ZoneInfo

from handlers.flows import FlowData, load_flow
from handlers.messages import Inbound
from handlers.places import with_places
from handlers.session import Session
from handlers.understanding import Gazetteer, InfoTopic, Intent, Understanding, understand
from storage.cooperatives import CooperativeRepository, LinkAttempts
from storage.feedback import FeedbackRepository
from storage.outbox import Outbox
from storage.privacy import PersonalData
from storage.registrations import RegistrationRepository
from storage.reports import ReportRepository
from storage.repositories import (
    CatalogueRepository,
    CatalogueSnapshot,
    ContactRepository,
    ContactView,
    FairView,
    SavedStandRepository,
)
from storage.transfers import TransferCodes, Transfers


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
    understood: Understanding | None = None
    """What the free text being answered was understood as (set by the router)."""
    text: str = ""
    """That free text (for a tap that answers a question asked in doubt, the text asked
    about)."""
    intent: Intent = Intent.UNKNOWN
    """What the answer is (CONTRACT, section Intents): set by the router for the handler it
    picks, reported by the web chat and counted in the metrics."""
    transfer_codes: TransferCodes | None = None
    transfers: Transfers | None = None
    apps: tuple[str, ...] = ()
    """The messaging apps a web chat person can continue on (`telegram`, `whatsapp`)."""
    personal: PersonalData | None = None
    """What is kept about people, and their erasure."""
    retention_days: int = 180
    """Days after the fair's last day when people who no longer write are erased."""
    erased: bool = False
    """Set when the handler erased the person: the engine then keeps nothing of them (no
    session saved, no cached contact)."""

    async def gazetteer(self) -> Gazetteer:
        """The understanding step's gazetteer of the served catalogue, built once per
        catalogue version (kept with the catalogue's snapshot, as its search index is)."""
        snapshot = await self.catalogue.current(self.fair.id)
        if snapshot is None:
            return Gazetteer([])
        kept = snapshot.derived.get("gazetteer")
        if isinstance(kept, Gazetteer):
            return kept
        # One build for all the messages that arrive meanwhile: each building its own made
        # as many copies (a few MB each) as first messages came at once, kept until a full
        # garbage collection.
        if not isinstance(kept, asyncio.Task) or kept.get_loop() is not asyncio.get_running_loop():
            kept = asyncio.create_task(_build_gazetteer(snapshot))
            snapshot.derived["gazetteer"] = kept
        built: Gazetteer = await asyncio.shield(kept)
        return built

    async def understand(self, text: str) -> Understanding:
        """What a free text asks for and names, in the served fair's catalogue."""
        understood = understand(text, await self.gazetteer(), self.now)
        snapshot = await self.catalogue.current(self.fair.id)
        return with_places(understood, text, snapshot.places if snapshot else ())

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
    def flow(self) -> StrEnum | None:
        """The state of the multi-step conversation the person is in, if any."""
        data = self.data
        return data.state if data is not None else None

    def enter(self, flow: FlowData) -> None:
        """Start a multi-step conversation, or move it to another state; its data lives in the
        session."""
        self.session.flow = str(flow.state)
        self.session.data = flow.dump()

    def update(self, flow: FlowData) -> None:
        """The current flow goes on, in the same state, with this data."""
        if flow.state != self.flow:
            raise ValueError(f"{flow.state!s} is not the current flow ({self.flow!s})")
        self.enter(flow)

    def leave(self) -> None:
        self.session.flow = None
        self.session.data = {}

    @property
    def data(self) -> FlowData | None:
        """The current flow's typed data; None outside a flow (or when what the session holds
        no longer fits any)."""
        return load_flow(self.session.flow, self.session.data)

    def local_day(self, moment: dt.datetime) -> dt.date:
        return moment.astimezone(self.zone).date()


async def _build_gazetteer(snapshot: CatalogueSnapshot) -> Gazetteer:
    """The gazetteer of a catalogue version, kept with it once built (a failed build is
    forgotten: the next message tries again)."""
    # The fair's own practical topics bring their words; known ones are in the lexicon.
    topics = [InfoTopic(answer.id, answer.topic or {}, answer.keywords)
              for answer in snapshot.info if not answer.known]
    try:
        # Built in a thread (half a second for a fair of 300 exhibitors): the others'
        # messages are answered meanwhile.
        built = await asyncio.to_thread(Gazetteer.from_snapshot, snapshot, topics)
    except BaseException:
        snapshot.derived.pop("gazetteer", None)
        raise
    snapshot.derived["gazetteer"] = built
    return built
