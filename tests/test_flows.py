"""Typed flows: named states and a frozen dataclass per state, stored in the session as the
plain dict earlier versions wrote, so a conversation saved before an upgrade goes on after it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pytest
from sqlalchemy import select

from handlers.feedback import CommentFlow, Flow, RatingFlow, SurveyCommentFlow
from handlers.flows import FlowData, flow_states, load_flow
from handlers.organizers import BroadcastDraft, Step
from handlers.router import router
from storage.models import Feedback
from tests.conftest import Chat

CASABLANCA = dt.timezone(dt.timedelta(hours=1))

# What the code before typed flows stored as the session's `flow` and `data`, at each step.
SAVED: list[tuple[str, dict[str, Any], FlowData]] = [
    ("feedback", {"kind": "fair", "key": "salon-2026"}, RatingFlow("fair", "salon-2026")),
    ("feedback", {"kind": "stand", "key": "A12"}, RatingFlow("stand", "A12")),
    ("feedback-comment", {"feedback_id": 17}, CommentFlow(17)),
    ("survey-comment", {}, SurveyCommentFlow()),
    ("broadcast", {"step": "fr"}, BroadcastDraft(Step.FR)),
    ("broadcast", {"step": "ar", "fr": "Le salon ouvre."},
     BroadcastDraft(Step.AR, fr="Le salon ouvre.")),
    ("broadcast", {"step": "audience", "fr": "Le salon ouvre.", "ar": "يفتح المعرض."},
     BroadcastDraft(Step.AUDIENCE, fr="Le salon ouvre.", ar="يفتح المعرض.")),
    ("broadcast", {"step": "when", "fr": "Le salon ouvre.", "ar": "يفتح المعرض.",
                   "audience": "lang:ar"},
     BroadcastDraft(Step.WHEN, fr="Le salon ouvre.", ar="يفتح المعرض.", audience="lang:ar")),
    ("broadcast", {"step": "confirm", "fr": "Le salon ouvre.", "ar": "يفتح المعرض.",
                   "audience": "all", "at": "2026-12-13T09:00:00+01:00"},
     BroadcastDraft(Step.CONFIRM, fr="Le salon ouvre.", ar="يفتح المعرض.", audience="all",
                    at=dt.datetime(2026, 12, 13, 9, tzinfo=CASABLANCA))),
]


@pytest.mark.parametrize(("state", "data", "typed"), SAVED,
                         ids=[f"{state}-{data.get('step', '')}" for state, data, _t in SAVED])
def test_a_flow_saved_by_the_previous_version_loads_typed(state: str, data: dict[str, Any],
                                                          typed: FlowData) -> None:
    loaded = load_flow(state, data)
    assert loaded == typed
    assert loaded is not None and str(loaded.state) == state
    assert load_flow(state, loaded.dump()) == typed


def test_rating_and_comment_flows_are_stored_as_before() -> None:
    assert RatingFlow("stand", "A12").dump() == {"kind": "stand", "key": "A12"}
    assert CommentFlow(17).dump() == {"feedback_id": 17}
    assert SurveyCommentFlow().dump() == {}


@pytest.mark.parametrize(("state", "data"), [
    (None, None), ("menu", {}), ("feedback", {"kind": "fair"}),
    ("feedback-comment", {"feedback_id": "dix-sept"}), ("broadcast", {"step": "later"}),
    ("broadcast", "fr"), (3, {}),
])
def test_a_flow_that_no_longer_fits_is_no_flow(state: object, data: object) -> None:
    assert load_flow(state, data) is None


def test_every_flow_state_has_its_data_class_and_a_handler() -> None:
    states = {str(state) for enum in router.flow_states for state in enum}
    assert states == set(flow_states()) == set(router.flows)
    assert {str(state) for state in Flow} == {"feedback", "feedback-comment", "survey-comment"}
    assert [str(step) for step in Step] == ["fr", "ar", "audience", "when", "confirm"]


def test_a_state_has_one_data_class() -> None:
    class Twice(StrEnum):
        RATING = "feedback"

    with pytest.raises(TypeError):
        @dataclass(frozen=True)
        class Other(FlowData, state=Twice.RATING):
            stars: int


async def test_a_conversation_saved_by_the_previous_version_goes_on(chat: Chat) -> None:
    """Amina was asked to rate stand A12 before the upgrade; her "4" and her comment come
    after it."""
    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    user = chat.user_id("amina")
    stored = await chat.app.state.load_session("web", user)
    await chat.app.state.save_session("web", user, {
        **stored, "flow": "feedback", "data": {"kind": "stand", "key": "A12"}})
    assert "Merci pour votre note\u202f!" in (await chat("amina", "4")).text
    comment = await chat("amina", "Très beaux tapis, accueil chaleureux.")
    assert "Merci, votre commentaire a été enregistré." in comment.text
    async with chat.app.sessions() as session:
        rated = (await session.scalars(select(Feedback))).one()
    assert (rated.target_kind, rated.target_key, rated.rating) == ("stand", "A12", 4)
    assert rated.comment == "Très beaux tapis, accueil chaleureux."
