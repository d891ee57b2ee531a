"""One way to check and queue an organizers' broadcast, for `tadamon broadcast` and the console:
the audience, the texts and the time are checked the same way, with the same messages, and the
broadcast is queued by `Outbox.queue_broadcast`, as the chat's own broadcasts are."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from bot.errors import BadInput, CatalogueError
from handlers.organizers import TEXT_MAX
from storage.catalogue import active_fair
from storage.outbox import Outbox, audience_filter
from storage.repositories import Sessions

# How far in the past `--at` may be: the time it takes to type the command and confirm.
AT_SLACK = dt.timedelta(minutes=1)
LANGUAGES = ("fr", "ar")


class BroadcastInputError(BadInput):
    """What is wrong with a broadcast: the message the command line prints, and for the
    console which field (`audience`, `text_fr`, `text_ar`, `at`, `fair`) and why (`required`,
    `audience`, `workshop`, `time`, `past`, `too_long`, `no_fair`), with the values saying it."""

    def __init__(self, message: str, field: str, reason: str, **values: Any) -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason
        self.values = values


@dataclass(frozen=True, slots=True)
class Draft:
    """A broadcast as written, its form checked: whom, what in each language, when as
    written (None: now; its time zone is the fair's when it names none), urgent or not."""

    audience: str
    text: dict[str, str]
    at: str | None
    moment: dt.datetime | None
    urgent: bool = False


@dataclass(frozen=True, slots=True)
class Planned:
    """A draft checked against the served fair: ready to be queued."""

    draft: Draft
    fair_id: int
    timezone: str
    when: dt.datetime
    """The UTC time it goes at."""


def read(audience: str | None, text_fr: str | None, text_ar: str | None, at: str | None,
         urgent: bool = False) -> Draft:
    """The broadcast as written, its form checked (the audience's shape, the time's format,
    the texts' lengths); BroadcastInputError saying what is wrong."""
    written = {"fr": (text_fr or "").strip(), "ar": (text_ar or "").strip()}
    if audience is None or not all(written.values()):
        missing = "audience" if audience is None else next(
            f"text_{language}" for language in LANGUAGES if not written[language])
        raise BroadcastInputError("--audience, --text-fr and --text-ar are required",
                                  missing, "required")
    try:
        audience_filter(audience)
    except ValueError as exc:
        raise BroadcastInputError(f"--audience: {exc}", "audience", "audience",
                                  audience=audience) from None
    moment = read_at(at)
    for language, text in written.items():
        if len(text) > TEXT_MAX:
            raise BroadcastInputError(
                f"--text-{language}: {len(text)} characters, a broadcast holds at most "
                f"{TEXT_MAX} (what a WhatsApp template carries)", f"text_{language}",
                "too_long", length=len(text), limit=TEXT_MAX)
    return Draft(audience, written, at, moment, urgent)


def read_at(at: str | None) -> dt.datetime | None:
    """`--at` as written (its time zone is the fair's when it names none); None: now."""
    if at is None:
        return None
    try:
        return dt.datetime.fromisoformat(at)
    except ValueError:
        raise BroadcastInputError(f"--at: {at!r} is not an ISO time like 2026-12-13T09:00",
                                  "at", "time", at=at) from None


def when(draft: Draft, timezone: str, now: dt.datetime | None = None) -> dt.datetime:
    """The UTC time to send at: the draft's moment read in `timezone`, now when not given;
    refused when past (a minute of slack is allowed)."""
    now = now or dt.datetime.now(dt.UTC)
    moment = draft.moment
    if moment is None:
        return now
    zone = ZoneInfo(timezone)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    if moment < now - AT_SLACK:
        local = now.astimezone(zone)
        raise BroadcastInputError(
            f"--at: {draft.at!r} is in the past (it is {local:%Y-%m-%dT%H:%M} in {timezone}; a "
            "minute of slack is allowed): leave --at out to send now", "at", "past",
            now=local, timezone=timezone)
    return moment.astimezone(dt.UTC)


async def plan(sessions: Sessions, draft: Draft, default_timezone: str) -> Planned:
    """The draft checked against the served fair: its time in the fair's own time zone (as
    conversations show times), its audience's workshop one of the fair's."""
    async with sessions() as session:
        fair = await active_fair(session)
    timezone = default_timezone if fair is None else fair.timezone
    moment = when(draft, timezone)
    if fair is None:
        raise CatalogueError("no fair is loaded: import a catalogue first")
    try:
        await Outbox(sessions).check_audience(fair.id, draft.audience)
    except ValueError as exc:
        raise BroadcastInputError(f"--audience: {exc}", "audience", "workshop",
                                  workshop=draft.audience.removeprefix("workshop:")) from None
    return Planned(draft, fair.id, timezone, moment)


async def queue(sessions: Sessions, planned: Planned,
                created_by: int | None = None) -> tuple[int, int]:
    """Queue a planned broadcast (one outbox row per recipient); (its id, recipients)."""
    draft = planned.draft
    return await Outbox(sessions).queue_broadcast(planned.fair_id, draft.audience, draft.text,
                                                  planned.when, draft.urgent, created_by)


def local(moment: dt.datetime, timezone: str) -> str:
    """`2026-12-13 09:00 (Africa/Casablanca)`: what a preview shows of when it goes."""
    return f"{moment.astimezone(ZoneInfo(timezone)):%Y-%m-%d %H:%M} ({timezone})"
