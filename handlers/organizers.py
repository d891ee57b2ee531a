"""Organizers compose a broadcast in chat: French text, Arabic text, audience, when, preview,
confirm. Nobody else reaches this conversation."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from enum import StrEnum

from handlers.buttons import Button, Rest
from handlers.context import Context
from handlers.feature import Feature
from handlers.figures import CHANNEL_NAMES, figure_lines, question_lines, workshop_lines
from handlers.flows import FlowData
from handlers.menu import back_to_menu
from handlers.messages import (
    Choice,
    Content,
    Isolated,
    Local,
    Media,
    Reply,
    When,
    _,
    _n,
    reply,
)
from handlers.moments import Unread, read_moment
from handlers.pictures import SummaryChart
from handlers.talk import unknown
from handlers.understanding import Intent
from storage.models import Role
from storage.notices import BroadcastNotice, ReminderNotice, WrittenNotice

feature = Feature("organizers", Intent.ORGANIZER)


@feature.states
class Flow(StrEnum):
    """The organizers' flow, as the session stores it."""

    BROADCAST = "broadcast"


class Step(StrEnum):
    """The steps of a broadcast being written, in order."""

    FR = "fr"
    AR = "ar"
    AUDIENCE = "audience"
    WHEN = "when"
    CONFIRM = "confirm"


@dataclass(frozen=True)
class BroadcastDraft(FlowData, state=Flow.BROADCAST):
    """The broadcast being written: the step it is at and what is written so far."""

    step: Step
    fr: str = ""
    ar: str = ""
    audience: str = "all"
    at: dt.datetime | None = None


class BroadcastCancel(Button, prefix="bc:cancel"):
    """Drop the broadcast being written."""


class BroadcastAudience(Button, prefix="bc:aud"):
    """Who receives the broadcast: an audience key, `lang:ar` included."""

    audience: Rest


class BroadcastWorkshops(Button, prefix="bc:wss"):
    """The registrants of a workshop receive the broadcast: which workshop, a page of them."""

    page: int = 0


class BroadcastWorkshop(Button, prefix="bc:ws"):
    """The registrants of this workshop (and its waiting list) receive the broadcast."""

    workshop_id: int


class BroadcastNow(Button, prefix="bc:now"):
    """Send the broadcast now."""


class BroadcastConfirm(Button, prefix="bc:confirm"):
    """Send the broadcast as previewed."""


class StatsPage(Button, prefix="stats"):
    """A further page of `/stats`' lines."""

    page: int


AUDIENCES: dict[str, Content] = {
    "all": _("Everyone"),
    "visitors": _("Visitors"),
    "cooperatives": _("Cooperatives"),
    "lang:ar": _("Arabic speakers"),
    "lang:fr": _("French speakers"),
}
WORKSHOP_AUDIENCE = "workshop:"
"""`workshop:<key>`: those registered for a workshop, its waiting list included (CONTRACT)."""
WORKSHOPS_PAGE = 8
"""Workshops offered on one page when choosing whose registrants receive a broadcast."""
STATS_PAGE = 15
"""Lines of `/stats` in one message: about what a phone shows without scrolling."""
TOP_QUESTIONS = 5
"""Questions not understood that `/stats` shows, of the fair's current day."""
# The longest broadcast text. The strictest limit on the way is WhatsApp's: someone whose
# 24-hour window has closed gets a broadcast as a template, whose text parameter holds at most
# 1024 characters (a Telegram message holds 4096, a WhatsApp text 4096). 1000 leaves room for
# the line breaks a template shows as " · ".
TEXT_MAX = 1000


async def is_organizer(ctx: Context) -> bool:
    """Whether the person may broadcast and read the figures, asked of the database at each
    organizer-only action (the conversation's copy of the person may be up to a minute old, and
    `tadamon organizer remove` must count at once). A role taken back ends the broadcast being
    composed, and the conversation's copy is corrected."""
    role = await ctx.contacts.role(ctx.contact.id)
    if role is not None and role != ctx.contact.role:
        ctx.contact = replace(ctx.contact, role=role)
    if role == Role.ORGANIZER:
        return True
    if ctx.flow is Flow.BROADCAST:
        ctx.leave()
    return False


