"""The kinds of outbox messages: for each, the payload its rows carry (a frozen dataclass, stored
as JSON in the row), whether quiet hours hold it and the WhatsApp template kind it goes out with.

Producers build the dataclass; the worker reads a row back with `load_notice` and asks the
payload how to send it. The words are in the handlers/ feature each kind belongs to, one
renderer per kind (`@feature.renders`), checked complete when handlers/router.py is imported. A
new kind is a class here, its entry in NOTICES and a renderer in its feature.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, ClassVar, Final

from pydantic import TypeAdapter, ValidationError


class PayloadError(ValueError):
    """An outbox row that cannot be read back: its kind is unknown or its payload does not fit."""


class Notice:
    """The payload of an outbox row; each kind is a frozen dataclass deriving from it."""

    __slots__ = ()

    kind: ClassVar[str]
    """The `kind` column of its rows."""
    bulk: ClassVar[bool] = False
    """Held during quiet hours (TADAMON_QUIET_HOURS) unless urgent."""
    template: ClassVar[str]
    """The KIND of its TADAMON_WHATSAPP_TEMPLATES entries (outside the 24-hour window); its
    `kind` unless the class says otherwise."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__ and "template" not in cls.__dict__:
            cls.template = cls.kind

    def held_in_quiet_hours(self) -> bool:
        """Whether quiet hours hold this message: a bulk kind, unless this one is urgent."""
        return self.bulk

    def dump(self) -> dict[str, Any]:
        """The JSON its outbox row stores (the shape rows queued by earlier versions have)."""
        plain = _plain(self)
        assert isinstance(plain, dict)
        return plain


def _plain(value: Any) -> Any:
    """A payload value as JSON holds it: moments and dates in ISO format."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _plain(getattr(value, field.name))
                for field in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


Localized = dict[str, str]
"""A text in several languages (`{"fr": ..., "ar": ...}`), as the catalogue gives it."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WrittenNotice(Notice):
    """A text the organizers wrote, sent as it is."""

    text: Localized
    urgent: bool = False

    def held_in_quiet_hours(self) -> bool:
        return self.bulk and not self.urgent


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BroadcastNotice(WrittenNotice):
    """An organizers' broadcast (`tadamon broadcast`, or composed in chat)."""

    kind: ClassVar[str] = "broadcast"
    bulk: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ReminderNotice(WrittenNotice):
    """A reminder of the catalogue, at its time, to its audience."""

    kind: ClassVar[str] = "reminder"
    bulk: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CoopSetupNotice(Notice):
    """The evening before the fair, where and when a linked cooperative sets up."""

    kind: ClassVar[str] = "coop_setup"

    stand: str | None = None
    zone: Localized | None = None
    setup_hours: str | None = None
    opens: dt.date
    hours: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CoopWorkshopNotice(Notice):
    """The morning of a workshop meant for cooperatives: it is today."""

    kind: ClassVar[str] = "coop_workshop"

    title: Localized
    room: Localized
    starts_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredNotice(Notice):
    """What a registered person's messages about their workshop carry."""

    workshop_id: int
    title: Localized
    room: Localized
    starts_at: dt.datetime
    soon: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkshopReminderNotice(RegisteredNotice):
    """A registered person's reminder: the evening before, or shortly before (`soon`)."""

    kind: ClassVar[str] = "workshop_reminder"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FeedbackPromptNotice(RegisteredNotice):
    """After a workshop, the question how it was; its rows carry what the reminders' carry."""

    kind: ClassVar[str] = "feedback_prompt"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DigestComment:
    """A visitor's comment quoted in a digest."""

    text: str
    language: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CoopDigestNotice(Notice):
    """A cooperative's day at its stand: card views, saves, ratings and the new comments."""

    kind: ClassVar[str] = "coop_digest"
    bulk: ClassVar[bool] = True

    stand: str
    day: dt.date
    views: int
    views_total: int
    saves: int
    ratings: int
    average: float | None = None
    comments: tuple[DigestComment, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CoopSurveyNotice(Notice):
    """After the last day, the invitation to the exhibitor survey."""

    kind: ClassVar[str] = "coop_survey"
    bulk: ClassVar[bool] = True

    fair: Localized


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OfferNotice(Notice):
    """A freed seat offered to the first person waiting, theirs if accepted before `until`."""

    kind: ClassVar[str] = "offer"
    bulk: ClassVar[bool] = True

    workshop_id: int
    title: Localized
    room: Localized
    starts_at: dt.datetime
    until: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OfferExpiredNotice(Notice):
    """An offer answered too late: the seat went to the next person."""

    kind: ClassVar[str] = "offer_expired"

    workshop_id: int
    title: Localized


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkshopCancelledNotice(Notice):
    """A workshop the organizers removed, told to each person registered."""

    kind: ClassVar[str] = "workshop_cancelled"

    workshop: str
    title: Localized
    starts_at: dt.datetime


NOTICE_KINDS: Final[tuple[type[Notice], ...]] = (
    BroadcastNotice, ReminderNotice, CoopSetupNotice, CoopWorkshopNotice, WorkshopReminderNotice,
    FeedbackPromptNotice, CoopDigestNotice, CoopSurveyNotice, OfferNotice, OfferExpiredNotice,
    WorkshopCancelledNotice)

NOTICES: Final[dict[str, type[Notice]]] = {cls.kind: cls for cls in NOTICE_KINDS}
"""Every outbox kind, by the name its rows carry."""
if len(NOTICES) != len(NOTICE_KINDS):
    raise RuntimeError("two outbox notice classes share a kind")

# Unknown keys are ignored: a row queued by a newer version still goes out.
_READERS: Final[dict[str, TypeAdapter[Any]]] = {
    kind: TypeAdapter(cls) for kind, cls in NOTICES.items()}


def load_notice(kind: str, payload: object) -> Notice:
    """The typed payload of an outbox row; PayloadError, saying why, when this version does not
    know the kind or the payload does not fit it."""
    reader = _READERS.get(kind)
    if reader is None:
        raise PayloadError(f"unknown message kind {kind!r}")
    try:
        notice = reader.validate_python(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'payload'}: {error['msg']}"
            for error in exc.errors())
        raise PayloadError(f"{kind} payload does not fit: {problems}") from None
    assert isinstance(notice, Notice)
    return notice
