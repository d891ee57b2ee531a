"""What the understanding step says of a message: its intent, the entities it names, and the
next likely intents when it is not sure."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass


class Intent(enum.StrEnum):
    """What a message asks for (CONTRACT, section Intents)."""

    WELCOME = "welcome"
    MENU = "menu"
    LANGUAGE = "language"
    HELP = "help"
    INFO = "info"
    SMALLTALK = "smalltalk"
    WORKSHOPS = "workshops"
    WORKSHOP = "workshop"
    MY_WORKSHOPS = "my_workshops"
    STANDS = "stands"
    STAND = "stand"
    MY_LIST = "my_list"
    FEEDBACK = "feedback"
    STOP = "stop"
    PRIVACY = "privacy"
    COOPERATIVE = "cooperative"
    ORGANIZER = "organizer"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ProductMatch:
    """A product the message names: the catalogue's text that matched (as written there), how
    close it is (0-100), and who sells it (exhibitor ids and their stands, in stand order)."""

    text: str
    score: float
    exhibitors: tuple[str, ...]
    stands: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ExhibitorMatch:
    """An exhibitor the message names, by its id, and its stand."""

    id: str
    stand: str


@dataclass(frozen=True, slots=True)
class Entities:
    """What a message names. Catalogue entities are ids: exhibitor and workshop ids, category
    ids, label ids; cities and regions by their folded French name (the facets' key)."""

    day: dt.date | None = None
    language: str | None = None
    stand: str | None = None
    info: str | None = None
    workshops: tuple[str, ...] = ()
    exhibitors: tuple[ExhibitorMatch, ...] = ()
    products: tuple[ProductMatch, ...] = ()
    categories: tuple[str, ...] = ()
    cities: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    places: tuple[str, ...] = ()  # ids of the catalogue's places (rooms, toilets...) named

    def catalogue_stands(self) -> bool:
        """Whether it names something stands are found by (a product, category, place, label)."""
        return bool(self.products or self.categories or self.cities or self.regions
                    or self.labels)

    def pairs(self) -> set[tuple[str, str]]:
        """The entities as `key=value` pairs, the way labelled sets write them."""
        out: set[tuple[str, str]] = set()
        for key, value in (("day", self.day.isoformat() if self.day else None),
                           ("language", self.language), ("stand", self.stand),
                           ("info", self.info)):
            if value is not None:
                out.add((key, value))
        for key, values in (("workshop", self.workshops), ("category", self.categories),
                            ("city", self.cities), ("region", self.regions),
                            ("label", self.labels)):
            out.update((key, value) for value in values)
        for exhibitor in self.exhibitors:
            out.update({("exhibitor", exhibitor.id), ("stand", exhibitor.stand)})
        # The product named is the closest one (those equally close); the others are sold too.
        top = max((product.score for product in self.products), default=0.0)
        out.update(("product", product.text) for product in self.products
                   if product.score >= top)
        return out


@dataclass(frozen=True, slots=True)
class Understanding:
    """The intent of a message, how sure (0-1), what it names, and the next likely intents
    (most likely first) when the step is in doubt: the router asks one question with them."""

    intent: Intent
    confidence: float
    entities: Entities
    alternatives: tuple[Intent, ...] = ()

    @property
    def in_doubt(self) -> bool:
        return bool(self.alternatives)
