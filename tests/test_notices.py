"""The outbox kinds: each registered kind has a renderer, its payload survives the JSON of its
row, and rows queued by earlier versions read back into the same payload."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.i18n import Renderer, load_translations
from handlers.notices import notice
from storage.notices import (
    NOTICES,
    BroadcastNotice,
    CoopDigestNotice,
    CoopSetupNotice,
    CoopSurveyNotice,
    CoopWorkshopNotice,
    DigestComment,
    FeedbackPromptNotice,
    Notice,
    OfferExpiredNotice,
    OfferNotice,
    PayloadError,
    ReminderNotice,
    WorkshopCancelledNotice,
    WorkshopReminderNotice,
    load_notice,
)

TITLE = {"fr": "Emballage des produits du terroir", "ar": "تغليف المنتجات المحلية"}
ROOM = {"fr": "Salle 2", "ar": "القاعة 2"}
STARTS = dt.datetime(2026, 12, 13, 9, 30, tzinfo=dt.UTC)

EXAMPLES: list[Notice] = [
    BroadcastNotice(text={"fr": "Le salon ouvre à 10:00.", "ar": "يفتح المعرض على الساعة 10:00."},
                    urgent=True),
    ReminderNotice(text={"fr": "Dernier jour demain.", "ar": "غدا آخر يوم."}),
    CoopSetupNotice(stand="B12", zone={"fr": "Allée des arganiers", "ar": "ممر الأركان"},
                    setup_hours="08:00-10:00", opens=dt.date(2026, 12, 12), hours="10:00-19:00"),
    CoopWorkshopNotice(title=TITLE, room=ROOM, starts_at=STARTS),
    WorkshopReminderNotice(workshop_id=7, title=TITLE, room=ROOM, starts_at=STARTS, soon=True),
    FeedbackPromptNotice(workshop_id=7, title=TITLE, room=ROOM, starts_at=STARTS),
    CoopDigestNotice(stand="B12", day=dt.date(2026, 12, 12), views=3, views_total=9, saves=1,
                     ratings=2, average=4.5,
                     comments=(DigestComment(text="Très bon miel", language="fr"),)),
    CoopSurveyNotice(fair={"fr": "Salon de l'économie solidaire", "ar": "معرض الاقتصاد التضامني"}),
    OfferNotice(workshop_id=7, title=TITLE, room=ROOM, starts_at=STARTS,
                until=STARTS - dt.timedelta(hours=12)),
    OfferExpiredNotice(workshop_id=7, title=TITLE),
    WorkshopCancelledNotice(workshop="packaging-1", title=TITLE, starts_at=STARTS),
]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(load_translations(), ZoneInfo("Africa/Casablanca"))


def test_every_kind_has_an_example_here() -> None:
    assert {type(example) for example in EXAMPLES} == set(NOTICES.values())


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.kind)
def test_a_payload_round_trips_through_its_row_and_renders(example: Notice,
                                                            renderer: Renderer) -> None:
    stored = json.loads(json.dumps(example.dump()))  # what the JSON column gives back
    assert load_notice(example.kind, stored) == example
    assert load_notice(example.kind, stored).dump() == example.dump()
    for language in ("fr", "ar"):
        rendered = renderer.render(notice(example), language)
        assert rendered.text.strip()


# Rows as the versions before the registry queued them, kind by kind.
LEGACY: list[tuple[str, dict[str, Any]]] = [
    ("broadcast", {"text": {"fr": "Bonjour", "ar": "مرحبا"}, "urgent": False}),
    ("reminder", {"text": {"fr": "Bonjour", "ar": "مرحبا"}, "urgent": False}),
    ("coop_setup", {"stand": "B12", "zone": ROOM, "setup_hours": "08:00-10:00",
                    "opens": "2026-12-12", "hours": "10:00-19:00"}),
    ("coop_setup", {"stand": None, "zone": None, "setup_hours": None, "opens": "2026-12-12",
                    "hours": "10:00-19:00"}),
    ("coop_workshop", {"title": TITLE, "room": ROOM, "starts_at": "2026-12-13T09:30:00+00:00"}),
    ("workshop_reminder", {"workshop_id": 7, "title": TITLE, "room": ROOM,
                           "starts_at": "2026-12-13T09:30:00+00:00", "soon": False}),
    ("feedback_prompt", {"workshop_id": 7, "title": TITLE, "room": ROOM,
                         "starts_at": "2026-12-13T09:30:00+00:00", "soon": False}),
    ("coop_digest", {"stand": "B12", "day": "2026-12-12", "views": 0, "views_total": 4,
                     "saves": 0, "ratings": 0, "average": None, "comments": []}),
    ("coop_digest", {"stand": "B12", "day": "2026-12-12", "views": 3, "views_total": 9,
                     "saves": 1, "ratings": 2, "average": 4.5,
                     "comments": [{"text": "Très bon miel", "language": "fr"}]}),
    ("coop_survey", {"fair": {"fr": "Salon", "ar": "المعرض"}}),
    ("offer", {"workshop_id": 7, "title": TITLE, "room": ROOM,
               "starts_at": "2026-12-13T09:30:00+00:00",
               "until": "2026-12-12T21:30:00+01:00"}),
    ("offer_expired", {"workshop_id": 7, "title": TITLE}),
    ("workshop_cancelled", {"workshop": "packaging-1", "title": TITLE,
                            "starts_at": "2026-12-13T09:30:00+00:00"}),
]


@pytest.mark.parametrize(("kind", "payload"), LEGACY, ids=[kind for kind, _ in LEGACY])
def test_rows_queued_before_the_registry_read_back_unchanged(kind: str, payload: dict[str, Any],
                                                              renderer: Renderer) -> None:
    read = load_notice(kind, payload)
    assert read.kind == kind
    assert read.dump() == payload
    assert renderer.render(notice(read), "fr").text.strip()


def test_sending_policy_is_the_one_kinds_had_as_strings() -> None:
    assert {kind for kind, cls in NOTICES.items() if cls.bulk} == {
        "broadcast", "reminder", "offer", "coop_digest", "coop_survey"}
    assert all(cls.template == kind for kind, cls in NOTICES.items())
    assert BroadcastNotice(text={"fr": "x"}).held_in_quiet_hours()
    assert not BroadcastNotice(text={"fr": "x"}, urgent=True).held_in_quiet_hours()
    assert not OfferExpiredNotice(workshop_id=1, title=TITLE).held_in_quiet_hours()


def test_a_payload_that_does_not_fit_says_why() -> None:
    with pytest.raises(PayloadError, match=r"^offer payload does not fit: until: Field required$"):
        load_notice("offer", {"workshop_id": 7, "title": TITLE, "room": ROOM,
                              "starts_at": "2026-12-13T09:30:00+00:00"})
    with pytest.raises(PayloadError, match="workshop_id: Input should be a valid integer"):
        load_notice("offer_expired", {"workshop_id": "seven", "title": TITLE})
    with pytest.raises(PayloadError, match=r"^broadcast payload does not fit: payload: "):
        load_notice("broadcast", ["Bonjour"])
    with pytest.raises(PayloadError, match=r"^unknown message kind 'postcard'$"):
        load_notice("postcard", {})
