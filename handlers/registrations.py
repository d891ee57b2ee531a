"""Registering for a workshop, the waiting list, offers of a freed seat, and "my workshops"."""

from __future__ import annotations

from collections.abc import Mapping

from handlers.buttons import Button
from handlers.context import Context
from handlers.feature import Feature
from handlers.menu import MenuItem, back_to_menu, continue_choice
from handlers.messages import Choice, Content, Isolated, Local, Media, Reply, When, _, reply
from handlers.pictures import Calendar, CheckinPass, WorkshopEvent
from handlers.seat_buttons import OfferAnswer, Register, Unregister, offer_choices
from handlers.understanding import Intent
from handlers.workshops import WorkshopCard, card
from storage.models import RegistrationStatus
from storage.notices import (
    OfferExpiredNotice,
    OfferNotice,
    WorkshopCancelledNotice,
    WorkshopReminderNotice,
)
from storage.registrations import (
    CancelOutcome,
    MyRegistration,
    OfferOutcome,
    Outcome,
)
from storage.repositories import WorkshopView

feature = Feature("registrations", Intent.WORKSHOP)


class RegisterAnyway(Button, prefix="regx"):
    """Register for a workshop that overlaps one of the person's."""

    workshop_id: int


class CalendarFile(Button, prefix="ics"):
    """The person's workshops as a calendar file."""


def _title(workshop: WorkshopView) -> Local:
    return Local(workshop.title)


def _location(ctx: Context, room: Mapping[str, str]) -> Local:
    """Where a workshop is, for a calendar: its room, the fair's venue and its city
    ("Salle 2, Espace couvert des expositions, Oued Zem"), in each language."""
    venue, city = Local(ctx.fair.venue), Local(ctx.fair.city)
    values: dict[str, str] = {}
    for language in {*room, *ctx.fair.venue}:
        place = venue.get(language)
        town = city.get(language)
        parts = [Local(room).get(language), place,
                 town if town and town.casefold() not in place.casefold() else ""]
        values[language] = ("، " if language == "ar" else ", ").join(
            part for part in parts if part)
    return Local(values)


def _calendar(ctx: Context, items: list[tuple[int, MyRegistration | WorkshopView]]) -> Media:
    """An .ics of these (workshop id, workshop) in the person's language, one event each."""
    events = tuple(WorkshopEvent(uid=f"{ctx.fair.key}-ws{workshop_id}-c{ctx.contact.id}@tadamon",
                                 title=Local(item.title), location=_location(ctx, item.room),
                                 starts_at=item.starts_at, ends_at=item.ends_at)
                   for workshop_id, item in items)
    return Media("document", picture=Calendar(events, Local(ctx.fair.name), ctx.zone),
                 filename="tadamon-workshops.ics" if len(events) > 1 else "workshop.ics",
                 mime="text/calendar", caption=_("Add it to your calendar."))


def _door(code: str | None) -> tuple[list[Content], list[Media]]:
    """What a confirmed seat shows at the door: the QR code of its check-in code, and one
    sentence saying so with the code written out (for a door without a camera)."""
    if not code:
        return [], []
    return ([_("At the door, show this QR code or give the code {code}.", code=Isolated(code))],
            [Media("image", picture=CheckinPass(code), filename="checkin.png", mime="image/png",
                   caption=_("Check-in code: {code}", code=Isolated(code)))])


async def register(ctx: Context, workshop_id: int, allow_overlap: bool = False) -> list[Reply]:
    """The person asked for a seat: confirmed with the calendar file, or on the waiting list,
    or told why not."""
    workshop = await ctx.catalogue.workshop(ctx.fair.id, workshop_id)
    if workshop is None:
        return await card(ctx, workshop_id=workshop_id)
    result = await ctx.registrations.register(ctx.fair.id, ctx.contact.id, workshop_id, ctx.now,
                                              allow_overlap=allow_overlap)
    title = _title(workshop)
    mine = Choice(MenuItem("my").pack(), _("My workshops"))
    # On the web chat, a later message waits on the page: say where they will find it.
    on_web = ctx.contact.channel == "web"
    # There, a messaging app they may prefer for the reminders is offered too.
    app = continue_choice(ctx)
    later = [mine, back_to_menu()] if app is None else [mine, app, back_to_menu()]
    if result.outcome is Outcome.CONFIRMED:
        door, qr = _door(result.checkin_code)
        return [reply(
            _("You are registered for {title}, {when}, {room}.", title=title,
              when=When(workshop.starts_at, "day_time"), room=Local(workshop.room)),
            *door,
            _("We will remind you before it starts: here, when you come back to this page.")
            if on_web else _("We will remind you before it starts."),
            media=[_calendar(ctx, [(workshop.id, workshop)]), *qr],
            choices=later)]
    if result.outcome is Outcome.WAITLISTED:
        position = result.position or 0
        return [reply(
            _("{title} is full. You are number {position} on the waiting list: if a seat is "
              "freed, we will offer it to you here, when you come back to this page.",
              title=title, position=position) if on_web else
            _("{title} is full. You are number {position} on the waiting list: if a seat is "
              "freed, we will offer it to you here.", title=title, position=position),
            choices=later)]
    if result.outcome is Outcome.ALREADY:
        return [_already(workshop, result.status, result.position)]
    if result.outcome is Outcome.OVERLAP:
        others = [await ctx.catalogue.workshop(ctx.fair.id, other) for other in result.overlaps]
        names: list[Content] = [
            _("{title}, {when}", title=Local(other.title),
              when=When(other.starts_at, "day_time"))
            for other in others if other is not None]
        return [reply(
            _("{title} is at the same time as a workshop you are registered for:", title=title),
            *names,
            _("Register anyway?"),
            choices=[Choice(RegisterAnyway(workshop.id).pack(), _("Yes, register")),
                     Choice(WorkshopCard(workshop.id).pack(), _("No"))])]
    if result.outcome is Outcome.FULL:
        message = _("{title} is full and starts soon: registration is closed.", title=title)
    elif result.outcome is Outcome.STARTED:
        message = _("{title} has already started or is over.", title=title)
    elif result.outcome is Outcome.COOPERATIVES_ONLY:
        message = _("{title} is for the cooperatives and associations exhibiting at the fair. "
                    "If you are a member, link this chat first with your cooperative's code "
                    "(ask the organizers).", title=title)
    elif result.outcome is Outcome.CANCELLED:
        message = _("{title} is cancelled by the organizers.", title=title)
    else:
        message = _("I could not find this workshop. Here is the programme.")
    return [reply(message, choices=[
        Choice(MenuItem("ws").pack(), _("Workshops")), back_to_menu()])]


