"""The understanding step: every free text's intent and entities, before any search."""

from handlers.understanding.gazetteer import (
    FairCalendar,
    Gazetteer,
    InfoTopic,
    WorkshopEntry,
    info_topics,
)
from handlers.understanding.types import (
    Entities,
    ExhibitorMatch,
    Intent,
    ProductMatch,
    Understanding,
)
from handlers.understanding.understand import asks, understand, warm

__all__ = [
    "Entities",
    "ExhibitorMatch",
    "FairCalendar",
    "Gazetteer",
    "InfoTopic",
    "Intent",
    "ProductMatch",
    "Understanding",
    "WorkshopEntry",
    "asks",
    "info_topics",
    "understand",
    "warm",
]
