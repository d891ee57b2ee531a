"""Feedback: a rating from 1 to 5 of the fair, a workshop or a stand, then an optional comment;
and the exhibitors' survey when the fair is over.

Each rating is stored the moment it is tapped; the comment comes after. A person rates each
target once a day: a new rating that day replaces the first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import partial

from handlers.buttons import Button
from handlers.context import Context
from handlers.feature import Feature
from handlers.flows import FlowData
from handlers.ids import parse_id
from handlers.language import detect_language
from handlers.menu import back_to_menu, menu_choices
from handlers.messages import Choice, Content, Isolated, Local, Msg, Reply, _, reply
from handlers.understanding import Intent
from storage.feedback import COMMENT_MAX, SALES_BANDS
from storage.notices import CoopSurveyNotice, FeedbackPromptNotice

feature = Feature("feedback", Intent.FEEDBACK)


@feature.states
class Flow(StrEnum):
    """The feedback flows' states, as the session stores them."""

    RATING = "feedback"
    """Stars asked for the fair or a stand (a digit is taken for them)."""
    COMMENT = "feedback-comment"
    """A comment on the rating just given."""
    SURVEY_COMMENT = "survey-comment"
    """The exhibitors' survey's last, free comment."""


@dataclass(frozen=True)
class RatingFlow(FlowData, state=Flow.RATING):
    """What the stars asked for rate: `fair` or `stand`, and which."""

    kind: str
    key: str


@dataclass(frozen=True)
class CommentFlow(FlowData, state=Flow.COMMENT):
    """The rating the comment is about."""

    feedback_id: int


@dataclass(frozen=True)
class SurveyCommentFlow(FlowData, state=Flow.SURVEY_COMMENT):
    """Nothing to keep: the person's cooperative is looked up when the comment comes."""


class RateStand(Button, prefix="fbs"):
    """Ask for a stand's rating."""

    number: str


class Rating(Button, prefix="rate"):
    """Stars for what the feedback flow rates: the fair, or a stand."""

    stars: int


class SkipComment(Button, prefix="fb:skip"):
    """No comment after a rating."""


class WorkshopRating(Button, prefix="fbw", is_global=True):
    """Stars for an attended workshop; the handler checks the person attended."""

    workshop_id: int
    stars: int


class SurveyAnswer(Button, prefix="svy", is_global=True):
    """An answer of the exhibitor survey: `s` stars, `a` yes/no, `b` sales band, `skip`; the
    handler checks the person belongs to an exhibiting cooperative, and asks again when the
    answer is not one it offered."""

    question: str
    value: str = ""

CUT_NOTICE = _("It was long, so only its first {limit} characters were kept.",
               limit=COMMENT_MAX)

STARS = {1: "★", 2: "★★", 3: "★★★", 4: "★★★★", 5: "★★★★★"}

SALES_LABELS: dict[str, Msg] = {
    "lt2k": _("Under 2,000 MAD"),
    "2k-10k": _("2,000 to 10,000 MAD"),
    "10k-50k": _("10,000 to 50,000 MAD"),
    "gt50k": _("Over 50,000 MAD"),
    "none": _("I prefer not to say"),
}


def rating_choices(button: Callable[[int], Button]) -> list[Choice]:
    """Five star buttons, the best first: `button(5)` ... `button(1)`."""
    return [Choice(button(value).pack(), STARS[value]) for value in range(5, 0, -1)]


def _survey_stars(stars: int) -> SurveyAnswer:
    return SurveyAnswer("s", str(stars))


@feature.command("feedback", description=_("Give feedback"), menu_item="fb", words={
    "en": ["feedback", "rating"], "fr": ["avis", "noter"], "ar": ["رأي", "رايي", "تقييم", "رأيي"]})
async def ask_fair(ctx: Context) -> list[Reply]:
    """How was the fair? Five buttons."""
    ctx.enter(RatingFlow(kind="fair", key=ctx.fair.key))
    return [reply(_("How would you rate {fair}? 5 stars is the best.", fair=Local(ctx.fair.name)),
                  choices=[*rating_choices(Rating), back_to_menu()])]


@feature.intent(Intent.FEEDBACK)
async def asked_feedback(ctx: Context) -> list[Reply]:
    """"Je veux noter le stand A12", "bghit n3ti rayi": the stars for what is named."""
    entities = ctx.understood.entities if ctx.understood is not None else None
    if entities is not None and entities.stand is not None:
        return await ask_stand(ctx, entities.stand)
    return await ask_fair(ctx)