def _already(workshop: WorkshopView, status: RegistrationStatus | None,
             position: int | None) -> Reply:
    title = _title(workshop)
    if status == RegistrationStatus.WAITLISTED:
        return reply(_("You are already on the waiting list for {title}: number {position}.",
                       title=title, position=position or 0),
                     choices=[Choice(Unregister(workshop.id).pack(), _("Leave the waiting list")),
                              back_to_menu()])
    if status == RegistrationStatus.OFFERED:
        return reply(_("A seat at {title} is offered to you: accept it or decline it.",
                       title=title), choices=offer_choices(workshop.id))
    return reply(_("You are already registered for {title}.", title=title),
                 choices=[Choice(Unregister(workshop.id).pack(), _("Cancel my registration")),
                          back_to_menu()])


async def cancel(ctx: Context, workshop_id: int) -> list[Reply]:
    """Give up a seat or a place on the waiting list (the freed seat is offered on)."""
    workshop = await ctx.catalogue.workshop(ctx.fair.id, workshop_id)
    if workshop is None:
        return await mine(ctx)
    outcome = await ctx.registrations.cancel(ctx.contact.id, workshop_id, ctx.now)
    title = _title(workshop)
    if outcome is CancelOutcome.CANCELLED:
        text = _("Your registration for {title} is cancelled. Thank you for freeing the seat.",
                 title=title)
    elif outcome is CancelOutcome.STARTED:
        text = _("{title} has already started: the registration can no longer be cancelled.",
                 title=title)
    else:
        text = _("You are not registered for {title}.", title=title)
    return [reply(text, choices=[Choice(MenuItem("my").pack(), _("My workshops")), back_to_menu()])]


async def answer_offer(ctx: Context, workshop_id: int, accept: bool) -> list[Reply]:
    """The person took or let go the seat offered to them."""
    workshop = await ctx.catalogue.workshop(ctx.fair.id, workshop_id)
    if workshop is None:
        return [reply(_("This offer is no longer valid."), choices=[back_to_menu()])]
    outcome = await ctx.registrations.answer_offer(ctx.contact.id, workshop_id, accept,
                                                   ctx.now)
    title = _title(workshop)
    if outcome is OfferOutcome.ACCEPTED:
        door, qr = _door(await ctx.registrations.checkin_code(ctx.contact.id, workshop_id))
        return [reply(
            _("The seat is yours: you are registered for {title}, {when}, {room}.", title=title,
              when=When(workshop.starts_at, "day_time"), room=Local(workshop.room)),
            *door,
            media=[_calendar(ctx, [(workshop.id, workshop)]), *qr],
            choices=[Choice(MenuItem("my").pack(), _("My workshops")), back_to_menu()])]
    if outcome is OfferOutcome.DECLINED:
        return [reply(_("Thank you for telling us: the seat goes to the next person."),
                      choices=[back_to_menu()])]
    if outcome is OfferOutcome.EXPIRED:
        return [reply(_("Sorry, the time to accept this seat is over: it went to the next "
                        "person."), choices=[back_to_menu()])]
    return [reply(_("This offer is no longer valid."), choices=[back_to_menu()])]


def _status(item: MyRegistration) -> Content:
    if item.status == RegistrationStatus.CONFIRMED:
        if item.checkin_code:  # to give at the door, if the QR code is lost
            return _("registered, check-in code {code}", code=Isolated(item.checkin_code))
        return _("registered")
    if item.status == RegistrationStatus.OFFERED and item.offered_until is not None:
        return _("a seat is offered to you until {until}",
                 until=When(item.offered_until, "day_time"))
    return _("waiting list, number {position}", position=Isolated(str(item.position or 0)))