@feature.intent(Intent.ORGANIZER)
async def organizer_help(ctx: Context) -> list[Reply]:
    """An organizer asks what they can do: their commands; anyone else is not understood."""
    if not await is_organizer(ctx):
        ctx.intent = Intent.UNKNOWN
        return await unknown(ctx)
    return [reply(_("As an organizer, you can send:"),
                  _("• broadcast: write an announcement to everyone, or to some"),
                  _("• stats: the day's figures and how full the workshops are"),
                  choices=[back_to_menu()])]


@feature.command("broadcast", organizer=True, words={
    "en": ["broadcast"], "fr": ["diffusion", "annonce"], "ar": ["بث"]})
async def start(ctx: Context) -> list[Reply]:
    """`/broadcast`: the first step, the French text."""
    ctx.enter(BroadcastDraft(step=Step.FR))
    return [reply(_("New broadcast. Each person receives it in their language."),
                  _("Write the French text:"),
                  choices=[Choice(BroadcastCancel().pack(), _("Cancel"))])]


@feature.flow(Flow.BROADCAST, long_text=True, organizer=True)
async def text(ctx: Context, written: str) -> list[Reply]:
    """A step that expects text: the French or Arabic message, or the time."""
    draft = ctx.data
    if not isinstance(draft, BroadcastDraft):
        return await start(ctx)
    step = draft.step
    written = written.strip()
    if step in (Step.FR, Step.AR) and not 0 < len(written) <= TEXT_MAX:
        return [reply(_("The text must be between 1 and {limit} characters.", limit=TEXT_MAX),
                      choices=[Choice(BroadcastCancel().pack(), _("Cancel"))])]
    if step is Step.FR:
        ctx.update(replace(draft, fr=written, step=Step.AR))
        return [reply(_("Now the Arabic text:"),
                      choices=[Choice(BroadcastCancel().pack(), _("Cancel"))])]
    if step is Step.AR:
        ctx.update(replace(draft, ar=written, step=Step.AUDIENCE))
        return [reply(_("Who should receive it?"),
                      choices=[Choice(BroadcastAudience(key).pack(), label)
                               for key, label in AUDIENCES.items()]
                      + [Choice(BroadcastWorkshops().pack(), _("Registrants of a workshop")),
                         Choice(BroadcastCancel().pack(), _("Cancel"))])]
    if step is Step.WHEN:
        moment = read_moment(written, ctx.now, ctx.zone)
        if moment is Unread.PAST:
            return [reply(_("This time is already past: it is {now}. Write a time to come, "
                            "for example tomorrow 9:00, or tap Now.",
                            now=When(ctx.now, "day_time")), choices=_when_choices())]
        if isinstance(moment, Unread):
            return [reply(_("I could not read “{written}” as a time. Write for example: "
                            "tomorrow 9:00, 13/12 9:00, 14:30, or tap Now.",
                            written=Isolated(written[:40])), choices=_when_choices())]
        return await _preview(ctx, draft, moment)
    return await start(ctx)


def _when_choices() -> list[Choice]:
    return [Choice(BroadcastNow().pack(), _("Now")),
            Choice(BroadcastCancel().pack(), _("Cancel"))]


def _ask_when() -> Reply:
    return reply(_("When? Tap Now, or write a day and a time: tomorrow 9:00, 13/12 9:00, "
                   "today 18:00."), choices=_when_choices())


