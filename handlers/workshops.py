"""Workshops: the programme by day, and a card per workshop with its registration buttons."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from handlers.buttons import Button
from handlers.context import Context
from handlers.feature import Feature
from handlers.info import PlaceMap
from handlers.menu import MenuItem, back_to_menu
from handlers.messages import Choice, Content, Local, Reply, When, _, _n, reply
from handlers.seat_buttons import Register, Unregister, offer_choices
from handlers.understanding import Intent
from storage.models import RegistrationStatus, Role
from storage.repositories import WorkshopView

feature = Feature("workshops", Intent.WORKSHOPS)

# The shape of a workshop id in a deep link (`ws_<id>`), as catalogues write them.
_WORKSHOP_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


class WorkshopDay(Button, prefix="wsd"):
    """The workshops of the fair's n-th day (a page of them)."""

    index: int
    page: int = 0


class WorkshopCard(Button, prefix="ws"):
    """One workshop's card."""

    workshop_id: int


class WorkshopTopic(Button, prefix="wst"):
    """The workshops of the n-th topic (a page of them)."""

    index: int
    page: int = 0


class WorkshopLanguage(Button, prefix="wsl"):
    """The workshops given in a language (a page of them)."""

    language: str
    page: int = 0


PAGE = 7
"""Workshops listed at once, a button each: a phone screen's worth; "More" shows the next.
Seven, so that a page with "More" and its two ways back is one WhatsApp list (ten rows)."""


LANGUAGE_LABELS = {"ar": _("in Arabic"), "fr": _("in French"), "ar+fr": _("in Arabic and French")}
# The card's line: the languages named as nouns ("Langue : arabe et français").
LANGUAGE_LINES = {"ar": _("Language: Arabic"), "fr": _("Language: French"),
                  "ar+fr": _("Language: Arabic and French")}


def seats(workshop: WorkshopView) -> Content:
    if workshop.cancelled:
        return _("cancelled")
    if workshop.seats_left == 0:
        if workshop.waiting:
            return _n("full, {n} on the waiting list", "full, {n} on the waiting list",
                      workshop.waiting)
        return _("full")
    return _n("{n} seat left", "{n} seats left", workshop.seats_left)


def _listed_seats(workshop: WorkshopView) -> Content:
    """Seats left, and whether the workshop is only for the exhibiting cooperatives."""
    if workshop.audience == "cooperatives":
        return _("{seats} · cooperatives only", seats=seats(workshop))
    return seats(workshop)


def _labels(workshops: list[WorkshopView]) -> dict[int, Content]:
    """Each workshop's button label: its title, with its day and time when the list has
    another session of the same title (two "Bonne gouvernance" buttons are told apart)."""
    counts: dict[tuple[str, ...], int] = {}
    for workshop in workshops:
        key = tuple(sorted(workshop.title.values()))
        counts[key] = counts.get(key, 0) + 1
    return {workshop.id: _("{title} · {when}", title=Local(workshop.title),
                           when=When(workshop.starts_at, "short"))
            if counts[tuple(sorted(workshop.title.values()))] > 1 else Local(workshop.title)
            for workshop in workshops}


def _page(workshops: list[WorkshopView], page: int) -> tuple[list[WorkshopView], int]:
    """The workshops of page `page` (the first when it is past the end) and its number."""
    if not 0 <= page * PAGE < len(workshops):
        page = 0
    return workshops[page * PAGE:(page + 1) * PAGE], page


def _more(workshops: list[WorkshopView], page: int, button: Button) -> list[Choice]:
    """The "More" button when workshops are left after page `page`."""
    return [Choice(button.pack(), _("More"))] if (page + 1) * PAGE < len(workshops) else []


def _days(ctx: Context, workshops: list[WorkshopView]) -> list[dt.date]:
    return sorted({ctx.local_day(workshop.starts_at) for workshop in workshops})


@feature.command("workshops", description=_("Workshops"), menu_item="ws", words={
    "en": ["workshops", "workshop"],
    "fr": ["ateliers", "atelier", "formations", "formation", "programme"],
    "ar": ["ورشات", "الورشات", "ورشة", "الورشة", "تكوين", "برنامج"]})
