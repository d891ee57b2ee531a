"""The map for phones and the catalogue's places: the zoomed picture's stand numbers are legible
at 390 px wide (measured in its pixels), with an overview and portrait for tall plans; places
are parsed, stored, updated in place and drawn; "où est la salle 2 ?" and its Darija, Arabic
and English forms show that place's map on the web chat, as do the practical answers and a
workshop's card."""

from __future__ import annotations

import io
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy
import pytest
import yaml
from PIL import Image
from sqlalchemy import select

from bot.app import sample_catalogue
from bot.errors import CatalogueError
from bot.floormap import (
    HIGHLIGHT,
    MUTED,
    NUMBER_INK,
    PLACE_SIGNS,
    ZOOM_WIDTH,
    PlanPlace,
    PlanStand,
    draw_floor_map,
)
from storage.models import Place, Workshop
from storage.repositories import CatalogueRepository
from tests.conftest import Chat
from tests.test_catalogue import OpenDb, open_db, sample, small_sample, write_yaml

__all__ = ["open_db"]  # the fixture, shared with tests/test_catalogue.py

PHONE = 390  # px: the width a phone shows a picture at
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _plan(language: str) -> tuple[list[PlanStand], list[PlanPlace]]:
    data = yaml.safe_load(Path(sample_catalogue()).read_text(encoding="utf-8"))
    stands = [PlanStand(stand["number"], stand["zone"][language], stand["x"], stand["y"])
              for stand in data["stands"]]
    places = [PlanPlace(place["id"], place["kind"], place["name"][language], place["x"],
                        place["y"]) for place in data["places"]]
    return stands, places


def _picture(png: bytes) -> Image.Image:
    assert png.startswith(PNG_SIGNATURE)
    return Image.open(io.BytesIO(png)).convert("RGB")


def _mask(picture: Image.Image, colour: tuple[int, int, int]) -> numpy.ndarray[Any, Any]:
    pixels = numpy.asarray(picture)
    return numpy.all(pixels == numpy.array(colour, dtype=pixels.dtype), axis=2)


def _ink_heights(picture: Image.Image, colour: tuple[int, int, int]) -> list[int]:
    """The heights (px) of the bands of rows holding ink of exactly `colour`: one band per row
    of stand numbers (letters and digits of one line share their top and baseline). Only the
    pixels wholly inked count, so the measure is a little under what the eye sees."""
    rows = _mask(picture, colour).any(axis=1)
    heights, run = [], 0
    for inked in rows:
        if inked:
            run += 1
        elif run:
            heights.append(run)
            run = 0
    if run:
        heights.append(run)
    return heights


def _on_a_phone(height: int, picture: Image.Image) -> float:
    """A height in the picture, in px on a phone that shows the picture 390 px wide."""
    return height * PHONE / picture.width


@pytest.mark.parametrize("language", ["fr", "ar"])
def test_the_phone_map_shows_stand_numbers_12px_high_at_390px(language: str) -> None:
    stands, places = _plan(language)
    title = "Stand A12 · Hall A" if language == "fr" else "الجناح A12 · الرواق أ"
    png = draw_floor_map(stands, highlight="A12", title=title, entrance="Entrée",
                         language=language, places=places, zoom=True)
    picture = _picture(png)
    assert picture.width == ZOOM_WIDTH and picture.height < 1.4 * picture.width
    heights = _ink_heights(picture, NUMBER_INK)
    assert len(heights) >= 3  # several rows of neighbours around the stand
    assert min(_on_a_phone(height, picture) for height in heights) >= 12.0, heights
    assert _mask(picture, HIGHLIGHT).sum() > 3000  # the stand itself, in red

    # The whole plan is still drawn, 1000 px wide: its numbers are the ~4 px the issue saw.
    whole = _picture(draw_floor_map(stands, highlight="A12", title=title, entrance="Entrée",
                                    language=language, places=places))
    assert whole.width == 1000
    assert statistics.median(_on_a_phone(height, whole)
                             for height in _ink_heights(whole, MUTED)) < 6.0


def test_the_phone_map_has_an_overview_framing_the_part_shown() -> None:
    stands, places = _plan("fr")
    picture = _picture(draw_floor_map(stands, highlight="A12", title="Stand A12",
                                      entrance="Entrée", language="fr", places=places,
                                      zoom=True))
    # A12 is at the top left of the plan: the overview goes to the opposite corner.
    corner = picture.crop((picture.width - 240, picture.height - 240, picture.width,
                           picture.height))
    assert _mask(corner, HIGHLIGHT).sum() > 100  # the red frame of the part shown, and a dot
    assert _mask(corner, (255, 255, 255)).sum() > 2000  # the overview's white card
    top_left = picture.crop((0, 80, 240, 320))
    assert _mask(top_left, (255, 255, 255)).sum() < _mask(corner, (255, 255, 255)).sum() * 4