async def _workshop_choices(ctx: Context, page: int) -> list[Reply]:
    """The workshops not yet over, a page at a time, whose registrants may receive it."""
    workshops = [workshop for workshop in await ctx.catalogue.workshops(ctx.fair.id)
                 if not workshop.cancelled and workshop.ends_at > ctx.now]
    workshops.sort(key=lambda workshop: (workshop.starts_at, workshop.id))
    if not workshops:
        return [reply(_("No workshop is planned at this fair."),
                      choices=[Choice(BroadcastCancel().pack(), _("Cancel"))])]
    page = min(max(page, 0), (len(workshops) - 1) // WORKSHOPS_PAGE)
    shown = workshops[page * WORKSHOPS_PAGE:(page + 1) * WORKSHOPS_PAGE]
    choices = [Choice(BroadcastWorkshop(workshop.id).pack(),
                      _("{when} · {title}", title=Local(workshop.title), when=Isolated(
                          f"{workshop.starts_at.astimezone(ctx.zone):%d/%m %H:%M}")))
               for workshop in shown]
    if (page + 1) * WORKSHOPS_PAGE < len(workshops):
        choices.append(Choice(BroadcastWorkshops(page + 1).pack(), _("More")))
    return [reply(_("Which workshop? Its registrants, and its waiting list, will receive the "
                    "announcement."),
                  choices=[*choices, Choice(BroadcastCancel().pack(), _("Cancel"))])]


async def _audience_label(ctx: Context, audience: str) -> Content:
    """What the preview calls the audience."""
    if not audience.startswith(WORKSHOP_AUDIENCE):
        return AUDIENCES[audience]
    workshop = await ctx.catalogue.workshop_by_key(ctx.fair.id,
                                                   audience.removeprefix(WORKSHOP_AUDIENCE))
    title = Local(workshop.title) if workshop else Local({"fr": audience})
    return _("Registrants of the workshop “{title}”", title=title)


@feature.button(BroadcastCancel, BroadcastAudience, BroadcastWorkshops, BroadcastWorkshop,
                BroadcastNow, BroadcastConfirm, organizer=True)
async def choose(ctx: Context, button: Button) -> list[Reply]:
    """The buttons of the broadcast conversation."""
    data = ctx.data
    draft = data if isinstance(data, BroadcastDraft) else None
    if isinstance(button, BroadcastCancel):
        ctx.leave()
        return [reply(_("Broadcast cancelled: nothing was sent."), choices=[back_to_menu()])]
    if draft is None:
        return await start(ctx)
    if isinstance(button, BroadcastAudience) and button.audience in AUDIENCES:
        ctx.update(replace(draft, audience=button.audience, step=Step.WHEN))
        return [_ask_when()]
    if isinstance(button, BroadcastWorkshops) and draft.step is Step.AUDIENCE:
        return await _workshop_choices(ctx, button.page)
    if isinstance(button, BroadcastWorkshop) and draft.step is Step.AUDIENCE:
        workshop = await ctx.catalogue.workshop(ctx.fair.id, button.workshop_id)
        if workshop is None or workshop.cancelled:
            return await _workshop_choices(ctx, 0)
        ctx.update(replace(draft, audience=WORKSHOP_AUDIENCE + workshop.key, step=Step.WHEN))
        return [_ask_when()]
    if isinstance(button, BroadcastNow) and draft.step is Step.WHEN:
        return await _preview(ctx, draft, ctx.now)
    if isinstance(button, BroadcastConfirm) and draft.step is Step.CONFIRM and draft.at:
        return await _queue(ctx, draft, draft.at)
    return await start(ctx)


async def _preview(ctx: Context, draft: BroadcastDraft, moment: dt.datetime) -> list[Reply]:
    audience = draft.audience
    by_channel = await ctx.outbox.recipients_by_channel(audience)
    count = sum(by_channel.values())
    ctx.update(replace(draft, at=moment, step=Step.CONFIRM))
    reach: list[Content] = [
        _n("• {channel}: {n} person", "• {channel}: {n} people", n,
           channel=CHANNEL_NAMES.get(channel, channel))
        for channel, n in by_channel.items()]
    if by_channel.get("web"):
        reach.append(_("Web chat visitors find it on the page when they come back, and as a "
                       "notification where they allowed it."))
    return [reply(
        _("Preview"),
        _n("{audience}: {n} person, {when}.", "{audience}: {n} people, {when}.", count,
           audience=await _audience_label(ctx, audience), when=When(moment, "day_time")),
        *reach,
        "FR: " + draft.fr,
        "AR: " + draft.ar,
        choices=[Choice(BroadcastConfirm().pack(), _("Send")),
                 Choice(BroadcastCancel().pack(), _("Cancel"))],
    )]


async def _queue(ctx: Context, draft: BroadcastDraft, moment: dt.datetime) -> list[Reply]:
    ctx.leave()
    broadcast_id, count = await ctx.outbox.queue_broadcast(
        ctx.fair.id, draft.audience, {"fr": draft.fr, "ar": draft.ar},
        moment, created_by=ctx.contact.id)
    return [reply(_n("Broadcast {id} queued for {n} person.",
                     "Broadcast {id} queued for {n} people.", count,
                     id=Isolated(str(broadcast_id))),
                  _("Follow it with: tadamon broadcast status {id}",
                    id=Isolated(str(broadcast_id))),
                  choices=[back_to_menu()])]


@feature.command("stats", organizer=True, words={
    "en": ["stats"], "fr": ["statistiques"], "ar": ["إحصائيات", "احصائيات"]})
async def stats(ctx: Context) -> list[Reply]:
    """`/stats`: the key figures with one chart of the fair's ratings and the seats taken, the
    day's most frequent questions not understood, and how full each workshop is, a page of
    `STATS_PAGE` lines at a time (`tadamon report` has the rest)."""
    return await _stats_page(ctx, 0)


@feature.button(StatsPage, organizer=True)
async def _more_stats(ctx: Context, button: StatsPage) -> list[Reply]:
    return await _stats_page(ctx, button.page)


async def _stats_page(ctx: Context, page: int) -> list[Reply]:
    """One page of `/stats`, counted afresh; the first with the chart, drawn from the very
    figures its lines give."""
    rates = tuple(await ctx.reports.workshop_fill(ctx.fair.id))
    questions = await ctx.reports.questions.top_questions(
        ctx.fair.id, ctx.local_day(ctx.now), limit=TOP_QUESTIONS)
    lines = [*figure_lines(await ctx.reports.key_figures(ctx.fair.id)),
             *question_lines(questions), *workshop_lines(rates, ctx.zone)]
    pages = max(1, -(-len(lines) // STATS_PAGE))
    page = min(max(page, 0), pages - 1)
    choices = [back_to_menu()]
    if page + 1 < pages:
        choices.insert(0, Choice(StatsPage(page + 1).pack(), _("More")))
    shown = lines[page * STATS_PAGE:(page + 1) * STATS_PAGE]
    if page:
        return [reply(_("Figures, page {page} of {pages}:", page=page + 1, pages=pages),
                      *shown, choices=choices)]
    chart = Media("image", filename="stats.png", mime="image/png",
                  picture=SummaryChart(await ctx.reports.fair_ratings(ctx.fair.id), rates),
                  caption=_("Ratings of the fair and seats taken in each workshop"))
    return [reply(*shown, media=[chart], choices=choices)]


# Outbox messages: what the organizers wrote.

@feature.renders(BroadcastNotice, ReminderNotice)
def _written(payload: WrittenNotice) -> Reply:
    return reply(Local(payload.text))


def broadcast_progress(broadcast_id: int, counts: dict[str, int],
                       seconds_left: float | None) -> Reply:
    """What the organizer sees of their broadcast: edited as it goes, then its outcome."""
    total = sum(counts.values())
    done = counts["sent"] + counts["failed"] + counts["skipped"]
    number = Isolated(str(broadcast_id))
    if done >= total:
        return reply(_("Broadcast {id} finished: {sent} sent, {skipped} skipped, {failed} "
                       "failed.", id=number, sent=counts["sent"], skipped=counts["skipped"],
                       failed=counts["failed"]))
    percent = 100 * done // total if total else 100
    if seconds_left is None:
        return reply(_("Broadcast {id}: {done} of {total} sent ({percent}%).", id=number,
                       done=done, total=total, percent=percent))
    return reply(_("Broadcast {id}: {done} of {total} sent ({percent}%), about {minutes} min "
                   "left.", id=number, done=done, total=total, percent=percent,
                   minutes=max(1, round(seconds_left / 60))))