async def programme(ctx: Context) -> list[Reply]:
    """The days that have workshops, one button each."""
    ctx.leave()
    workshops = await ctx.catalogue.workshops(ctx.fair.id)
    if not workshops:
        return [reply(_("No workshop is planned at this fair."), choices=[back_to_menu()])]
    days = _days(ctx, workshops)
    noon = dt.time(12)
    return [reply(
        _n("{n} workshop for cooperatives and visitors.",
           "{n} workshops for cooperatives and visitors.", len(workshops)),
        _("Choose a day, a topic or a language:"),
        choices=[Choice(WorkshopDay(index).pack(),
                        When(dt.datetime.combine(day, noon, ctx.zone), "day"))
                 for index, day in enumerate(days)]
        + [Choice(MenuItem("wst").pack(), _("By topic")),
           Choice(MenuItem("wsl").pack(), _("By language")), back_to_menu()],
    )]


def _topics(workshops: list[WorkshopView]) -> list[dict[str, str]]:
    """The topics: the workshops' titles, each once (a topic has several sessions)."""
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for workshop in workshops:
        seen.setdefault((workshop.title.get("fr", ""), workshop.title.get("ar", "")),
                        workshop.title)
    return [seen[key] for key in sorted(seen)]


@feature.menu_item("wst")
async def topics(ctx: Context) -> list[Reply]:
    """One button per topic."""
    found = _topics(await ctx.catalogue.workshops(ctx.fair.id))
    if not found:
        return await programme(ctx)
    return [reply(_("Choose a topic:"),
                  choices=[*(Choice(WorkshopTopic(index).pack(), Local(title))
                             for index, title in enumerate(found)), back_to_menu()])]


async def topic(ctx: Context, index: int, page: int = 0) -> list[Reply]:
    """Every session of one topic."""
    workshops = await ctx.catalogue.workshops(ctx.fair.id)
    found = _topics(workshops)
    if not 0 <= index < len(found):
        return await topics(ctx)
    sessions = [w for w in workshops if w.title == found[index]]
    return _listing(ctx, _("{title}: every session", title=Local(found[index])), sessions,
                    Choice(MenuItem("wst").pack(), _("Other topics")), page,
                    lambda after: WorkshopTopic(index, after))


@feature.menu_item("wsl")
async def languages(ctx: Context) -> list[Reply]:
    return [reply(_("Which language should the workshop be in?"),
                  choices=[Choice(WorkshopLanguage("ar").pack(), _("In Arabic")),
                           Choice(WorkshopLanguage("fr").pack(), _("In French")),
                           back_to_menu()])]


async def in_language(ctx: Context, language: str, page: int = 0) -> list[Reply]:
    """The workshops given in `language` (alone or with the other one)."""
    if language not in ("ar", "fr"):
        return await languages(ctx)
    workshops = [w for w in await ctx.catalogue.workshops(ctx.fair.id)
                 if language in w.language.split("+")]
    return _listing(ctx, _("Workshops {language}:", language=LANGUAGE_LABELS[language]),
                    workshops, Choice(MenuItem("wsl").pack(), _("By language")), page,
                    lambda after: WorkshopLanguage(language, after))


def _listing(ctx: Context, title: Content, workshops: list[WorkshopView], other: Choice,
             page: int = 0, more: Callable[[int], Button] | None = None) -> list[Reply]:
    """A page of workshops, a line and a button each; "More" (the button `more` makes for the
    next page) when others follow."""
    labels = _labels(workshops)
    shown, page = _page(workshops, page)
    lines: list[Content] = [title]
    for workshop in shown:
        lines.append(_("{when} · {title} · {room} · {seats}",
                       when=When(workshop.starts_at, "day_time"), title=Local(workshop.title),
                       room=Local(workshop.room), seats=_listed_seats(workshop)))
    buttons = [Choice(WorkshopCard(workshop.id).pack(), labels[workshop.id])
               for workshop in shown]
    if more is not None:
        buttons += _more(workshops, page, more(page + 1))
    return [reply(*lines, choices=[*buttons, other, back_to_menu()])]


