"""Calendar files (.ics) for the workshops a person registered for."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import icalendar


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    """One workshop, with its texts already in the reader's language."""

    uid: str
    title: str
    location: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    description: str = ""


def ics(events: Iterable[CalendarEvent], zone: dt.tzinfo, fair_name: str) -> bytes:
    """An iCalendar file of `events`, their times in the fair's time zone (VTIMEZONE included),
    each with an alarm one hour before."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Tadamon//fair workshops//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", fair_name)
    stamp = dt.datetime.now(dt.UTC)
    for item in events:
        event = icalendar.Event()
        event.add("uid", item.uid)
        event.add("dtstamp", stamp)
        event.add("summary", item.title)
        event.add("location", item.location)
        event.add("dtstart", item.starts_at.astimezone(zone))
        event.add("dtend", item.ends_at.astimezone(zone))
        if item.description:
            event.add("description", item.description)
        alarm = icalendar.Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", item.title)
        alarm.add("trigger", dt.timedelta(hours=-1))
        event.add_component(alarm)
        calendar.add_component(event)
    calendar.add_missing_timezones()
    return bytes(calendar.to_ical())
