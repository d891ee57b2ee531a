"""What people asked, for the organizers: free texts counted per intent, and the questions that
were not understood, folded, cleaned of personal data and counted.

No person is kept: a row is a count per fair, local day (and channel, language, intent), and
a question is stored only once its phone numbers, long numbers, e-mail addresses, handles, links
and a name given with "je m'appelle", "my name is", "smiti" or "اسمي" are replaced by
placeholders. Free texts in files to share (comments, delivery errors) lose the same things
the same way, but are otherwise kept as written (`redact`).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.batch import GroupWrite
from storage.database import DATABASE_ERRORS
from storage.models import IntentCount as IntentCountRow
from storage.models import TrafficMinute, UnansweredQuestion, utcnow
from storage.repositories import Sessions
from storage.text import fold

log = logging.getLogger(__name__)

QUESTION_MAX = 200
"""Characters kept of a cleaned question."""

_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "0123456789" * 2)
# Placeholders are written after folding (fold would take their brackets away).
_PRIVATE = (
    ("<email>", re.compile(r"[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+")),
    ("<link>", re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|ma|net|org|"
                          r"fr|info|io|me|co|ly|gl|be)(?:/\S*)?\b", re.IGNORECASE)),
    ("<user>", re.compile(r"(?<!\w)@\w+")),
    # Phone numbers and any run of 6 digits or more, however they are grouped (06 12 34 56 78,
    # +212-612-345678, (0522) 12.34.56).
    ("<number>", re.compile(r"\+?\(?\d(?:[\s.\-/()]{0,3}\d){5,}")),
)
_PLACEHOLDER = re.compile(r"<(?:email|link|user|number|name)>")
# A person giving their name (folded forms): the one or two words after it are left out.
_NAME = re.compile(r"\b(je m appelle|mon nom est|mon nom c est|my name is|my name s|smiti|"
                   r"smiya dyali|ana smiti|اسمي|انا اسمي)((?: (?!<)[^ ]+){1,2})")


def clean_question(text: str) -> str | None:
    """The question as it is stored: personal data replaced by placeholders (<number>,
    <email>, <link>, <user>, <name>), folded
    (storage.text.fold), cut to QUESTION_MAX characters; None when nothing is left."""
    words = [piece if private else fold(piece) for piece, private in _private_pieces(text)]
    cleaned = " ".join(word for word in words if word)
    # Folding may bring digits closer (a run split by punctuation or other scripts' digits).
    cleaned = _PRIVATE[-1][1].sub("<number>", cleaned)
    cleaned = _NAME.sub(r"\1 <name>", cleaned)
    cleaned = cleaned[:QUESTION_MAX].strip()
    # A placeholder cut in two says nothing private, but reads badly: drop the stump.
    stump = cleaned.rfind("<")
    if stump != -1 and not _PLACEHOLDER.match(cleaned, stump):
        cleaned = cleaned[:stump].strip()
    return cleaned or None


def redact(text: str) -> str:
    """`text` as it was written, but for what `clean_question` leaves out: phone numbers and
    long numbers, e-mail addresses, links, handles and a name given with "je m'appelle",
    "smiti", "اسمي"... replaced by the same placeholders (for free texts in shared files: a
    comment, a delivery error). Neither folded nor cut."""
    pieces = _private_pieces(text)
    # Found on the folded words, as `clean_question` finds them (a number whose digits only
    # folding brings together, a name after "je m'appelle"), then replaced in the written ones:
    # each written word and the span of its folded form.
    words: list[tuple[str, bool]] = []
    spans: list[tuple[int, int]] = []
    folded = ""
    for piece, private in pieces:
        for word in [piece] if private else re.split(r"(\s+)", piece):
            form = word if private else fold(word)
            if form:
                folded += " " if folded else ""
                spans.append((len(folded), len(folded) + len(form)))
                folded += form
            else:
                spans.append((-1, -1))
            words.append((word, private))
    hidden: dict[int, str] = {}  # word index -> its placeholder
    found = [("<number>", match.span()) for match in _PRIVATE[-1][1].finditer(folded)]
    found += [("<name>", match.span(2)) for match in _NAME.finditer(folded)]
    for mark, (start, end) in found:
        for index, (first, after) in enumerate(spans):
            if first < end and start < after and not words[index][1]:
                hidden[index] = mark
    written: list[str] = []
    last = -1  # where in `written` the last placeholder is
    for index, (word, _private) in enumerate(words):
        placeholder = hidden.get(index)
        if placeholder is None:
            written.append(word)
        elif last >= 0 and written[last] == placeholder and not "".join(
                written[last + 1:]).strip():
            del written[last + 1:]  # one placeholder for words hidden together
        else:
            last = len(written)
            written.append(placeholder)
    return "".join(written)


def _private_pieces(text: str) -> list[tuple[str, bool]]:
    """`text` (NFKC, ASCII digits) cut into pieces, each either written text or the placeholder
    of what was found private there (True)."""
    text = unicodedata.normalize("NFKC", text).translate(_DIGITS)
    pieces: list[tuple[str, bool]] = [(text, False)]
    for placeholder, pattern in _PRIVATE:
        pieces = [part for piece in pieces for part in _split(piece, placeholder, pattern)]
    return pieces


def _split(piece: tuple[str, bool], placeholder: str, pattern: re.Pattern[str]
           ) -> list[tuple[str, bool]]:
    text, private = piece
    if private:
        return [piece]
    parts: list[tuple[str, bool]] = []
    start = 0
    for match in pattern.finditer(text):
        parts += [(text[start:match.start()], False), (placeholder, True)]
        start = match.end()
    parts.append((text[start:], False))
    return parts


@dataclass(frozen=True, slots=True)
class IntentCount:
    """Free texts understood as one intent on one day, channel and language."""

    day: dt.date
    channel: str
    language: str
    intent: str
    messages: int


@dataclass(frozen=True, slots=True)
class QuestionCount:
    """A question that was not understood, how often, and when first and last."""

    question: str
    count: int
    first_seen: dt.datetime
    last_seen: dt.datetime


class IntentKey(NamedTuple):
    """An intent count's row: free texts per fair, local day, channel, language, intent."""

    fair_id: int
    day: dt.date
    channel: str
    language: str
    intent: str