async def ask_stand(ctx: Context, number: str) -> list[Reply]:
    stand = await ctx.catalogue.stand(ctx.fair.id, number)
    if stand is None:
        return await ask_fair(ctx)
    ctx.enter(RatingFlow(kind="stand", key=stand.number))
    return [reply(_("How would you rate stand {number}? 5 stars is the best.",
                    number=Isolated(stand.number)),
                  choices=[*rating_choices(Rating), back_to_menu()])]


async def rate(ctx: Context, rating: int) -> list[Reply]:
    """A star tapped after `ask_fair` or `ask_stand`."""
    flow = ctx.data
    if not isinstance(flow, RatingFlow) or rating not in STARS:
        return await ask_fair(ctx)
    return await _store(ctx, flow.kind, flow.key, rating,
                        _("Would you like to add a comment? Write it now, or tap Skip."))


async def rate_workshop(ctx: Context, workshop_id: int, rating: int) -> list[Reply]:
    """A star tapped in the prompt sent after a workshop: only someone who held a confirmed
    seat may rate it, and only once it has ended."""
    workshop = await ctx.catalogue.workshop(ctx.fair.id, workshop_id)
    if workshop is None or rating not in STARS:
        return [reply(_("This workshop is no longer in the programme."),
                      choices=menu_choices())]
    title = Local(workshop.title)
    if not await ctx.feedback.attended(workshop.id, ctx.contact.id):
        return [reply(_("Only the people registered for {title} can rate it.", title=title),
                      choices=[back_to_menu()])]
    if ctx.now < workshop.ends_at:
        return [reply(_("You can rate {title} once it has ended.", title=title),
                      choices=[back_to_menu()])]
    return await _store(ctx, "workshop", workshop.key, rating,
                        _("What would you like at the next edition's workshops? Write it now, "
                          "or tap Skip."))


async def _store(ctx: Context, kind: str, key: str, rating: int, question: Msg
                 ) -> list[Reply]:
    """Store the rating at once (nothing is lost), then offer to add a comment."""
    rated = await ctx.feedback.rate(ctx.fair.id, ctx.contact.id, kind, key, rating,
                                    ctx.language, ctx.local_day(ctx.now))
    ctx.enter(CommentFlow(feedback_id=rated.id))
    lines: list[Content] = [_("Thank you for your rating!")]
    if rated.replaced:
        lines.append(_("It replaces the rating you gave earlier today."))
    lines.append(question)
    return [reply(*lines, choices=[Choice(SkipComment().pack(), _("Skip"))])]


def clean_comment(text: str) -> tuple[str | None, bool]:
    """A comment as stored: trimmed, cut at COMMENT_MAX characters (True when it was), and
    None when nothing is left but spaces, emoji or punctuation."""
    text = text.strip()
    if not any(character.isalnum() for character in text):
        return None, False
    if len(text) > COMMENT_MAX:
        return text[:COMMENT_MAX].rstrip(), True
    return text, False


@feature.flow(Flow.COMMENT, long_text=True, requests=True)
async def comment(ctx: Context, text: str) -> list[Reply]:
    """The person's comment on the rating they just gave."""
    flow = ctx.data
    ctx.leave()
    if not isinstance(flow, CommentFlow):
        return [reply(_("What would you like to do?"), choices=menu_choices())]
    feedback_id = flow.feedback_id
    cleaned, cut = clean_comment(text)
    if cleaned is None:
        return [reply(_("Thank you! Your rating is recorded, without a comment."),
                      choices=[back_to_menu()])]
    await ctx.feedback.comment(feedback_id, ctx.contact.id, cleaned,
                               detect_language(cleaned, default=ctx.language))
    lines: list[Content] = [_("Thank you, your comment has been recorded.")]
    if cut:
        lines.append(CUT_NOTICE)
    return [reply(*lines, choices=[back_to_menu()])]


async def skip(ctx: Context) -> list[Reply]:
    ctx.leave()
    return [reply(_("Thank you!"), _("What would you like to do?"), choices=menu_choices())]


# The exhibitors' survey: satisfaction, coming again, sales, a comment. Each answer is stored
# when given, so a survey left half way still counts.

def survey_invitation(fair: dict[str, str]) -> Reply:
    """The outbox message that opens the survey, sent to cooperatives after the last day."""
    return reply(_("{fair} is over: thank you for taking part! Four short questions help the "
                   "organizers prepare the next edition.", fair=Local(fair)),
                 _("How satisfied are you with the fair?"),
                 choices=rating_choices(_survey_stars))


