"""Feedback: a rating from 1 to 5 of the fair, a workshop or a stand, then an optional comment;
and the exhibitors' survey when the fair is over.

Each rating is stored the moment it is tapped; the comment comes after. A person rates each
target once a day: a new rating that day replaces the first.
"""

from __future__ import annotations

from collections.abc import Callable

from handlers.buttons import Button, Rating, SkipComment, SurveyAnswer
from handlers.context import Context
from handlers.ids import parse_id
from handlers.language import detect_language
from handlers.menu import back_to_menu, menu_choices
from handlers.messages import Choice, Content, Isolated, Local, Msg, Reply, _, reply
from storage.feedback import COMMENT_MAX, SALES_BANDS

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


async def ask_fair(ctx: Context) -> list[Reply]:
    """How was the fair? Five buttons."""
    ctx.enter("feedback", kind="fair", key=ctx.fair.key)
    return [reply(_("How would you rate {fair}? 5 stars is the best.", fair=Local(ctx.fair.name)),
                  choices=[*rating_choices(Rating), back_to_menu()])]


async def ask_stand(ctx: Context, number: str) -> list[Reply]:
    stand = await ctx.catalogue.stand(ctx.fair.id, number)
    if stand is None:
        return await ask_fair(ctx)
    ctx.enter("feedback", kind="stand", key=stand.number)
    return [reply(_("How would you rate stand {number}? 5 stars is the best.",
                    number=Isolated(stand.number)),
                  choices=[*rating_choices(Rating), back_to_menu()])]


async def rate(ctx: Context, rating: int) -> list[Reply]:
    """A star tapped after `ask_fair` or `ask_stand`."""
    data = ctx.data
    if ctx.flow != "feedback" or rating not in STARS:
        return await ask_fair(ctx)
    return await _store(ctx, str(data["kind"]), str(data["key"]), rating,
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
    ctx.enter("feedback-comment", feedback_id=rated.id)
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


async def comment(ctx: Context, text: str) -> list[Reply]:
    """The person's comment on the rating they just gave."""
    feedback_id = ctx.data.get("feedback_id")
    ctx.leave()
    if not isinstance(feedback_id, int):
        return [reply(_("What would you like to do?"), choices=menu_choices())]
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
        ctx.enter("survey-comment")
        return [reply(_("Last question: anything to tell the organizers? Write it now, or tap "
                        "Skip."), choices=[Choice(SurveyAnswer("skip").pack(), _("Skip"))])]
    if question == "skip":
        ctx.leave()
        return [reply(_("Thank you for your answers, and see you at the next edition!"),
                      choices=[back_to_menu()])]
    return [reply(_("How satisfied are you with the fair?"), choices=rating_choices(_survey_stars))]


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