def test_the_phone_map_of_a_tall_plan_is_portrait() -> None:
    stands = [PlanStand(f"{'ABCD'[column]}{row + 1}", f"Allée {'ABCD'[column]}",
                        60 + 60 * column, 60 + 50 * row)
              for column in range(4) for row in range(40)]
    picture = _picture(draw_floor_map(stands, highlight="C20", title="Stand C20",
                                      entrance="Entrée", language="fr", zoom=True))
    assert picture.height > 1.3 * picture.width
    heights = _ink_heights(picture, NUMBER_INK)
    assert min(_on_a_phone(height, picture) for height in heights) >= 12.0


def test_places_are_drawn_with_their_sign_and_the_place_asked_for_is_marked() -> None:
    stands, places = _plan("fr")
    prayer = PLACE_SIGNS["prayer"][1]
    bare = _picture(draw_floor_map(stands, highlight=None, title="Plan", entrance="Entrée",
                                   language="fr"))
    placed = _picture(draw_floor_map(stands, highlight=None, title="Plan", entrance="Entrée",
                                     language="fr", places=places))
    assert _mask(bare, prayer).sum() == 0 and _mask(placed, prayer).sum() > 100

    room = _picture(draw_floor_map(stands, highlight=None, place="salle-2", title="Salle 2",
                                   entrance="Entrée", language="fr", places=places, zoom=True))
    # The room is at the middle of the view, in a red disc.
    middle = room.crop((room.width // 2 - 60, room.height // 2 - 60, room.width // 2 + 60,
                        room.height // 2 + 60))
    assert _mask(middle, HIGHLIGHT).sum() > 800


# -- the catalogue's places ---------------------------------------------------------------------


async def test_places_are_stored_and_a_workshop_room_may_name_one(open_db: OpenDb) -> None:
    db = await open_db("sqlite")
    catalogue = CatalogueRepository(db.sessions)
    fair = await catalogue.fair()
    assert fair is not None
    snapshot = await catalogue.current(fair.id)
    assert snapshot is not None
    assert [place.id for place in snapshot.places] == [place["id"] for place in sample()["places"]]
    room = next(place for place in snapshot.places if place.id == "salle-2")
    assert (room.kind, room.name["fr"], room.name["ar"], room.x, room.y) == (
        "room", "Salle 2", "القاعة 2", 330, 300)
    workshop = await catalogue.workshop_by_key(fair.id, "marketing-1")
    assert workshop is not None and workshop.place == "salle-2"
    assert workshop.room["fr"] == "Salle 2" and workshop.room["ar"] == "القاعة 2"


async def test_reimport_updates_places_in_place(open_db: OpenDb, tmp_path: Path) -> None:
    db = await open_db("sqlite")
    before = {row.key: row.id for row in await db.all(Place)}
    data = sample()
    data["places"][1]["name"] = {"fr": "Salle Atlas", "ar": "قاعة الأطلس"}
    data["places"][1]["x"] = 340
    data["places"] = [place for place in data["places"] if place["id"] != "accueil"]
    data["places"].append({"id": "buvette", "kind": "food",
                           "name": {"fr": "Buvette", "ar": "المقصف"}, "x": 900, "y": 565})
    report = await db.load(write_yaml(tmp_path / "fair.yaml", data))
    assert report.totals["places"] == len(data["places"])
    after = {row.key: row for row in await db.all(Place)}
    assert "accueil" not in after and after["buvette"].kind == "food"
    renamed = after["salle-2"]
    assert renamed.id == before["salle-2"]  # the same row, updated
    assert (renamed.name["fr"], renamed.x) == ("Salle Atlas", 340)
    # The workshops held there now carry its new name.
    assert (await db.one(Workshop, key="marketing-1")).room["fr"] == "Salle Atlas"

    same = await db.load(write_yaml(tmp_path / "fair.yaml", data))
    assert (same.created, same.updated, same.removed) == (0, 0, 0)


def _place(index: int, **fields: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        place = data["places"][index]
        for name, value in fields.items():
            if value is None:
                place.pop(name, None)
            else:
                place[name] = value

    return change


def _room(room: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["workshops"][2]["room"] = room

    return change


PLACES_BROKEN: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "unknown kind": (_place(2, kind="stage"),
                     "fair.yaml: places[2].kind: must be one of 'room', 'entrance', 'toilets', "
                     "'prayer', 'first_aid', 'food', 'info' or 'exit'"),
    "name without arabic": (_place(1, name={"fr": "Salle 2"}),
                            "fair.yaml: places[1].name.ar: is required"),
    "duplicate id": (_place(3, id="salle-1"), 'fair.yaml: places[3].id: duplicate id "salle-1"'),
    "no y": (_place(0, y=None), "fair.yaml: places[0].y: is required"),
    "negative x": (_place(0, x=-5), "fair.yaml: places[0].x: is too small"),
    "room names no place": (
        _room("salle-9"),
        'fair.yaml: workshops[2].room: unknown place "salle-9": add it under places: or give '
        "the room's name as {fr: ..., ar: ...}"),
    "room as plain text": (
        _room("Salle 1"),
        "fair.yaml: workshops[2].room: must be a text in French and Arabic: {fr: ..., ar: ...}"
        ", or the id of a place"),
}


@pytest.mark.parametrize("case", list(PLACES_BROKEN))
async def test_broken_places_name_the_file_and_the_place(open_db: OpenDb, tmp_path: Path,
                                                         case: str) -> None:
    db = await open_db("sqlite")
    before = [(row.key, row.name, row.x) for row in await db.all(Place)]
    change, expected = PLACES_BROKEN[case]
    data = small_sample()
    change(data)
    with pytest.raises(CatalogueError) as caught:
        await db.load(write_yaml(tmp_path / "fair.yaml", data))
    assert str(caught.value) == expected
    assert [(row.key, row.name, row.x) for row in await db.all(Place)] == before


async def test_a_catalogue_without_places_has_none(open_db: OpenDb, tmp_path: Path) -> None:
    db = await open_db("sqlite")
    data = sample()
    del data["places"]
    names = {"salle-1": {"fr": "Salle 1", "ar": "القاعة 1"},
             "salle-2": {"fr": "Salle 2", "ar": "القاعة 2"},
             "salle-conferences": {"fr": "Salle de conférences", "ar": "قاعة الندوات"}}
    for workshop in data["workshops"]:
        workshop["room"] = names[workshop["room"]]
    await db.load(write_yaml(tmp_path / "fair.yaml", data))
    assert await db.all(Place) == []
    async with db.sessions() as session:
        rooms = set(await session.scalars(select(Workshop.place)))
    assert rooms == {None}


# -- in the conversation ------------------------------------------------------------------------


async def _image(chat: Chat, answer: Any) -> Image.Image:
    [image] = [item for reply in answer.replies for item in reply["media"]]
    assert image["type"] == "image"
    response = await chat.client.get(image["url"])
    assert response.status == 200 and response.content_type == "image/png"
    return _picture(await response.read())


async def _speaking(chat: Chat, user: str, language: str) -> None:
    await chat(user, "bonjour" if language == "fr" else "السلام عليكم")
    await chat.tap(user, "Français" if language == "fr" else "العربية")


@pytest.mark.parametrize(("language", "question", "shown"), [
    ("fr", "où est la salle 2 ?", "En rouge sur le plan\u202f: Salle 2."),
    ("ar", "fin kayna l9a3a 1", "باللون الأحمر على الخريطة: القاعة 1."),
    ("ar", "أين القاعة 1؟", "باللون الأحمر على الخريطة: القاعة 1."),
    ("fr", "where is the conference room", "En rouge sur le plan\u202f: Salle de conférences."),
])
async def test_where_is_a_room_shows_it_on_the_map(chat: Chat, language: str, question: str,
                                                   shown: str) -> None:
    await _speaking(chat, "amina", language)
    answer = await chat("amina", question)
    assert answer.status == 200
    assert answer.body.get("intent") in (None, "info")
    assert shown in answer.text, answer.text
    picture = await _image(chat, answer)
    assert picture.width == ZOOM_WIDTH
    labels = {"fr": ("Plan complet", "Menu"), "ar": ("الخريطة الكاملة",)}[language]
    assert all(any(label in choice for choice in answer.labels) for label in labels)
    whole = await chat.tap("amina", labels[0])
    assert (await _image(chat, whole)).width == 1000


async def test_the_toilets_answer_comes_with_their_map(chat: Chat) -> None:
    await _speaking(chat, "amina", "fr")
    answer = await chat("amina", "où sont les toilettes ?")
    assert "Les toilettes sont près de l'entrée principale" in answer.text
    assert "En rouge sur le plan\u202f: Toilettes." in answer.text
    [image] = answer.replies[-1]["media"]
    assert image["url"] and "Toilettes" in image["caption"]

    await _speaking(chat, "karim", "ar")
    arabic = await chat("karim", "فين قاعة الصلاة؟")
    assert "توجد قاعة الصلاة قرب المدخل الرئيسي" in arabic.text
    assert "قاعة الصلاة" in arabic.replies[-1]["media"][0]["caption"]


async def test_a_workshop_card_links_to_the_map_of_its_room(chat: Chat) -> None:
    await _speaking(chat, "amina", "fr")
    card = await chat("amina", "/start ws_legal-framework-1")
    assert "Salle de conférences" in card.text and "Plan de la salle" in card.labels
    shown = await chat.tap("amina", "Plan de la salle")
    assert "En rouge sur le plan\u202f: Salle de conférences." in shown.text
    assert (await _image(chat, shown)).width == ZOOM_WIDTH


async def test_the_stand_map_zooms_in_and_the_whole_plan_stays(chat: Chat) -> None:
    await _speaking(chat, "amina", "fr")
    await chat("amina", "A18")
    zoomed = await chat.tap("amina", "Plan")
    picture = await _image(chat, zoomed)
    assert picture.width == ZOOM_WIDTH
    assert min(_on_a_phone(height, picture)
               for height in _ink_heights(picture, NUMBER_INK)) >= 12.0
    whole = await chat.tap("amina", "Plan complet")
    assert "Le stand A18 est en rouge sur le plan complet." in whole.text
    assert (await _image(chat, whole)).width == 1000
    again = await chat.tap("amina", "Vue rapprochée")
    assert (await _image(chat, again)).width == ZOOM_WIDTH