class TrafficKey(NamedTuple):
    """A traffic count's row: messages per fair, minute (UTC), channel and language."""

    fair_id: int
    minute: dt.datetime
    channel: str
    language: str


CountKey = IntentKey | TrafficKey
# Seconds a count waits for others before they are written together.
COUNTS_LINGER = 0.5


class QuestionLog:
    """Counts of what people wrote, by intent, and of the questions not understood."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        # Every free text adds one to a count, and every message one to its minute's: those
        # arriving together are written together (one transaction), as card views are.
        self._counts: GroupWrite[CountKey] = GroupWrite(self._write_counts,
                                                        linger=COUNTS_LINGER)

    def count_message(self, fair_id: int, channel: str, language: str | None,
                      now: dt.datetime) -> None:
        """Count one message taken in, in its minute (`now`, aware), for the console's
        messages per minute; written with the next batch of counts (`flush`)."""
        minute = now.astimezone(dt.UTC).replace(second=0, microsecond=0)
        self._counts.count(TrafficKey(fair_id, minute, channel, language or ""))

    async def record(self, fair_id: int, day: dt.date, channel: str, language: str | None,
                     intent: str, question: str | None, now: dt.datetime | None = None) -> None:
        """Count one understood free text (`day`: the fair's local day). `question` is given
        when it was not understood: it is stored cleaned (`clean_question`) and counted.
        Only statistics: when the database is down they are lost (logged), nothing else."""
        cleaned = clean_question(question) if question else None
        moment = now or utcnow()
        if cleaned is None:  # written with the others of the next COUNTS_LINGER seconds
            self._counts.count(IntentKey(fair_id, day, channel, language or "", intent))
            return
        try:
            async with self.sessions() as session, session.begin():
                await self._add_intent(session, fair_id, day, channel, language or "", intent)
                if cleaned is not None:
                    await self._add_question(session, fair_id, day, cleaned, moment)
        except DATABASE_ERRORS:
            # The text itself is never logged: it may hold what the person would not share.
            log.warning("intent %s on %s not counted: database unavailable", intent, channel)

    async def flush(self) -> None:
        """Write the counts kept so far (at shutdown)."""
        await self._counts.flush()

    async def _write_counts(self, counts: Counter[CountKey]) -> None:
        try:
            async with self.sessions() as session, session.begin():
                for key, messages in counts.items():
                    if isinstance(key, TrafficKey):
                        await self._add_traffic(session, key, messages)
                    else:
                        await self._add_intent(session, key.fair_id, key.day, key.channel,
                                               key.language, key.intent, messages)
        except DATABASE_ERRORS:
            log.warning("%d counts not written: database unavailable", counts.total())

    @staticmethod
    def _insert(session: AsyncSession) -> Any:
        dialect = session.get_bind().dialect.name
        return postgresql_insert if dialect == "postgresql" else sqlite_insert

    async def _add_intent(self, session: AsyncSession, fair_id: int, day: dt.date,
                          channel: str, language: str, intent: str, messages: int = 1) -> None:
        statement = self._insert(session)(IntentCountRow).values(
            fair_id=fair_id, day=day, channel=channel, language=language, intent=intent,
            messages=messages)
        await session.execute(statement.on_conflict_do_update(
            index_elements=["fair_id", "day", "channel", "language", "intent"],
            set_={"messages": IntentCountRow.messages + messages}))

    async def _add_traffic(self, session: AsyncSession, key: TrafficKey, messages: int
                           ) -> None:
        statement = self._insert(session)(TrafficMinute).values(
            fair_id=key.fair_id, minute=key.minute, channel=key.channel,
            language=key.language, messages=messages)
        await session.execute(statement.on_conflict_do_update(
            index_elements=["fair_id", "minute", "channel", "language"],
            set_={"messages": TrafficMinute.messages + messages}))

    async def _add_question(self, session: AsyncSession, fair_id: int, day: dt.date,
                            question: str, moment: dt.datetime) -> None:
        statement = self._insert(session)(UnansweredQuestion).values(
            fair_id=fair_id, day=day, question=question, times=1, first_seen=moment,
            last_seen=moment)
        # Racing records may commit out of order: keep the earliest and the latest times
        # (SQLite's two-argument min and max are PostgreSQL's least and greatest).
        sqlite = session.get_bind().dialect.name == "sqlite"
        earlier, later = (func.min, func.max) if sqlite else (func.least, func.greatest)
        await session.execute(statement.on_conflict_do_update(
            index_elements=["fair_id", "day", "question"],
            set_={"times": UnansweredQuestion.times + 1,
                  "first_seen": earlier(UnansweredQuestion.first_seen,
                                        statement.excluded.first_seen),
                  "last_seen": later(UnansweredQuestion.last_seen,
                                     statement.excluded.last_seen)}))

    async def intent_counts(self, fair_id: int, day: dt.date | None = None
                            ) -> list[IntentCount]:
        """Free texts per day, channel, language and intent (on `day` only, when given), by
        day then channel, language and intent."""
        query = select(IntentCountRow).where(IntentCountRow.fair_id == fair_id)
        if day is not None:
            query = query.where(IntentCountRow.day == day)
        async with self.sessions() as session:
            rows = await session.scalars(
                query.order_by(IntentCountRow.day, IntentCountRow.channel,
                               IntentCountRow.language, IntentCountRow.intent))
            return [IntentCount(row.day, row.channel, row.language, row.intent, row.messages)
                    for row in rows]

    async def top_questions(self, fair_id: int, day: dt.date | None = None,
                            limit: int | None = 5) -> list[QuestionCount]:
        """The questions not understood on `day` (None: over the whole fair), most frequent
        first (then the most recent); `limit` None for all of them."""
        count = func.sum(UnansweredQuestion.times).label("count")
        last = func.max(UnansweredQuestion.last_seen).label("last")
        query = (select(UnansweredQuestion.question, count,
                        func.min(UnansweredQuestion.first_seen), last)
                 .where(UnansweredQuestion.fair_id == fair_id)
                 .group_by(UnansweredQuestion.question)
                 .order_by(count.desc(), last.desc(), UnansweredQuestion.question))
        if day is not None:
            query = query.where(UnansweredQuestion.day == day)
        if limit is not None:
            query = query.limit(limit)
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
        return [QuestionCount(question, int(total), _utc(first), _utc(latest))
                for question, total, first, latest in rows]


def _utc(value: Any) -> dt.datetime:
    """An aggregate of a UTC column: SQLite answers a naive datetime (or its text)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
