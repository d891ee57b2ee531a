"""Typed buttons: the exact ids they write (buttons already sent must keep working), reading
them back strictly, and the 64-byte limit checked when a button is built."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from handlers.buttons import LIMIT, Button, ButtonTooLong, Menu
from handlers.feedback import RateStand, Rating, SkipComment, SurveyAnswer, WorkshopRating
from handlers.info import PlaceMap, WholePlaceMap
from handlers.menu import MenuItem
from handlers.organizers import (
    BroadcastAudience,
    BroadcastCancel,
    BroadcastConfirm,
    BroadcastNow,
    BroadcastWorkshop,
    BroadcastWorkshops,
    StatsPage,
)
from handlers.privacy import AboutData, EraseAnswer, EraseData, SeeData
from handlers.registrations import CalendarFile, RegisterAnyway
from handlers.seat_buttons import OfferAnswer, Register, Unregister
from handlers.stands import (
    FacetStands,
    FloorMap,
    MoreResults,
    Neighbours,
    SaveStand,
    StandCard,
    UnsaveStand,
    WholeMap,
    ZoneStands,
)
from handlers.start import Language, Resume
from handlers.talk import Clarify
from handlers.workshops import WorkshopCard, WorkshopDay, WorkshopLanguage, WorkshopTopic
from tests.conftest import Answer, Chat

# Every kind of button and the id it has always been sent with.
WIRE: list[tuple[Button, str]] = [
    (Menu(), "menu"),
    (MenuItem("ws"), "m:ws"),
    (MenuItem("cat"), "m:cat"),
    (Clarify("workshop"), "why:workshop"),
    (Language("ar"), "lang:ar"),
    (Language("fr"), "lang:fr"),
    (Resume(), "resume"),
    (AboutData(), "pvabout"),
    (SeeData(), "pvsee"),
    (EraseData(), "pverase"),
    (EraseAnswer(erase=True, asked=29_416_000), "pvconfirm:yes:29416000"),
    (WorkshopDay(0), "wsd:0"),
    (WorkshopCard(42), "ws:42"),
    (WorkshopTopic(3), "wst:3"),
    (WorkshopLanguage("fr"), "wsl:fr"),
    (Register(42), "reg:42"),
    (RegisterAnyway(42), "regx:42"),
    (Unregister(42), "unreg:42"),
    (OfferAnswer(accept=True, workshop_id=12), "offer:yes:12"),
    (OfferAnswer(accept=False, workshop_id=12), "offer:no:12"),
    (CalendarFile(), "ics"),
    (ZoneStands(2), "zone:2"),
    (ZoneStands(2, 1), "zone:2:1"),
    (FacetStands("cat", 4), "fv:cat:4"),
    (FacetStands("reg", 4, 2), "fv:reg:4:2"),
    (StandCard("A12"), "st:A12"),
    (Neighbours("A12"), "nb:A12"),
    (FloorMap("A12"), "map:A12"),
    (WholeMap("A12"), "mapw:A12"),
    (PlaceMap("salle-2"), "pl:salle-2"),
    (WholePlaceMap("salle-2"), "plw:salle-2"),
    (MoreResults(1), "more:1"),
    (SaveStand("B7"), "sv:B7"),
    (UnsaveStand("B7"), "unsv:B7"),
    (RateStand("A12"), "fbs:A12"),
    (Rating(5), "rate:5"),
    (SkipComment(), "fb:skip"),
    (WorkshopRating(7, 4), "fbw:7:4"),
    (SurveyAnswer("s", "5"), "svy:s:5"),
    (SurveyAnswer("a", "yes"), "svy:a:yes"),
    (SurveyAnswer("b", "10k-50k"), "svy:b:10k-50k"),
    (SurveyAnswer("skip"), "svy:skip"),
    (BroadcastCancel(), "bc:cancel"),
    (BroadcastAudience("all"), "bc:aud:all"),
    (BroadcastAudience("lang:ar"), "bc:aud:lang:ar"),
    (BroadcastNow(), "bc:now"),
    (BroadcastConfirm(), "bc:confirm"),
    (BroadcastWorkshops(2), "bc:wss:2"),
    (BroadcastWorkshop(14), "bc:ws:14"),
    (StatsPage(1), "stats:1"),
]


def _declared(kind: type[Button] = Button) -> set[type[Button]]:
    """The buttons handlers/ declares (the features and handlers/buttons.py)."""
    found = {sub for sub in kind.__subclasses__() if sub.__module__.startswith("handlers.")}
    return found.union(*(_declared(sub) for sub in found))


def test_the_table_covers_every_declared_button() -> None:
    assert {type(button) for button, _wire in WIRE} == _declared()


@pytest.mark.parametrize(("button", "wire"), WIRE, ids=[wire for _button, wire in WIRE])
def test_a_button_packs_to_its_id_and_reads_back(button: Button, wire: str) -> None:
    assert button.pack() == wire
    assert Button.unpack(wire) == button
    assert type(Button.unpack(wire)) is type(button)


def test_global_buttons_are_the_ones_that_come_unasked() -> None:
    honoured = {kind for kind in _declared() if kind.is_global}
    assert honoured == {Menu, MenuItem, Language, OfferAnswer, WorkshopRating, SurveyAnswer,
                        Resume, AboutData}


def test_a_button_over_64_bytes_is_refused_when_built() -> None:
    assert len(StandCard("A" * (LIMIT - 3)).pack()) == LIMIT
    with pytest.raises(ButtonTooLong):
        StandCard("A" * (LIMIT - 2))
    # Bytes, not characters: 31 Arabic letters are 62 bytes.
    with pytest.raises(ButtonTooLong):
        WorkshopLanguage("ع" * 31)
    with pytest.raises(ButtonTooLong):
        BroadcastAudience("lang:" + "x" * 60)


@pytest.mark.parametrize("button", [
    lambda: StandCard("A:1"), lambda: WorkshopCard(-1), lambda: WorkshopCard(10 ** 9),
    lambda: WorkshopCard(True), lambda: ZoneStands(1, -2),
])
def test_a_field_that_would_not_read_back_is_refused(button: Callable[[], Button]) -> None:
    with pytest.raises(ValueError):
        button()


@pytest.mark.parametrize("text", [
    "ws:²", "reg:١٢", "wsd:٣", "offer:maybe:1", "offer:yes:", "offer:yes:²", "offer:yes:1:2",
    "zone:1:x", "zone:1:2:3", "zone:", "ws:1:2", "ws:", "ws", "ws:-1", "ws:+1", "ws: 1",
    "ws:007", "zone:3:0", "ws:1234567890", "fbw:1:5\n", "fbw:²:5", "fbw:1", "rate:5:5",
    "menu:x", "ics:1", "fb:skip:x", "bc:aud", "lang:ar:fr", "m:ws:x", "st:A1:B2",
    "offer:yes:" + "9" * 40, "st:" + "A" * 70, "", ":", "unknown:1", "menu ", "MENU",
])
def test_a_malformed_id_reads_as_nothing(text: str) -> None:
    assert Button.unpack(text) is None


def test_a_prefix_is_declared_once() -> None:
    with pytest.raises(TypeError):
        type("Twice", (Button,), {"__annotations__": {"number": "str"}}, prefix="st")


def test_fields_are_int_bool_str_or_a_last_rest() -> None:
    with pytest.raises(TypeError):
        type("Floaty", (Button,), {"__annotations__": {"x": "float"}}, prefix="test:float")
    with pytest.raises(TypeError):
        type("RestFirst", (Button,), {"__annotations__": {"x": "Rest", "y": "int"}},
             prefix="test:rest")
    assert Button.unpack("test:rest:1:2") is None


STALE = ("Ce bouton n'est plus valable", "هذا الزر لم يعد صالحًا")


async def test_every_button_the_bot_offers_reads_back_and_is_honoured(chat: Chat) -> None:
    """Walks through the bot, each tapping one button of each kind not tapped yet (each entry
    of a menu, each workshop to register for): each id the bot offers is the id of a declared
    button, and each tap is answered, not refused as stale. A person per walk: the bot slows
    down a fast writer."""
    offered: set[type[Button]] = set()
    tapped: set[object] = set()

    def read(answer: Answer) -> list[Button]:
        found = [Button.unpack(choice["id"]) for choice in answer.choices]
        for button, choice in zip(found, answer.choices, strict=True):
            assert button is not None and button.pack() == choice["id"], choice
            offered.add(type(button))
        return [button for button in found if button is not None]

    for person, word in enumerate(["Ateliers", "Ateliers", "Ateliers", "stands", "stands",
                                   "A12", "A12", "A12", "A12", "tapis", "avis",
                                   "/start ws_marketing-1"]):
        user = f"walker{person}"
        read(await chat(user, "bonjour"))
        await chat.tap(user, "lang:fr")
        answer = await chat(user, word)
        for _step in range(10):
            fresh = []
            for button in read(answer):
                key = button if isinstance(button, (MenuItem, Register)) else type(button)
                if key not in tapped and not isinstance(button, Language):
                    fresh.append((key, button))
            if not fresh:
                break
            key, button = fresh[0]
            tapped.add(key)
            answer = await chat.tap(user, button.pack())
            assert not any(stale in answer.text for stale in STALE), (button, answer)
    # "My workshops" is in every menu, so tapped first with no registration: once registered.
    user = "walker-registered"
    await chat(user, "bonjour")
    await chat.tap(user, "lang:fr")
    await chat(user, "/start ws_marketing-1")
    await chat.tap(user, "S'inscrire")
    for button in read(await chat(user, "mes ateliers")):
        if isinstance(button, (CalendarFile, Unregister)):
            answer = await chat.post({"session": chat.session(user), "choice": button.pack()})
            assert not any(stale in answer.text for stale in STALE), (button, answer)
    assert {MenuItem, Menu, Language, WorkshopDay, WorkshopCard, WorkshopTopic, WorkshopLanguage,
            Register, CalendarFile, Unregister, ZoneStands, FacetStands, StandCard, FloorMap,
            Neighbours, SaveStand, UnsaveStand, RateStand, Rating, SkipComment,
            MoreResults} <= offered, sorted(kind.__name__ for kind in offered)
