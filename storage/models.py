"""SQL records (SQLAlchemy 2 typed ORM). Schema changes go through Alembic migrations."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Localized = dict[str, str]
"""A text meant for people: {"fr": ..., "ar": ..., "en": ...}."""


def utcnow() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware UTC timestamp on every backend (SQLite keeps no offset, so store naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


class Role(enum.StrEnum):
    VISITOR = "visitor"
    COOPERATIVE = "cooperative"
    ORGANIZER = "organizer"


class RegistrationStatus(enum.StrEnum):
    CONFIRMED = "confirmed"
    OFFERED = "offered"
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


def _enum(kind: type[enum.StrEnum], name: str) -> Enum:
    return Enum(kind, name=name, native_enum=False, length=16, values_callable=_values)


def _values(kind: type[enum.StrEnum]) -> list[str]:
    return [member.value for member in kind]


class Fair(Base):
    __tablename__ = "fairs"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[dict[str, Any]]
    city: Mapped[dict[str, Any]]
    venue: Mapped[dict[str, Any]]
    info: Mapped[dict[str, Any] | None]
    timezone: Mapped[str] = mapped_column(String(64))
    opens: Mapped[dt.date]
    closes: Mapped[dt.date]
    hours: Mapped[str] = mapped_column(String(32))
    setup_hours: Mapped[str | None] = mapped_column(String(32))
    # The catalogue's own text of the privacy notice ({"fr": ..., "ar": ...}); None: the
    # service's default text.
    privacy: Mapped[dict[str, Any] | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    imported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Category(Base):
    __tablename__ = "categories"
    __table_args__ = (UniqueConstraint("fair_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    name: Mapped[dict[str, Any]]


class Stand(Base):
    __tablename__ = "stands"
    __table_args__ = (UniqueConstraint("fair_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(16))
    zone: Mapped[dict[str, Any]]
    x: Mapped[int]
    y: Mapped[int]


class Exhibitor(Base):
    __tablename__ = "exhibitors"
    __table_args__ = (UniqueConstraint("fair_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[dict[str, Any]]
    aliases: Mapped[list[Any]]
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("categories.id", ondelete="SET NULL")
    )
    city: Mapped[dict[str, Any]]
    region: Mapped[dict[str, Any]]
    products: Mapped[list[Any]]
    stand_id: Mapped[int | None] = mapped_column(
        ForeignKey("stands.id", ondelete="SET NULL"), index=True
    )
    women_led: Mapped[bool] = mapped_column(Boolean, default=False)
    labels: Mapped[list[Any]]
    phone: Mapped[str | None] = mapped_column(String(32))
    public_phone: Mapped[bool] = mapped_column(Boolean, default=False)
    # The code a cooperative's members send (coop_<code>) to link their chats to it; a new code
    # revokes the old one.
    link_code: Mapped[str | None] = mapped_column(String(32), unique=True)


class Workshop(Base):
    __tablename__ = "workshops"
    __table_args__ = (UniqueConstraint("fair_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    title: Mapped[dict[str, Any]]
    description: Mapped[dict[str, Any] | None]
    speaker: Mapped[str] = mapped_column(String(200), default="")
    # The speaker's name by script ({"fr": ..., "ar": ...}) when the catalogue gives it;
    # None when `speaker` is a plain text, shown as written.
    speaker_names: Mapped[dict[str, Any] | None]
    room: Mapped[dict[str, Any]]
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    capacity: Mapped[int]
    language: Mapped[str] = mapped_column(String(8))
    audience: Mapped[str] = mapped_column(String(16))
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    # The catalogue's place the room is, when the file names one (its name is in `room`).
    place: Mapped[str | None] = mapped_column(String(100))


class Reminder(Base):
    __tablename__ = "reminders"
    __table_args__ = (UniqueConstraint("fair_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    audience: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime]
    text: Mapped[dict[str, Any]]


class Place(Base):
    """A room or facility of the catalogue's `places:` section, at its point on the plan."""

    __tablename__ = "places"
    __table_args__ = (UniqueConstraint("fair_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[dict[str, Any]]
    x: Mapped[int]
    y: Mapped[int]
    position: Mapped[int] = mapped_column(Integer)


class InfoAnswer(Base):
    """A practical answer of the catalogue's `info:` section (toilets, parking, a shuttle...):
    a known topic by its id, or another topic with its title and the words people use."""

    __tablename__ = "info_answers"
    __table_args__ = (UniqueConstraint("fair_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    topic: Mapped[dict[str, Any] | None]
    keywords: Mapped[list[Any]]
    answer: Mapped[dict[str, Any]]
    position: Mapped[int] = mapped_column(Integer)


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("channel", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str] = mapped_column(String(128))
    language: Mapped[str | None] = mapped_column(String(8))
    language_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    role: Mapped[Role] = mapped_column(_enum(Role, "contact_role"), default=Role.VISITOR)
    exhibitor_id: Mapped[int | None] = mapped_column(
        ForeignKey("exhibitors.id", ondelete="SET NULL")
    )
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out_at: Mapped[dt.datetime | None]
    unreachable: Mapped[bool] = mapped_column(Boolean, default=False)
    last_inbound_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # WhatsApp's business-scoped user id, kept beside the wa_id when Meta sends it.
    platform_alt_id: Mapped[str | None] = mapped_column(String(128))
    # Where an organizer's role comes from: "setting" (TADAMON_ORGANIZERS, withdrawn at the
    # next start when the entry is gone) or "cli" (`tadamon organizer add`); None otherwise.
    role_source: Mapped[str | None] = mapped_column(String(16))


class WebSession(Base):
    """A web chat session the server issued. Only a hash of the token is kept (the token is a
    credential); the person is known everywhere else by `public_id`, derived from it."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    # A keyed hash of the client's network address, for limits per address (never the address).
    client_hash: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Registration(Base):
    __tablename__ = "registrations"
    __table_args__ = (
        UniqueConstraint("workshop_id", "contact_id"),
        Index("ix_registrations_workshop_status", "workshop_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workshop_id: Mapped[int] = mapped_column(ForeignKey("workshops.id", ondelete="RESTRICT"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="RESTRICT"))
    status: Mapped[RegistrationStatus] = mapped_column(
        _enum(RegistrationStatus, "registration_status")
    )
    position: Mapped[int | None] = mapped_column(Integer)
    offered_until: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # What the confirmation's QR code carries, read at the door: random, so that nobody can
    # check someone else in by guessing (made when a seat is confirmed).
    checkin_code: Mapped[str | None] = mapped_column(String(32), unique=True)
    checked_in_at: Mapped[dt.datetime | None]


class Feedback(Base):
    """A rating (1-5) of the fair, a workshop or a stand, and its optional comment. One per
    person, target and day in the fair's time zone: a second rating replaces the first."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("fair_id", "contact_id", "target_kind", "target_key",
                                       "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id", ondelete="RESTRICT"))
    # None once its author was erased: the rating and comment stay, naming nobody.
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="RESTRICT"), index=True
    )
    target_kind: Mapped[str] = mapped_column(String(16))
    target_key: Mapped[str] = mapped_column(String(100))
    rating: Mapped[int | None]
    comment: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    day: Mapped[dt.date | None] = mapped_column(Date)


