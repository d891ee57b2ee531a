"""The conversation's memory of one person between messages: a typed, versioned model.

Storage keeps it as a JSON object (storage/state.py); this module is the only place that knows
its keys. A session written by an older version is read by `Session.load`; one that cannot be
read (damaged, or written by a newer version) starts afresh, which costs the person at most the
step they were in."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, fields
from typing import Any

from storage.models import Role
from storage.repositories import ContactView

log = logging.getLogger(__name__)

VERSION = 1
# How many of the buttons offered last are remembered, for checking a tap when it comes back.
OFFERED_KEEP = 60


@dataclass(frozen=True, slots=True)
class CachedContact:
    """The conversation's copy of the person, and when it was read from the database."""

    contact: ContactView
    at: float

    def dump(self) -> dict[str, Any]:
        data: dict[str, Any] = {item.name: getattr(self.contact, item.name)
                                for item in fields(ContactView) if item.name != "created"}
        data["at"] = self.at
        return data

    @classmethod
    def load(cls, raw: object) -> CachedContact | None:
        if not isinstance(raw, dict):
            return None
        try:
            names = [item.name for item in fields(ContactView) if item.name != "created"]
            values = {name: raw[name] for name in names if name in raw}
            values["role"] = Role(values["role"])
            contact = ContactView(**values)
            return cls(contact, float(raw["at"]))
        except (KeyError, TypeError, ValueError):
            return None  # an older or damaged copy: the database is read again


@dataclass(slots=True)
class Session:
    """What the conversation remembers of one person; `None` and empty fields are not stored."""

    # The language of the last answer, for short notices before the contact is read.
    language: str | None = None
    # The first-contact language question has been asked.
    language_prompted: bool = False
    # The ids of the buttons offered last, newest first.
    offered: list[str] = field(default_factory=list)
    contact: CachedContact | None = None
    # The last stand search, for its "more results" button.
    search: str | None = None
    # The multi-step conversation the person is in, and its data.
    flow: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    # The text of the question asked in doubt ("a stand or a workshop?"): the tap answers it.
    asked: str | None = None
    # What the first answer answered (`/start stand_A12`, or the question asked), shown again
    # in the language the person picks next.
    again: str | None = None
    # Whether turning announcements back on was offered since the person stopped them.
    resume_asked: bool = False

    def dump(self) -> dict[str, Any]:
        """The JSON object storage keeps."""
        stored: dict[str, Any] = {"v": VERSION}
        if self.language is not None:
            stored["lang"] = self.language
        if self.language_prompted:
            stored["lang_prompted"] = True
        if self.offered:
            stored["offered"] = list(self.offered)
        if self.contact is not None:
            stored["contact"] = self.contact.dump()
        if self.search is not None:
            stored["search"] = self.search
        if self.flow is not None:
            stored["flow"] = self.flow
            stored["data"] = dict(self.data)
        if self.asked is not None:
            stored["asked"] = self.asked
        if self.again is not None:
            stored["again"] = self.again
        if self.resume_asked:
            stored["resume_asked"] = True
        return stored

    @classmethod
    def load(cls, stored: dict[str, Any]) -> Session:
        """Read what storage kept: this version's, or one written before versions (the same
        keys, and a `last_stand` that nothing read); anything newer or malformed starts afresh."""
        version = stored.get("v", VERSION)
        if version != VERSION:
            log.warning("conversation session of version %r: starting a new one", version)
            return cls()
        language = stored.get("lang")
        offered = stored.get("offered")
        search = stored.get("search")
        flow = stored.get("flow")
        data = stored.get("data")
        asked = stored.get("asked")
        again = stored.get("again")
        return cls(
            language=language if isinstance(language, str) else None,
            language_prompted=stored.get("lang_prompted") is True,
            offered=[item for item in offered if isinstance(item, str)]
            if isinstance(offered, list) else [],
            contact=CachedContact.load(stored.get("contact")),
            search=search if isinstance(search, str) else None,
            flow=flow if isinstance(flow, str) else None,
            data=data if isinstance(data, dict) and isinstance(flow, str) else {},
            asked=asked if isinstance(asked, str) else None,
            again=again if isinstance(again, str) else None,
            resume_asked=stored.get("resume_asked") is True,
        )

    def remember_offered(self, ids: list[str]) -> None:
        """Record the buttons just offered, so a tap can be checked when it comes back."""
        if not ids:
            return
        kept = [item for item in self.offered if item not in ids]
        self.offered = (ids + kept)[:OFFERED_KEEP]

    def keep_contact(self, contact: ContactView, at: float | None = None) -> None:
        self.contact = CachedContact(contact, time.time() if at is None else at)
