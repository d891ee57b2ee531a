"""The catalogue's places (rooms, toilets, prayer room...) as messages name them ("où est la
salle 2 ?", "fin kayna l9a3a 1", "أين القاعة 1؟"); handlers/info.py shows them on the map."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from rapidfuzz import fuzz

from handlers.understanding import Intent, Understanding
from storage.repositories import PlaceView
from storage.text import fold

# Words that say "a room" (in a place's name they do not tell rooms apart).
ROOM_WORDS = frozenset(fold(word) for word in (
    "salle", "salles", "room", "rooms", "قاعة", "القاعة", "قاعات", "l9a3a", "la9a3a", "9a3a",
    "lqa3a", "qa3a", "l9aa", "sala", "sall"))
# Small words a place's name may hold that name nothing.
SMALL_WORDS = frozenset(fold(word) for word in (
    "de", "des", "du", "la", "le", "les", "l", "d", "the", "of", "dyal", "dial", "di", "ta3",
    "a", "au", "aux"))
# Words that ask where something is: with a place named, the answer is its map.
WHERE_WORDS = frozenset(fold(word) for word in (
    "où", "ou", "fin", "fine", "feen", "fain", "فين", "فاين", "أين", "اين", "وين", "where",
    "wher", "localisation", "emplacement", "situé", "située", "trouve", "trouver", "plan",
    "carte", "map", "خريطة", "مكان", "blassa", "plasa"))
# A word this alike (rapidfuzz ratio) to a name's word is that word ("conference",
# "conférences"); only for words this long: "salle 1" is not "salle 7".
ALIKE = 85.0
ALIKE_FROM = 5
# Understood intents a named place outweighs even without a "where": a misreading of it.
MISREAD = (Intent.UNKNOWN, Intent.STAND, Intent.STANDS, Intent.INFO, Intent.SMALLTALK,
           Intent.WELCOME)
# The practical topics a kind of place answers (the map goes with the catalogue's answer).
TOPIC_KINDS = {"toilets": "toilets", "prayer": "prayer", "first_aid": "first_aid",
               "food": "food", "entry": "entrance"}


def _words(text: str) -> list[str]:
    return [word.removeprefix("ال") if len(word) > 4 and word.startswith("ال") else word
            for word in fold(text).split()]


def _own_words(place: PlaceView) -> list[set[str]]:
    """Per name of the place, the words that tell it apart from other places."""
    return [{word for word in _words(name) if word not in ROOM_WORDS | SMALL_WORDS
             and fold(word) not in ROOM_WORDS}
            for name in place.name.values()]


def _said(word: str, message: Sequence[str]) -> bool:
    if word in message:
        return True
    return len(word) >= ALIKE_FROM and any(
        fuzz.ratio(word, said) >= ALIKE for said in message if len(said) >= ALIKE_FROM - 1)


def find_places(text: str, places: Sequence[PlaceView]) -> tuple[str, ...]:
    """The ids of the places a message names, the most fully named first: every word of one
    of its names that tells it apart, and a word for "room" when that word is a number."""
    message = _words(text)
    room_said = any(word in ROOM_WORDS for word in message) or any(
        fold(word) in ROOM_WORDS for word in fold(text).split())
    found: list[tuple[int, int, str]] = []
    for position, place in enumerate(places):
        best = 0
        for own in _own_words(place):
            if not own or not all(_said(word, message) for word in own):
                continue
            if all(word.isdigit() for word in own) and not room_said:
                continue
            best = max(best, len(own))
        if best:
            found.append((-best, position, place.id))
    return tuple(place for _best, _position, place in sorted(found))


def asks_where(text: str) -> bool:
    """Whether the message asks where something is."""
    return any(word in WHERE_WORDS for word in fold(text).split())


def with_places(understood: Understanding, text: str, places: Sequence[PlaceView]
                ) -> Understanding:
    """The understanding with the places the text names; a place asked for ("où est la salle
    2 ?") makes it a practical question, answered with that place's map."""
    named = find_places(text, places) if places else ()
    if not named:
        return understood
    entities = replace(understood.entities, places=named)
    if understood.entities.info is not None and understood.intent is Intent.INFO:
        return replace(understood, entities=entities)
    if asks_where(text) or understood.intent in MISREAD or understood.in_doubt:
        return replace(understood, intent=Intent.INFO, confidence=max(understood.confidence,
                                                                       0.9),
                       entities=entities, alternatives=())
    return replace(understood, entities=entities)


def of_kind(places: Sequence[PlaceView], topic: str) -> PlaceView | None:
    """The first place of the kind a practical topic is about (the toilets for "toilets")."""
    kind = TOPIC_KINDS.get(topic)
    return next((place for place in places if place.kind == kind), None) if kind else None