class StandCardView(Base):
    """How many times a stand's card was shown on one day (for its cooperative's digest)."""

    __tablename__ = "stand_card_views"

    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id", ondelete="CASCADE"),
                                         primary_key=True)
    stand_number: Mapped[str] = mapped_column(String(16), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    views: Mapped[int] = mapped_column(Integer, default=0)


class IntentCount(Base):
    """How many free texts were understood as one intent, per fair, local day, channel and
    language (no person is kept: only the count)."""

    __tablename__ = "intent_counts"

    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id", ondelete="CASCADE"),
                                         primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    language: Mapped[str] = mapped_column(String(8), primary_key=True)
    intent: Mapped[str] = mapped_column(String(32), primary_key=True)
    messages: Mapped[int] = mapped_column(Integer, default=0)


class UnansweredQuestion(Base):
    """A question that was not understood, folded and cleaned of personal data, counted per
    fair and local day (no person is kept)."""

    __tablename__ = "unanswered_questions"

    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id", ondelete="CASCADE"),
                                         primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    question: Mapped[str] = mapped_column(String(200), primary_key=True)
    times: Mapped[int] = mapped_column(Integer, default=0)
    first_seen: Mapped[dt.datetime]
    last_seen: Mapped[dt.datetime]


class ExhibitorSurvey(Base):
    """What a cooperative's member thinks of the fair, asked when it ends; each answer is
    stored as soon as it is given."""

    __tablename__ = "exhibitor_surveys"
    __table_args__ = (UniqueConstraint("fair_id", "contact_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id", ondelete="RESTRICT"))
    # None once the member was erased: the answers stay, naming nobody.
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="RESTRICT"))
    exhibitor_id: Mapped[int | None] = mapped_column(
        ForeignKey("exhibitors.id", ondelete="SET NULL"))
    satisfaction: Mapped[int | None]
    come_again: Mapped[bool | None]
    sales_band: Mapped[str | None] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SavedStand(Base):
    """A stand someone saved to their list during the visit."""

    __tablename__ = "saved_stands"
    __table_args__ = (UniqueConstraint("contact_id", "fair_id", "stand_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id", ondelete="CASCADE"))
    stand_number: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Broadcast(Base):
    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(primary_key=True)
    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id", ondelete="RESTRICT"))
    # `workshop:` and a workshop id of up to 100 characters (the catalogue's limit)
    audience: Mapped[str] = mapped_column(String(120))
    text: Mapped[dict[str, Any]]
    scheduled_at: Mapped[dt.datetime]
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The message showing its progress to the organizer who composed it in chat (edited).
    progress_message_id: Mapped[str | None] = mapped_column(String(64))


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # None once the person was erased (or the retention time passed): a message sent, failed
    # or skipped still counts in its broadcast's figures, naming nobody.
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]]
    due_at: Mapped[dt.datetime]
    status: Mapped[OutboxStatus] = mapped_column(
        _enum(OutboxStatus, "outbox_status"), default=OutboxStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    broadcast_id: Mapped[int | None] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="SET NULL"), index=True
    )
    lease_until: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    platform_message_id: Mapped[str | None] = mapped_column(String(200), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # What the platform later reported: delivered, read, or failed (WhatsApp statuses).
    delivery_status: Mapped[str | None] = mapped_column(String(16))
    delivery_updated_at: Mapped[dt.datetime | None]


class WebInboxEntry(Base):
    """A message queued for a web chat person (reminder, offer, broadcast, notice), kept until
    their page fetches it: the web chat's way of being written to later."""

    __tablename__ = "web_inbox"
    __table_args__ = (Index("ix_web_inbox_contact_shown", "contact_id", "shown_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    # The outbox row it came from: a row sent again after a crash is kept once.
    outbox_id: Mapped[int | None] = mapped_column(unique=True)
    # The reply as the web chat API gives it: {"text": ..., "choices": [...], "media": [...]}.
    reply: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    shown_at: Mapped[dt.datetime | None]


class WebPushSubscription(Base):
    """A browser's Web Push subscription for a web chat person (the Push API's endpoint and
    keys), to tell them a message waits in their inbox."""

    __tablename__ = "web_push_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"),
                                            index=True)
    endpoint: Mapped[str] = mapped_column(String(1024), unique=True)
    p256dh: Mapped[str] = mapped_column(String(128))
    auth: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ServiceKey(Base):
    """A key the service made for itself once and must keep across restarts and processes
    (the Web Push VAPID key pair when no setting gives one)."""

    __tablename__ = "service_keys"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class TrafficMinute(Base):
    """How many messages came in, per fair, minute (UTC), channel and language: what the
    organizer console's "messages per minute" reads, whichever process took them."""

    __tablename__ = "traffic_minutes"

    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id", ondelete="CASCADE"),
                                         primary_key=True)
    minute: Mapped[dt.datetime] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    language: Mapped[str] = mapped_column(String(8), primary_key=True)
    messages: Mapped[int] = mapped_column(Integer, default=0)


class ErasedContacts(Base):
    """How many people were erased, by channel, language and the quarter hour they first
    wrote in (UTC, as seconds since the epoch / 900): the report still counts them, naming
    nobody."""

    __tablename__ = "erased_contacts"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    language: Mapped[str] = mapped_column(String(8), primary_key=True)
    quarter: Mapped[int] = mapped_column(Integer, primary_key=True)
    people: Mapped[int] = mapped_column(Integer, default=0)


class ConsoleAccount(Base):
    """Someone who may sign in to the organizer console (`tadamon admin add`): an organizer
    acts, a viewer only looks. The password is kept as an argon2 hash."""

    __tablename__ = "console_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[dt.datetime | None]


class ConsoleSession(Base):
    """A signed-in browser: the cookie's token, kept only as a hash."""

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("console_accounts.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]


class AuditEntry(Base):
    """One thing done in the organizer console or to its accounts: who, what, when. The
    actor is kept as written (an email), so the line outlives the account."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
