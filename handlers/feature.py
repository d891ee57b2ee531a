"""A feature: one named unit of the conversation (stands, workshops...) that declares, in its
own module, the buttons it answers, its commands and their words, its deep links, the text its
flows take and the outbox kinds it words. handlers/router.py includes them all, as aiogram's
`Router.include_router` does, and refuses two handlers for one thing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from handlers.buttons import Button
from handlers.context import Context
from handlers.messages import Msg, Reply
from handlers.understanding import Intent
from storage.notices import Notice
from storage.text import fold

Action = Callable[[Context], Awaitable[list[Reply]]]
ButtonHandler = Callable[[Context, Any], Awaitable[list[Reply]]]
TextHandler = Callable[[Context, str], Awaitable[list[Reply]]]
LinkHandler = Callable[[Context, str], Awaitable[list[Reply] | None]]
Renderer = Callable[[Any], Reply]

B = TypeVar("B", bound=Button)
N = TypeVar("N", bound=Notice)
A = TypeVar("A", bound=Action)
T = TypeVar("T", bound=TextHandler)
L = TypeVar("L", bound=LinkHandler)
E = TypeVar("E", bound=type[StrEnum])


class DuplicateHandler(RuntimeError):
    """Two handlers for one button class, command, word, deep link, flow state, outbox kind or
    understood intent."""


def folded(text: str) -> str:
    """A text as the word tables hold it: `fold`ed, or as it is when it is only signs (`?`)."""
    return fold(text) or text.strip()


@dataclass(frozen=True)
class Command:
    """A command: `/name`, the words that mean it (`words` by language: `fr`, `ar`, `en`,
    `ary` for Darija in Latin letters, `*` for signs), its description in Telegram's command
    menu and its key in the main menu's buttons, if any."""

    name: str
    action: Action
    words: Mapping[str, tuple[str, ...]]
    description: Msg | None = None
    menu_item: str | None = None
    organizer: bool = False
    """Organizers only; anyone else gets the ordinary answer to an unknown word."""
    intent: Intent = Intent.UNKNOWN
    """What the command's answer is (CONTRACT, section Intents)."""


@dataclass(frozen=True)
class ButtonRoute:
    """The handler of a button class."""

    handler: ButtonHandler
    organizer: bool = False
    """Honoured for organizers only; anyone else is told the button is no longer valid."""
    intent: Intent = Intent.UNKNOWN
    """The part of the conversation that answers the tap (CONTRACT, section Intents)."""


@dataclass(frozen=True)
class FlowText:
    """What a flow does with the text the person writes while in one of its states."""

    handler: TextHandler
    long_text: bool = False
    """Takes a text longer than the router's MAX_TEXT (and says what it does with it)."""
    organizer: bool = False
    """Only while the person is an organizer."""
    words: frozenset[str] | None = None
    """Takes only these (folded) words, asked after the command and language words; None: any
    text that is not a command word, asked first."""
    intent: Intent = Intent.UNKNOWN
    """What the flow's answer is (CONTRACT, section Intents)."""
    requests: bool = False
    """A free comment: a stand number or a clear request written instead is answered as one
    (the router asks the understanding step), not taken as the comment."""