async def survey_answer(ctx: Context, answer: SurveyAnswer) -> list[Reply]:
    """A survey button: `s:<1-5>` satisfaction, `a:yes|no` coming again, `b:<band>` sales,
    `skip` no comment. Only members of an exhibiting cooperative are asked."""
    exhibitor = await ctx.cooperatives.exhibitor_of(ctx.contact.id)
    if exhibitor is None:
        return [reply(_("This survey is for the exhibitors of the fair."),
                      choices=menu_choices())]
    question, value = answer.question, answer.value
    stars = parse_id(value)
    if question == "s" and stars in STARS:
        await _answer(ctx, exhibitor, satisfaction=stars)
        return [reply(_("Would you come again to the next edition?"), choices=[
            Choice(SurveyAnswer("a", "yes").pack(), _("Yes")),
            Choice(SurveyAnswer("a", "no").pack(), _("No"))])]
    if question == "a" and value in ("yes", "no"):
        await _answer(ctx, exhibitor, come_again=value == "yes")
        return [reply(_("What were your sales at the fair, roughly?"), choices=[
            Choice(SurveyAnswer("b", band).pack(), SALES_LABELS[band]) for band in SALES_BANDS])]
    if question == "b" and value in SALES_BANDS:
        await _answer(ctx, exhibitor, sales_band=value)
        ctx.enter(SurveyCommentFlow())
        return [reply(_("Last question: anything to tell the organizers? Write it now, or tap "
                        "Skip."), choices=[Choice(SurveyAnswer("skip").pack(), _("Skip"))])]
    if question == "skip":
        ctx.leave()
        return [reply(_("Thank you for your answers, and see you at the next edition!"),
                      choices=[back_to_menu()])]
    return [reply(_("How satisfied are you with the fair?"), choices=rating_choices(_survey_stars))]


@feature.flow(Flow.SURVEY_COMMENT, long_text=True, requests=True)
async def survey_comment(ctx: Context, text: str) -> list[Reply]:
    """The survey's free comment."""
    ctx.leave()
    exhibitor = await ctx.cooperatives.exhibitor_of(ctx.contact.id)
    cleaned, cut = clean_comment(text)
    if exhibitor is not None and cleaned is not None:
        await _answer(ctx, exhibitor, comment=cleaned)
    lines: list[Content] = [_("Thank you for your answers, and see you at the next edition!")]
    if cut:
        lines.append(CUT_NOTICE)
    return [reply(*lines, choices=[back_to_menu()])]


async def _answer(ctx: Context, exhibitor: int, **answers: object) -> None:
    await ctx.feedback.answer_survey(ctx.fair.id, ctx.contact.id, exhibitor, ctx.language,
                                     **answers)


@feature.flow(Flow.RATING, words=[str(stars) for stars in STARS])
async def _rate_text(ctx: Context, word: str) -> list[Reply]:
    """A digit from 1 to 5 written instead of tapped."""
    return await rate(ctx, int(word))


@feature.button(RateStand)
async def _ask_stand(ctx: Context, button: RateStand) -> list[Reply]:
    return await ask_stand(ctx, button.number)


@feature.button(Rating)
async def _rate(ctx: Context, button: Rating) -> list[Reply]:
    return await rate(ctx, button.stars)


@feature.button(SkipComment)
async def _skip(ctx: Context, button: SkipComment) -> list[Reply]:
    return await skip(ctx)


@feature.button(WorkshopRating)
async def _rate_workshop(ctx: Context, button: WorkshopRating) -> list[Reply]:
    return await rate_workshop(ctx, button.workshop_id, button.stars)


@feature.button(SurveyAnswer)
async def _survey_answer(ctx: Context, button: SurveyAnswer) -> list[Reply]:
    return await survey_answer(ctx, button)


@feature.link("feedback")
async def _link(ctx: Context, value: str) -> list[Reply] | None:
    """`feedback`: rate the fair."""
    return await ask_fair(ctx)


# Outbox messages: the prompt to rate a workshop, the exhibitors' survey.

@feature.renders(FeedbackPromptNotice)
def _feedback_prompt(payload: FeedbackPromptNotice) -> Reply:
    return reply(_("Thank you for attending {title}. How was it? Your opinion helps the "
                   "organizers.", title=Local(payload.title)),
                 choices=rating_choices(partial(WorkshopRating, payload.workshop_id)))


@feature.renders(CoopSurveyNotice)
def _survey(payload: CoopSurveyNotice) -> Reply:
    return survey_invitation(payload.fair)