async def day(ctx: Context, index: int, page: int = 0) -> list[Reply]:
    """The workshops of one day: time, title, room and seats left; a button for each."""
    workshops = await ctx.catalogue.workshops(ctx.fair.id)
    days = _days(ctx, workshops)
    if not 0 <= index < len(days):
        return await programme(ctx)
    chosen = days[index]
    todays = [w for w in workshops if ctx.local_day(w.starts_at) == chosen]
    lines: list[Content] = [
        _("Workshops on {day}:", day=When(dt.datetime.combine(chosen, dt.time(12), ctx.zone),
                                           "day")),
    ]
    labels = _labels(todays)
    shown, page = _page(todays, page)
    for workshop in shown:
        lines.append(_("{start}–{end} · {title} · {room} · {seats}",
                       start=When(workshop.starts_at, "time"), end=When(workshop.ends_at, "time"),
                       title=Local(workshop.title), room=Local(workshop.room),
                       seats=_listed_seats(workshop)))
    buttons = [Choice(WorkshopCard(workshop.id).pack(), labels[workshop.id])
               for workshop in shown]
    buttons += _more(todays, page, WorkshopDay(index, page + 1))
    return [reply(*lines, choices=[*buttons, Choice(MenuItem("ws").pack(), _("Other days")),
                                   back_to_menu()])]


async def card(ctx: Context, workshop_id: int | None = None, key: str | None = None
               ) -> list[Reply]:
    """One workshop: title, speaker, when, where, language, audience and seats left."""
    if key is not None:
        workshop = await ctx.catalogue.workshop_by_key(ctx.fair.id, key)
    elif workshop_id is not None:
        workshop = await ctx.catalogue.workshop(ctx.fair.id, workshop_id)
    else:
        workshop = None
    if workshop is None:
        return [reply(_("I could not find this workshop. Here is the programme."))
                ] + await programme(ctx)
    lines: list[Content] = [Local(workshop.title)]
    if workshop.description:
        lines.append(Local(workshop.description))
    lines.append(_("When: {day}, from {start} to {end}", day=When(workshop.starts_at, "day"),
                   start=When(workshop.starts_at, "time"), end=When(workshop.ends_at, "time")))
    lines.append(_("Where: {room}", room=Local(workshop.room)))
    if workshop.speaker:
        lines.append(_("Led by: {speaker}", speaker=Local(workshop.speaker)))
    lines.append(LANGUAGE_LINES.get(workshop.language) or _(
        "Language: {language}", language=workshop.language))
    members_only = workshop.audience == "cooperatives" and ctx.contact.role not in (
        Role.COOPERATIVE, Role.ORGANIZER)
    if members_only:
        lines.append(_("{title} is for the cooperatives and associations exhibiting at the "
                       "fair. If you are a member, link this chat first with your "
                       "cooperative's code (ask the organizers).", title=Local(workshop.title)))
    elif workshop.audience == "cooperatives":
        lines.append(_("For cooperatives and associations exhibiting at the fair."))
    else:
        lines.append(_("Open to everyone."))
    if workshop.cancelled or workshop.seats_left == 0:
        lines.append(_("Seats: {seats}", seats=seats(workshop)))
    else:
        lines.append(_("Seats left: {left} of {capacity}", left=workshop.seats_left,
                       capacity=workshop.capacity))
    choices: list[Choice] = []
    if not workshop.cancelled and workshop.starts_at > ctx.now:
        held = {item.workshop_id: item
                for item in await ctx.registrations.mine(ctx.fair.id, ctx.contact.id)}
        registration = held.get(workshop.id)
        if registration is None:
            if not members_only:
                choices.append(Choice(Register(workshop.id).pack(),
                                      _("Join the waiting list") if workshop.seats_left == 0
                                      else _("Register")))
        elif registration.status == RegistrationStatus.OFFERED:
            lines.append(_("A seat is offered to you: accept it or decline it."))
            choices += offer_choices(workshop.id)
        elif registration.status == RegistrationStatus.WAITLISTED:
            lines.append(_("You are on the waiting list: number {position}.",
                           position=registration.position or 0))
            choices.append(Choice(Unregister(workshop.id).pack(), _("Leave the waiting list")))
        else:
            lines.append(_("You are registered."))
            choices.append(Choice(Unregister(workshop.id).pack(), _("Cancel my registration")))
    if workshop.place is not None:
        choices.append(Choice(PlaceMap(workshop.place).pack(), _("Room map")))
    day_index = _days(ctx, await ctx.catalogue.workshops(ctx.fair.id)).index(
        ctx.local_day(workshop.starts_at))
    return [reply(*lines, choices=[*choices,
                                   Choice(WorkshopDay(day_index).pack(), _("Back to the day")),
                                   back_to_menu()])]


