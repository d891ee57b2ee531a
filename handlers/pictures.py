"""Pictures and files as handlers describe them: what to show, in words still to translate.
bot/ draws them (bot/pictures.py) when it renders the reply, as it does the text."""

from __future__ import annotations

import datetime as dt
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from handlers.messages import Content, Local
from storage.reports import RatingCounts, WorkshopFill
from storage.repositories import PlaceView, StandView


@dataclass(frozen=True, slots=True)
class FloorPlan:
    """The fair's floor plan with one stand (`highlight`, a number) or one place (`place`, an
    id) marked, a title above it, the catalogue's places and the entrance (named `entrance`
    when the catalogue places none). Drawn zoomed around what is marked, for phones, with an
    overview of the whole plan; `whole`: the whole plan."""

    stands: tuple[StandView, ...]
    highlight: str
    title: Content
    entrance: Content
    # The pictures of the catalogue version served (by stand and language), where the drawn
    # plan is kept: each is drawn once per process and version.
    drawn: MutableMapping[tuple[str, ...], bytes] | None = field(
        default=None, compare=False, repr=False)
    places: tuple[PlaceView, ...] = ()
    place: str = ""
    whole: bool = False


@dataclass(frozen=True, slots=True)
class WorkshopEvent:
    """One workshop in a calendar file."""

    uid: str
    title: Local
    location: Local
    starts_at: dt.datetime
    ends_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Calendar:
    """A calendar file of workshops, its times in the fair's time zone."""

    events: tuple[WorkshopEvent, ...]
    fair_name: Local
    zone: ZoneInfo


@dataclass(frozen=True, slots=True)
class SummaryChart:
    """Organizers' chart: the fair's ratings beside each workshop's seats taken."""

    ratings: RatingCounts
    workshops: tuple[WorkshopFill, ...]


@dataclass(frozen=True, slots=True)
class CheckinPass:
    """The QR code a person shows at a workshop's door: their check-in code, as the address of
    the console's check-in page when the service has a public address (a phone's camera app
    opens it), else the code alone."""

    code: str


Picture = FloorPlan | Calendar | SummaryChart | CheckinPass
"""What bot/ draws into a reply's media."""
