"""Feedback: a rating from 1 to 5 for the fair or a stand, then an optional comment."""

from __future__ import annotations

from bot.messages import Choice, Isolated, Local, Reply, _, reply
from handlers.context import Context
from handlers.menu import back_to_menu, menu_choices

COMMENT_MAX = 1000
STARS = {1: "★", 2: "★★", 3: "★★★", 4: "★★★★", 5: "★★★★★"}


def _rating_choices(prefix: str) -> list[Choice]:
    return [Choice(f"{prefix}:{value}", STARS[value]) for value in range(5, 0, -1)]


async def ask_fair(ctx: Context) -> list[Reply]:
    """How was the fair? Five buttons."""
    ctx.enter("feedback", kind="fair", key=ctx.fair.key)
    return [reply(_("How would you rate {fair}? 5 stars is the best.", fair=Local(ctx.fair.name)),
                  choices=[*_rating_choices("rate"), back_to_menu()])]


async def ask_stand(ctx: Context, number: str) -> list[Reply]:
    stand = await ctx.catalogue.stand(ctx.fair.id, number)
    if stand is None:
        return await ask_fair(ctx)
    ctx.enter("feedback", kind="stand", key=stand.number)
    return [reply(_("How would you rate stand {number}? 5 stars is the best.",
                    number=Isolated(stand.number)),
                  choices=[*_rating_choices("rate"), back_to_menu()])]


async def rate(ctx: Context, rating: int) -> list[Reply]:
    """Store the rating at once (nothing is lost), then offer to add a comment."""
    data = ctx.data
    if ctx.flow != "feedback" or rating not in STARS:
        return await ask_fair(ctx)
    feedback_id = await ctx.feedback.rate(ctx.fair.id, ctx.contact.id, str(data["kind"]),
                                          str(data["key"]), rating, ctx.language)
    ctx.enter("feedback-comment", feedback_id=feedback_id)
    return [reply(_("Thank you for your rating!"),
                  _("Would you like to add a comment? Write it now, or tap Skip."),
                  choices=[Choice("fb:skip", _("Skip"))])]


async def comment(ctx: Context, text: str) -> list[Reply]:
    """The person's comment on the rating they just gave."""
    feedback_id = ctx.data.get("feedback_id")
    ctx.leave()
    if not isinstance(feedback_id, int):
        return [reply(_("What would you like to do?"), choices=menu_choices())]
    if len(text) > COMMENT_MAX:
        ctx.enter("feedback-comment", feedback_id=feedback_id)
        return [reply(_("Your comment is too long: please keep it under {limit} characters.",
                        limit=COMMENT_MAX))]
    await ctx.feedback.comment(feedback_id, ctx.contact.id, text)
    return [reply(_("Thank you, your comment has been recorded."),
                  choices=[back_to_menu()])]


async def skip(ctx: Context) -> list[Reply]:
    ctx.leave()
    return [reply(_("Thank you!"), _("What would you like to do?"), choices=menu_choices())]
