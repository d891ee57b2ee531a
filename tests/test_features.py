"""Features: each declares its buttons, commands, words, deep links, flow states and outbox
kinds; the router composes them, refuses a second handler for anything and finds what has none."""

from __future__ import annotations

from enum import StrEnum

import pytest

from handlers.buttons import Button
from handlers.context import Context
from handlers.feature import DuplicateHandler, Feature, Router
from handlers.messages import Reply, reply
from handlers.router import COMMAND_DESCRIPTIONS, router
from handlers.stands import StandCard
from storage.notices import NOTICE_KINDS, OfferNotice


async def _nothing(ctx: Context, *args: object) -> list[Reply]:
    return []


def _declared(kind: type[Button] = Button) -> set[type[Button]]:
    found = {sub for sub in kind.__subclasses__() if sub.__module__.startswith("handlers.")}
    return found.union(*(_declared(sub) for sub in found))


def _owners(table: str, key: object) -> list[str]:
    """The features (the router itself included) that declare a handler for `key`."""
    return [unit.name for unit in [router, *router.features] if key in getattr(unit, table)
            and (unit is not router or all(key not in getattr(feature, table)
                                           for feature in router.features))]


def test_every_button_class_has_exactly_one_handler() -> None:
    assert _declared()
    for kind in _declared():
        assert len(_owners("buttons", kind)) == 1, kind


def test_every_outbox_kind_has_exactly_one_renderer() -> None:
    for kind in NOTICE_KINDS:
        assert len(_owners("renderers", kind)) == 1, kind.kind


def test_every_flow_state_has_a_text_handler() -> None:
    states = [state for enum in router.flow_states for state in enum]
    assert {"feedback", "feedback-comment", "survey-comment", "broadcast"} <= set(states)
    for state in states:
        assert len(_owners("flows", str(state))) == 1, state


def test_every_command_has_words_in_french_and_arabic() -> None:
    assert {"menu", "workshops", "stands", "feedback", "info", "broadcast"} <= set(
        router.commands)
    for command in router.commands.values():
        assert command.words.get("fr") and command.words.get("ar"), command.name


def test_the_telegram_menu_lists_the_described_commands_in_order() -> None:
    assert list(COMMAND_DESCRIPTIONS) == ["menu", "workshops", "stands", "my", "feedback",
                                          "lang", "help", "stop"]


def test_a_feature_refuses_a_second_handler_for_a_button() -> None:
    feature = Feature("twice")
    feature.button(StandCard)(_nothing)

    async def other(ctx: Context, button: StandCard) -> list[Reply]:
        return []

    with pytest.raises(DuplicateHandler):
        feature.button(StandCard)(other)


def test_the_router_refuses_two_features_handling_one_button() -> None:
    first, second = Feature("first"), Feature("second")
    first.button(StandCard)(_nothing)

    async def other(ctx: Context, button: StandCard) -> list[Reply]:
        return []

    second.button(StandCard)(other)
    composed = Router()
    composed.include(first)
    with pytest.raises(DuplicateHandler, match="StandCard"):
        composed.include(second)


@pytest.mark.parametrize("declare", [
    lambda feature: feature.command("menu", words={"fr": ["autre"], "ar": ["آخر"]})(_nothing),
    lambda feature: feature.command("other", words={"fr": ["menu"], "ar": ["آخر"]})(_nothing),
    lambda feature: feature.link("stand")(_nothing),
    lambda feature: feature.menu_item("ws")(_nothing),
    lambda feature: feature.renders(OfferNotice)(lambda payload: reply("")),
    lambda feature: feature.flow(_Clash.BROADCAST)(_nothing),
])
def test_the_router_refuses_a_word_command_link_kind_or_state_taken(declare: object) -> None:
    feature = Feature("late")
    declare(feature)  # type: ignore[operator]
    composed = Router()
    composed.include(*router.features)
    with pytest.raises(DuplicateHandler):
        composed.include(feature)


class _Clash(StrEnum):
    BROADCAST = "broadcast"


def test_a_word_means_one_command_within_a_feature() -> None:
    feature = Feature("words")
    feature.command("one", words={"fr": ["pareil"], "ar": ["واحد"]})(_nothing)

    async def two(ctx: Context) -> list[Reply]:
        return []

    with pytest.raises(DuplicateHandler):
        feature.command("two", words={"fr": ["Pareil"], "ar": ["اثنان"]})(two)


def test_a_missing_handler_is_found_when_the_router_is_checked() -> None:
    partial = Router()
    partial.include(*(feature for feature in router.features if feature.name != "feedback"))
    with pytest.raises(RuntimeError) as missing:
        partial.check(_declared(), NOTICE_KINDS)
    assert "Rating" in str(missing.value)
    assert "feedback_prompt" in str(missing.value)
    router.check(_declared(), NOTICE_KINDS)


def test_a_missing_flow_state_handler_is_found() -> None:
    feature = Feature("flows")

    @feature.states
    class Flow(StrEnum):
        ASKED = "asked"
        ANSWERED = "answered"

    feature.flow(Flow.ASKED)(_nothing)
    partial = Router()
    partial.include(feature)
    with pytest.raises(RuntimeError, match="flow state answered"):
        partial.check([], [])