@feature.intent(Intent.MY_WORKSHOPS)
@feature.command("my", description=_("My workshops"), menu_item="my",
                 intent=Intent.MY_WORKSHOPS, words={
    "en": ["my"], "fr": ["mes ateliers", "mes inscriptions"], "ar": ["ورشاتي", "تسجيلاتي"]})
async def mine(ctx: Context) -> list[Reply]:
    """The person's registrations with their status, a button to cancel each, and one
    calendar file with all the confirmed ones."""
    ctx.leave()
    items = await ctx.registrations.mine(ctx.fair.id, ctx.contact.id)
    if not items:
        return [reply(_("You are not registered for any workshop yet."),
                      choices=[Choice(MenuItem("ws").pack(), _("Workshops")), back_to_menu()])]
    lines: list[Content] = [_("Your workshops:")]
    choices: list[Choice] = []
    for item in items:
        lines.append(_("{when} · {title} · {room} · {status}",
                       when=When(item.starts_at, "day_time"), title=Local(item.title),
                       room=Local(item.room), status=_status(item)))
        if item.status == RegistrationStatus.OFFERED:
            choices += offer_choices(item.workshop_id)
        else:
            choices.append(Choice(Unregister(item.workshop_id).pack(),
                                  _("Cancel: {title}", title=Local(item.title))))
    confirmed = [item for item in items if item.status == RegistrationStatus.CONFIRMED]
    if confirmed:
        choices.append(Choice(CalendarFile().pack(), _("Calendar file")))
    return [reply(*lines, choices=[*choices, back_to_menu()])]


async def calendar(ctx: Context) -> list[Reply]:
    """One .ics with every workshop the person is registered for."""
    items = [item for item in await ctx.registrations.mine(ctx.fair.id, ctx.contact.id)
             if item.status == RegistrationStatus.CONFIRMED]
    if not items:
        return await mine(ctx)
    return [reply(_("Your workshops, for your calendar."),
                  media=[_calendar(ctx, [(item.workshop_id, item) for item in items])],
                  choices=[Choice(MenuItem("my").pack(), _("My workshops")), back_to_menu()])]


@feature.button(Register)
async def _register(ctx: Context, button: Register) -> list[Reply]:
    return await register(ctx, button.workshop_id)


@feature.button(RegisterAnyway)
async def _register_anyway(ctx: Context, button: RegisterAnyway) -> list[Reply]:
    return await register(ctx, button.workshop_id, allow_overlap=True)


@feature.button(Unregister)
async def _cancel(ctx: Context, button: Unregister) -> list[Reply]:
    return await cancel(ctx, button.workshop_id)


@feature.button(OfferAnswer)
async def _answer_offer(ctx: Context, button: OfferAnswer) -> list[Reply]:
    return await answer_offer(ctx, button.workshop_id, button.accept)


@feature.button(CalendarFile, intent=Intent.MY_WORKSHOPS)
async def _calendar_file(ctx: Context, button: CalendarFile) -> list[Reply]:
    return await calendar(ctx)


# Outbox messages: reminders, offers of a freed seat, cancellations.

@feature.renders(WorkshopReminderNotice)
def _workshop_reminder(payload: WorkshopReminderNotice) -> Reply:
    starts = payload.starts_at
    if payload.soon:
        text = _("Reminder: {title} starts soon, at {time}, {room}.",
                 title=Local(payload.title), time=When(starts, "time"),
                 room=Local(payload.room))
    else:
        text = _("Reminder: tomorrow, {when}, the workshop {title}, {room}. If you cannot "
                 "come, cancel in \"My workshops\" so that someone else gets the seat.",
                 when=When(starts, "day_time"), title=Local(payload.title),
                 room=Local(payload.room))
    return reply(text, choices=[Choice(MenuItem("my").pack(), _("My workshops"))])


@feature.renders(OfferExpiredNotice)
def _offer_expired(payload: OfferExpiredNotice) -> Reply:
    return reply(_("The time to accept the seat at {title} is over: it went to the next "
                   "person. You can register again if seats are freed.",
                   title=Local(payload.title)))


@feature.renders(OfferNotice)
def _offer(payload: OfferNotice) -> Reply:
    return reply(
        _("Good news: a seat is free at {title}, {when}, {room}. It is yours if you accept "
          "it before {until}.", title=Local(payload.title),
          when=When(payload.starts_at, "day_time"), room=Local(payload.room),
          until=When(payload.until, "day_time")),
        choices=offer_choices(payload.workshop_id))


@feature.renders(WorkshopCancelledNotice)
def _workshop_cancelled(payload: WorkshopCancelledNotice) -> Reply:
    return reply(_("The workshop {title} of {when} is cancelled by the organizers. We are "
                   "sorry for the inconvenience.",
                   title=Local(payload.title), when=When(payload.starts_at, "day_time")))