@feature.button(WorkshopDay)
async def _day(ctx: Context, button: WorkshopDay) -> list[Reply]:
    return await day(ctx, button.index, button.page)


@feature.button(WorkshopCard, intent=Intent.WORKSHOP)
async def _card(ctx: Context, button: WorkshopCard) -> list[Reply]:
    return await card(ctx, workshop_id=button.workshop_id)


@feature.button(WorkshopTopic)
async def _topic(ctx: Context, button: WorkshopTopic) -> list[Reply]:
    return await topic(ctx, button.index, button.page)


@feature.button(WorkshopLanguage)
async def _in_language(ctx: Context, button: WorkshopLanguage) -> list[Reply]:
    return await in_language(ctx, button.language, button.page)


@feature.link("ws", intent=Intent.WORKSHOP)
async def _link(ctx: Context, value: str) -> list[Reply] | None:
    """`ws_<id>`: the workshop's card."""
    return await card(ctx, key=value) if _WORKSHOP_KEY.fullmatch(value) else None


@feature.intent(Intent.WORKSHOPS)
async def asked_workshops(ctx: Context) -> list[Reply]:
    """The workshops a text asks for: of a topic, of a day, in a language, or the programme."""
    entities = ctx.understood.entities if ctx.understood is not None else None
    if entities is None:
        return await programme(ctx)
    if entities.workshops:
        return await _named(ctx, entities.workshops)
    if entities.day is not None:
        return await on_day(ctx, entities.day)
    if entities.language in ("ar", "fr"):
        return await in_language(ctx, entities.language)
    return await programme(ctx)


@feature.intent(Intent.WORKSHOP)
async def asked_workshop(ctx: Context) -> list[Reply]:
    """The workshop a text names: its card (with its register button), or every session of
    it; the programme when none is named."""
    entities = ctx.understood.entities if ctx.understood is not None else None
    if entities is None or not entities.workshops:
        return await asked_workshops(ctx)
    return await _named(ctx, entities.workshops)


async def _named(ctx: Context, keys: tuple[str, ...]) -> list[Reply]:
    """One workshop's card, or the list of the workshops named (sessions of one topic)."""
    workshops = [w for w in await ctx.catalogue.workshops(ctx.fair.id) if w.key in keys]
    if not workshops:
        return await programme(ctx)
    if len(workshops) == 1:
        return await card(ctx, workshop_id=workshops[0].id)
    titles = {(w.title.get("fr", ""), w.title.get("ar", "")) for w in workshops}
    if len(titles) == 1 and len(workshops) > PAGE:
        # Many sessions of one topic: its list, which pages.
        index = _topics(await ctx.catalogue.workshops(ctx.fair.id)).index(workshops[0].title)
        return await topic(ctx, index)
    title = (_("{title}: every session", title=Local(workshops[0].title)) if len(titles) == 1
             else _("The workshops that match:"))
    return _listing(ctx, title, workshops, Choice(MenuItem("ws").pack(), _("Workshops")))


async def on_day(ctx: Context, chosen: dt.date) -> list[Reply]:
    """The workshops of a day named ("ateliers demain"); the days that have some when it has
    none."""
    workshops = await ctx.catalogue.workshops(ctx.fair.id)
    days = _days(ctx, workshops)
    if chosen in days:
        return await day(ctx, days.index(chosen))
    return [reply(_("There is no workshop on {day}.",
                    day=When(dt.datetime.combine(chosen, dt.time(12), ctx.zone), "day")))
            ] + await programme(ctx)