class Feature:
    """A named unit of the conversation; its decorators register and return the function.
    `intent` is what its answers are, unless a registration says otherwise."""

    def __init__(self, name: str, intent: Intent = Intent.UNKNOWN) -> None:
        self.name = name
        self.default_intent = intent
        self.buttons: dict[type[Button], ButtonRoute] = {}
        self.commands: dict[str, Command] = {}
        self.words: dict[str, Command] = {}
        self.menu_items: dict[str, Action] = {}
        self.links: dict[str, LinkHandler] = {}
        self.flows: dict[str, FlowText] = {}
        self.flow_states: list[type[StrEnum]] = []
        self.renderers: dict[type[Notice], Renderer] = {}
        self.intents: dict[Intent, Action] = {}
        self.link_intents: dict[str, Intent] = {}
        self.menu_intents: dict[str, Intent] = {}

    def __repr__(self) -> str:
        return f"Feature({self.name!r})"

    def _add(self, table: dict[Any, Any], key: object, value: object, what: str) -> None:
        if key in table and table[key] != value:
            raise DuplicateHandler(f"{self.name}: {what} {key!r} has two handlers")
        table[key] = value

    def button(self, *kinds: type[B], organizer: bool = False, intent: Intent | None = None
               ) -> Callable[[Callable[[Context, B], Awaitable[list[Reply]]]],
                             Callable[[Context, B], Awaitable[list[Reply]]]]:
        """`@feature.button(StandCard)`: the handler of a tapped button of these classes."""

        def register(handler: Callable[[Context, B], Awaitable[list[Reply]]]
                     ) -> Callable[[Context, B], Awaitable[list[Reply]]]:
            for kind in kinds:
                self._add(self.buttons, kind,
                          ButtonRoute(handler, organizer, intent or self.default_intent),
                          f"button {kind.__name__}")
            return handler

        return register

    def command(self, name: str, *, words: Mapping[str, Iterable[str]],
                description: Msg | None = None, menu_item: str | None = None,
                organizer: bool = False, intent: Intent | None = None) -> Callable[[A], A]:
        """`@feature.command("stands", words={"fr": [...], "ar": [...]})`: `/stands`, the
        words that mean it, and optionally its Telegram menu entry and main-menu button."""

        def register(action: A) -> A:
            command = Command(name, action, {language: tuple(items)
                                             for language, items in words.items()},
                              description, menu_item, organizer, intent or self.default_intent)
            self._add(self.commands, name, command, "command")
            for items in command.words.values():
                for word in items:
                    self._add(self.words, folded(word), command, "word")
            if menu_item is not None:
                self._add(self.menu_items, menu_item, action, "menu item")
                self.menu_intents[menu_item] = command.intent
            return action

        return register

    def menu_item(self, *keys: str, intent: Intent | None = None) -> Callable[[A], A]:
        """`@feature.menu_item("wst")`: a main-menu button (MenuItem) that is not a command."""

        def register(action: A) -> A:
            for key in keys:
                self._add(self.menu_items, key, action, "menu item")
                self.menu_intents[key] = intent or self.default_intent
            return action

        return register

    def link(self, kind: str, intent: Intent | None = None) -> Callable[[L], L]:
        """`@feature.link("stand")`: what `/start stand_<value>` opens; None when the value
        is not well formed (the person is told the link is not valid)."""

        def register(handler: L) -> L:
            self._add(self.links, kind, handler, "deep link")
            self.link_intents[kind] = intent or self.default_intent
            return handler

        return register

    def states(self, enum: E) -> E:
        """`@feature.states` on a flow's StrEnum: its members are stored in the session, and
        each must have a text handler (`flow`)."""
        if enum not in self.flow_states:
            self.flow_states.append(enum)
        return enum

    def flow(self, state: StrEnum, *, long_text: bool = False, organizer: bool = False,
             words: Iterable[str] | None = None, intent: Intent | None = None,
             requests: bool = False) -> Callable[[T], T]:
        """`@feature.flow(Flow.COMMENT, long_text=True)`: the text taken in this flow state."""

        def register(handler: T) -> T:
            accepted = frozenset(folded(word) for word in words) if words is not None else None
            self._add(self.flows, str(state),
                      FlowText(handler, long_text, organizer, accepted,
                               intent or self.default_intent, requests), "flow state")
            return handler

        return register

    def intent(self, *intents: Intent) -> Callable[[A], A]:
        """`@feature.intent(Intent.STANDS)`: the answer to a free text understood as this
        (the handler reads `ctx.understood`)."""

        def register(action: A) -> A:
            for intent in intents:
                self._add(self.intents, intent, action, f"intent {intent.value}")
            return action

        return register

    def renders(self, *kinds: type[N]) -> Callable[[Callable[[N], Reply]], Callable[[N], Reply]]:
        """`@feature.renders(OfferNotice)`: the words of the outbox messages of these kinds."""

        def register(render: Callable[[N], Reply]) -> Callable[[N], Reply]:
            for kind in kinds:
                self._add(self.renderers, kind, render, f"outbox kind {kind.kind}")
            return render

        return register


class Router(Feature):
    """The features composed: `include` merges their tables, refusing a second handler for
    anything, and `check` that every button, flow state and outbox kind has its handler."""

    def __init__(self, name: str = "router") -> None:
        super().__init__(name)
        self.features: list[Feature] = []

    def include(self, *features: Feature) -> None:
        """Take in the features' handlers; DuplicateHandler when one is already taken."""
        for feature in features:
            if feature in self.features or feature is self:
                raise DuplicateHandler(f"{feature!r} is included twice")
            self.features.append(feature)
            tables: list[tuple[dict[Any, Any], dict[Any, Any], str]] = [
                (self.buttons, feature.buttons, "button"),
                (self.commands, feature.commands, "command"),
                (self.words, feature.words, "word"),
                (self.menu_items, feature.menu_items, "menu item"),
                (self.links, feature.links, "deep link"),
                (self.flows, feature.flows, "flow state"),
                (self.renderers, feature.renderers, "outbox kind"),
                (self.intents, feature.intents, "intent"),
            ]
            for mine, theirs, what in tables:
                for key, value in theirs.items():
                    if key in mine:
                        raise DuplicateHandler(
                            f"{feature.name}: {what} {getattr(key, '__name__', key)!r} is "
                            "already handled")
                    mine[key] = value
            self.flow_states.extend(feature.flow_states)
            self.link_intents.update(feature.link_intents)
            self.menu_intents.update(feature.menu_intents)

    def check(self, buttons: Iterable[type[Button]], kinds: Iterable[type[Notice]],
              intents: Iterable[Intent] = ()) -> None:
        """RuntimeError, naming them, when a button class, an outbox kind, a flow state or an
        intent has no handler."""
        missing = [kind.__name__ for kind in buttons if kind not in self.buttons]
        missing += [f"intent {intent.value}" for intent in intents if intent not in self.intents]
        missing += [f"outbox kind {kind.kind}" for kind in kinds if kind not in self.renderers]
        missing += [f"flow state {state!s}" for enum in self.flow_states for state in enum
                    if str(state) not in self.flows]
        if missing:
            raise RuntimeError(f"no handler for: {', '.join(missing)}")
