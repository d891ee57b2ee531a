"""Stands: zones, stand cards by number, and the search by name, product or city."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from handlers.buttons import Button
from handlers.context import Context
from handlers.feature import Feature
from handlers.feedback import RateStand
from handlers.menu import MenuItem, back_to_menu
from handlers.messages import Choice, Content, Isolated, Local, Media, Msg, Reply, _, _n, reply
from handlers.pictures import FloorPlan
from handlers.understanding import Entities, Intent
from storage.catalogue import normalize_stand_number, stand_order
from storage.repositories import ExhibitorView
from storage.search import SearchEntry, query_terms
from storage.text import fold

feature = Feature("stands", Intent.STANDS)

# `stand A12`, `رواق A12`: a stand number said with its word.
STAND_WORD = re.compile(r"(?:stand|رواق)\s*(.+)", re.IGNORECASE)


class ZoneStands(Button, prefix="zone"):
    """A page of the stands of the n-th zone."""

    index: int
    page: int = 0


class FacetStands(Button, prefix="fv"):
    """A page of the stands of the n-th value of a facet (`cat`, `reg`, `lab`)."""

    facet: str
    index: int
    page: int = 0


class StandCard(Button, prefix="st"):
    """One stand's card."""

    number: str


class Neighbours(Button, prefix="nb"):
    """The stands near one."""

    number: str


class FloorMap(Button, prefix="map"):
    """The floor map around one stand."""

    number: str


class WholeMap(Button, prefix="mapw"):
    """The whole floor plan with one stand marked."""

    number: str


class MoreResults(Button, prefix="more"):
    """The next page of a search."""

    page: int


class SaveStand(Button, prefix="sv"):
    """Add a stand to the person's list."""

    number: str


class UnsaveStand(Button, prefix="unsv"):
    """Remove a stand from the person's list."""

    number: str


PAGE = 8

KIND_LABELS = {
    "cooperative": _("Cooperative"),
    "association": _("Association"),
    "company": _("Company"),
    "institution": _("Institution"),
}
LABEL_NAMES = {
    "fair-trade": _("fair trade"),
    "organic": _("organic"),
    "women-led": _("women-led"),
    "youth-led": _("youth-led"),
    "certified-origin": _("certified origin"),
    "handmade": _("handmade"),
}


def stand_choice(number: str, name: dict[str, str]) -> Choice:
    """A button to a stand's card: its number and its (first) exhibitor's name."""
    return Choice(StandCard(number).pack(), _("{number} · {name}", number=Isolated(number),
                                    name=Local(name)))


def _stand_page(stands: Sequence[tuple[str, dict[str, str]]], page: int, more: Button,
                heading: Callable[[int, int, int], Content], back: Choice) -> list[Reply]:
    """One page of a list of stands (a zone, a category...): `heading(first, last, total)`,
    a button per stand, "More" (choice `more`) when there are others after them."""
    shown = stands[page * PAGE:(page + 1) * PAGE]
    buttons = [stand_choice(number, name) for number, name in shown]
    if (page + 1) * PAGE < len(stands):
        buttons.append(Choice(more.pack(), _("More")))
    return [reply(heading(page * PAGE + 1, page * PAGE + len(shown), len(stands)),
                  choices=[*buttons, back, back_to_menu()])]


def other_script(name: dict[str, str], language: str) -> str | None:
    """The exhibitor's name in the other script, shown under the reader's one."""
    other = "fr" if language == "ar" else "ar"
    text = name.get(other)
    return text if text and text != name.get(language) else None


@feature.command("stands", description=_("Find a stand"), menu_item="st", words={
    "fr": ["stands", "exposants", "exposant", "plan"],
    "ar": ["الأروقة", "أروقة", "الاروقة", "اروقة", "رواق", "العارضين", "العارضون"]})
async def zones(ctx: Context) -> list[Reply]:
    """How to find a stand: type its number or a name, or pick a zone."""
    ctx.leave()
    found = await ctx.catalogue.zones(ctx.fair.id)
    return [reply(
        _("Type a stand number (for example A12) or the name of an exhibitor, or choose a zone:"),
        choices=[Choice(ZoneStands(zone.index).pack(), Local(zone.name)) for zone in found]
        + [Choice(MenuItem(code).pack(), label) for code, (_kind, label) in FACETS.items()]
        + [Choice(MenuItem("sv").pack(), _("My list")), back_to_menu()],
    )]


FACETS: dict[str, tuple[str, Msg]] = {
    "cat": ("category", _("By category")),
    "reg": ("region", _("By region")),
    "lab": ("label", _("By label")),
}


def _facet_label(kind: str, name: dict[str, str]) -> Content:
    if kind == "label":
        return LABEL_NAMES.get(name.get("fr", ""), name.get("fr", ""))
    return Local(name)


async def facet(ctx: Context, code: str) -> list[Reply]:
    """The categories, the regions or the labels, each with how many stands it has."""
    if code not in FACETS:
        return await zones(ctx)
    kind, _label = FACETS[code]
    values = await ctx.catalogue.facet(ctx.fair.id, kind)
    question = {"category": _("Choose a category:"), "region": _("Choose a region:"),
                "label": _("Choose a label:")}[kind]
    return [reply(question, choices=[
        *(Choice(FacetStands(code, index).pack(),
                 _("{name} ({count})", name=_facet_label(kind, value.name),
                   count=len(value.stands)))
          for index, value in enumerate(values)),
        Choice(MenuItem("st").pack(), _("Find a stand")), back_to_menu()])]


async def facet_stands(ctx: Context, code: str, index: int, page: int = 0) -> list[Reply]:
    """The stands of one category, region or label, a page at a time."""
    kind = FACETS.get(code, ("", ""))[0]
    values = await ctx.catalogue.facet(ctx.fair.id, kind) if kind else []
    if not 0 <= index < len(values):
        return await facet(ctx, code)
    value = values[index]
    return _stand_page(
        value.stands, page, FacetStands(code, index, page + 1),
        lambda first, last, total: _("{name}: stands {first} to {last} of {total}",
                                     name=_facet_label(kind, value.name), first=first,
                                     last=last, total=total),
        Choice(MenuItem(code).pack(), _("Back")))


async def neighbours(ctx: Context, number: str) -> list[Reply]:
    """The stands closest to this one on the floor plan."""
    near = await ctx.catalogue.neighbours(ctx.fair.id, number)
    if not near:
        return await card(ctx, number)
    return [reply(
        _("Near stand {number}:", number=Isolated(number)),
        choices=[*(stand_choice(other, name) for other, name in near), back_to_menu()])]


async def zone(ctx: Context, index: int, page: int = 0) -> list[Reply]:
    """The stands of one zone, a page at a time."""
    stands = await ctx.catalogue.stands_in_zone(ctx.fair.id, index)
    if not stands:
        return await zones(ctx)
    names = await ctx.catalogue.zones(ctx.fair.id)
    return _stand_page(
        stands, page, ZoneStands(index, page + 1),
        lambda first, last, total: _("{zone}: stands {first} to {last} of {total}",
                                     zone=Local(names[index].name), first=first, last=last,
                                     total=total),
        Choice(MenuItem("st").pack(), _("Other zones")))


def _exhibitor_lines(exhibitor: ExhibitorView, language: str) -> list[Content]:
    lines: list[Content] = [Local(exhibitor.name)]
    other = other_script(exhibitor.name, language)
    if other:
        lines.append(other)
    kind = KIND_LABELS.get(exhibitor.kind)
    if exhibitor.category:
        lines.append(_("{kind} · {category}", kind=kind or exhibitor.kind,
                       category=Local(exhibitor.category)))
    elif kind:
        lines.append(kind)
    lines.append(_("From {city}, {region}", city=Local(exhibitor.city),
                   region=Local(exhibitor.region)))
    if exhibitor.products:
        separator = "، " if language == "ar" else ", "
        products = separator.join(Local(item).get(language) for item in exhibitor.products)
        lines.append(_("Products: {products}", products=products))
    labels: list[Content] = [
        LABEL_NAMES[label] for label in exhibitor.all_labels if label in LABEL_NAMES
    ]
    if labels:
        lines.append(_("Labels: {labels}", labels=_join(labels)))
    if exhibitor.phone:
        lines.append(_("Phone: {phone}", phone=Isolated(exhibitor.phone)))
    return lines


def _join(items: list[Content]) -> Content:
    message: Content = items[0]
    for item in items[1:]:
        message = _("{first}, {second}", first=message, second=item)
    return message


async def card(ctx: Context, number: str) -> list[Reply]:
    """A stand's card: who exhibits there, what they make, where it is."""
    stand = await ctx.catalogue.stand(ctx.fair.id, number)
    if stand is None:
        return [reply(_("There is no stand {number} at this fair.", number=Isolated(number)),
                      _("Type another number, a name, or choose a zone."),
                      choices=[Choice(MenuItem("st").pack(), _("Find a stand")), back_to_menu()])]
    lines: list[Content] = [_("Stand {number} · {zone}", number=Isolated(stand.number),
                              zone=Local(stand.zone))]
    for exhibitor in stand.exhibitors:
        lines.append("")
        lines.extend(_exhibitor_lines(exhibitor, ctx.language))
    if not stand.exhibitors:
        lines.append(_("No exhibitor is listed on this stand yet."))
    await ctx.feedback.count_view(ctx.fair.id, stand.number, ctx.local_day(ctx.now))
    return [reply(*lines, choices=[
        Choice(FloorMap(stand.number).pack(), _("Map")),
        Choice(RateStand(stand.number).pack(), _("Rate this stand")),
        Choice(Neighbours(stand.number).pack(), _("Stands nearby")),
        Choice(SaveStand(stand.number).pack(), _("Save to my list")),
        Choice(MenuItem("st").pack(), _("Find a stand")),
        back_to_menu(),
    ])]


async def floor_map(ctx: Context, number: str, whole: bool = False) -> list[Reply]:
    """The floor plan with the stand marked, zoomed around it for a phone (or `whole`), drawn
    (by bot/) once per stand, view and language for each catalogue version."""
    snapshot = await ctx.catalogue.current(ctx.fair.id)
    stand = snapshot.stands.get(number) if snapshot is not None else None
    if snapshot is None or stand is None:
        return await card(ctx, number)
    title = _("Stand {number} · {zone}", number=Isolated(stand.number), zone=Local(stand.zone))
    plan = FloorPlan(tuple(snapshot.stands.values()), stand.number, title, _("Entrance"),
                     drawn=snapshot.pictures, places=snapshot.places, whole=whole)
    placed = any(place.kind == "entrance" for place in snapshot.places)
    text = (_("Stand {number} is marked in red on the whole plan.",
              number=Isolated(stand.number)) if whole and placed
            else _("Stand {number} is marked in red on the plan; the entrance is at the bottom.",
                   number=Isolated(stand.number)) if whole
            else _("Stand {number} is marked in red. The small plan in the corner shows where "
                   "it is in the fair.", number=Isolated(stand.number)))
    other = (Choice(FloorMap(stand.number).pack(), _("Zoom in")) if whole
             else Choice(WholeMap(stand.number).pack(), _("Whole plan")))
    return [reply(
        text,
        media=[Media("image", filename=f"map-{stand.number}{'-all' if whole else ''}.png",
                     mime="image/png", caption=title, picture=plan)],
        choices=[Choice(StandCard(stand.number).pack(), _("Back to the stand")), other,
                 Choice(Neighbours(stand.number).pack(), _("Stands nearby")), back_to_menu()])]


RESULTS = 5
"""Search results shown at once, best first; "More" shows the next ones."""


async def lookup(ctx: Context, text: str, page: int = 0) -> list[Reply] | None:
    """The exhibitors that best match the text (storage/search.py), five at a time. When none
    does: a "did you mean" if a name is close, and the closest categories to browse; None when
    the text has nothing to search for (only small words)."""
    found = await ctx.catalogue.find_exhibitors(ctx.fair.id, text)
    if len(found) == 1:
        return await card(ctx, found[0][0])
    if found:
        ctx.session.search = text
        shown = found[page * RESULTS:(page + 1) * RESULTS]
        choices = [stand_choice(number, name) for number, name in shown]
        if (page + 1) * RESULTS < len(found):
            choices.append(Choice(MoreResults(page + 1).pack(), _("More")))
        heading = (_("Here is what I found:") if page == 0 else
                   _("Results {first} to {last} of {total}:", first=page * RESULTS + 1,
                     last=page * RESULTS + len(shown), total=len(found)))
        return [reply(heading, choices=[*choices, back_to_menu()])]
    if not query_terms(text):
        return None
    close = await ctx.catalogue.did_you_mean(ctx.fair.id, text)
    categories = await ctx.catalogue.closest_categories(ctx.fair.id, text)
    choices = [stand_choice(*close)] if close is not None else []
    choices += [Choice(FacetStands("cat", index).pack(),
                       _("{name} ({count})", name=Local(value.name), count=len(value.stands)))
                for index, value in categories]
    if close is not None:
        number, name = close
        question = _("I found no stand for that. Did you mean {name}, stand {number}? "
                     "Or look in a category:", name=Local(name), number=Isolated(number))
    else:
        question = _("I found no stand for that. Check the spelling, or look in a category:")
    return [reply(question, choices=[*choices, Choice(MenuItem("st").pack(), _("Find a stand")),
                                     back_to_menu()])]


async def more_results(ctx: Context, page: int) -> list[Reply]:
    """The next results of the person's last search: the stands with what it named, or those
    whose names are like it."""
    text = ctx.session.search
    if not isinstance(text, str) or page <= 0:
        return await zones(ctx)
    understood = await ctx.understand(text)
    if understood.entities.catalogue_stands():
        return await matching(ctx, understood.entities, page)
    found = await lookup(ctx, text, page)
    return found if found is not None else await zones(ctx)


async def save(ctx: Context, number: str) -> list[Reply]:
    """Put a stand on the person's list, to find it again later in the visit."""
    stand = await ctx.catalogue.stand(ctx.fair.id, number)
    if stand is None:
        return await card(ctx, number)
    added = await ctx.saved.save(ctx.fair.id, ctx.contact.id, stand.number, ctx.now)
    text = (_("Stand {number} is saved in your list.", number=Isolated(stand.number)) if added
            else _("Stand {number} is already in your list.", number=Isolated(stand.number)))
    return [reply(text, choices=[Choice(MenuItem("sv").pack(), _("My list")),
                                 Choice(MenuItem("st").pack(), _("Find a stand")),
                                 back_to_menu()])]


@feature.intent(Intent.MY_LIST)
@feature.command("list", menu_item="sv", intent=Intent.MY_LIST, words={
    "fr": ["ma liste", "liste"], "en": ["my list"], "ar": ["قائمتي", "لائحتي"]})
async def saved(ctx: Context) -> list[Reply]:
    """The stands the person saved: a button to each card, and one to take each off."""
    ctx.leave()
    numbers = await ctx.saved.stands(ctx.fair.id, ctx.contact.id)
    stands = [stand for number in numbers
              if (stand := await ctx.catalogue.stand(ctx.fair.id, number)) is not None]
    if not stands:
        return [reply(_("Your list is empty. On a stand's card, tap \"Save to my list\"."),
                      choices=[Choice(MenuItem("st").pack(), _("Find a stand")), back_to_menu()])]
    choices = [stand_choice(stand.number,
                            stand.exhibitors[0].name if stand.exhibitors else stand.zone)
               for stand in stands]
    choices += [Choice(UnsaveStand(stand.number).pack(), _("Remove {number}",
                                                  number=Isolated(stand.number)))
                for stand in stands]
    return [reply(_n("Your list: {n} stand.", "Your list: {n} stands.", len(stands)),
                  choices=[*choices, back_to_menu()])]


async def unsave(ctx: Context, number: str) -> list[Reply]:
    await ctx.saved.remove(ctx.fair.id, ctx.contact.id, number)
    return await saved(ctx)


for _code in FACETS:
    feature.menu_item(_code)(partial(facet, code=_code))


@feature.button(ZoneStands)
async def _zone(ctx: Context, button: ZoneStands) -> list[Reply]:
    return await zone(ctx, button.index, button.page)


@feature.button(StandCard, intent=Intent.STAND)
async def _card(ctx: Context, button: StandCard) -> list[Reply]:
    return await card(ctx, button.number)


@feature.button(Neighbours, intent=Intent.STAND)
async def _neighbours(ctx: Context, button: Neighbours) -> list[Reply]:
    return await neighbours(ctx, button.number)


@feature.button(FloorMap, intent=Intent.STAND)
async def _floor_map(ctx: Context, button: FloorMap) -> list[Reply]:
    return await floor_map(ctx, button.number)


@feature.button(WholeMap, intent=Intent.STAND)
async def _whole_map(ctx: Context, button: WholeMap) -> list[Reply]:
    return await floor_map(ctx, button.number, whole=True)


@feature.button(MoreResults)
async def _more_results(ctx: Context, button: MoreResults) -> list[Reply]:
    return await more_results(ctx, button.page)


@feature.button(SaveStand, intent=Intent.STAND)
async def _save(ctx: Context, button: SaveStand) -> list[Reply]:
    return await save(ctx, button.number)


@feature.button(UnsaveStand, intent=Intent.MY_LIST)
async def _unsave(ctx: Context, button: UnsaveStand) -> list[Reply]:
    return await unsave(ctx, button.number)


@feature.button(FacetStands)
async def _facet_stands(ctx: Context, button: FacetStands) -> list[Reply]:
    return await facet_stands(ctx, button.facet, button.index, button.page)


@feature.link("stand", intent=Intent.STAND)
async def _link(ctx: Context, value: str) -> list[Reply] | None:
    """`stand_A12`: the stand's card."""
    number = normalize_stand_number(value)
    return await card(ctx, number) if number is not None else None


@dataclass(frozen=True, slots=True)
class Matched:
    """A stand that answers a question, and what of it matched (a product, a place...)."""

    number: str
    name: dict[str, str]
    matched: Content


def _matches(entities: Entities, entries: Sequence[SearchEntry]) -> list[Matched]:
    """Every stand with what the entities name: the closest products first, then the stands of
    a category, a city or region, a label; with several kinds named, the stands that have
    them all (all the stands of any when none has them all)."""
    ordered = sorted(entries, key=lambda item: stand_order(item.stand))
    products: dict[str, Matched] = {}
    for product in entities.products:  # the closest first
        for entry in ordered:
            if entry.exhibitor_id in product.exhibitors and entry.stand not in products:
                text = next((dict(item) for item in entry.products
                             if item.get("fr") == product.text), {"fr": product.text})
                products[entry.stand] = Matched(entry.stand, dict(entry.name), Local(text))

    def category(entry: SearchEntry) -> Content | None:
        return (Local(dict(entry.category_name)) if entry.category in entities.categories
                else None)

    def place(entry: SearchEntry) -> Content | None:
        if fold(entry.city.get("fr", "")) in entities.cities:
            return Local(dict(entry.city))
        if fold(entry.region.get("fr", "")) in entities.regions:
            return Local(dict(entry.region))
        return None

    def label(entry: SearchEntry) -> Content | None:
        return _label_named(entry, entities.labels)

    groups = [products]
    for matched in (category, place, label):
        found: dict[str, Matched] = {}
        for entry in ordered:
            what = matched(entry)
            if what is not None and entry.stand not in found:
                found[entry.stand] = Matched(entry.stand, dict(entry.name), what)
        groups.append(found)
    named = [group for group in groups if group]
    if not named:
        return []
    common = set(named[0]).intersection(*named[1:])
    if common:
        return [item for number, item in named[0].items() if number in common]
    seen: dict[str, Matched] = {}
    for group in named:
        for number, item in group.items():
            seen.setdefault(number, item)
    return list(seen.values())


def _label_named(entry: SearchEntry, labels: tuple[str, ...]) -> Content | None:
    for label in entry.labels:
        if label in labels or label.split("-")[0] in labels:
            return LABEL_NAMES.get(label, label)
    return None


async def matching(ctx: Context, entities: Entities, page: int = 0) -> list[Reply]:
    """Every stand with what a text names, five at a time, each line saying what matched."""
    found = _matches(entities, (await ctx.gazetteer()).entries)
    if len(found) == 1:
        return await card(ctx, found[0].number)
    if not found:
        return await zones(ctx)
    shown = found[page * RESULTS:(page + 1) * RESULTS]
    lines: list[Content] = [
        _n("{n} stand matches:", "{n} stands match:", len(found)) if page == 0 else
        _("Results {first} to {last} of {total}:", first=page * RESULTS + 1,
          last=page * RESULTS + len(shown), total=len(found))]
    lines += [_("{number} · {name} · {matched}", number=Isolated(item.number),
                name=Local(item.name), matched=item.matched) for item in shown]
    choices = [stand_choice(item.number, item.name) for item in shown]
    if (page + 1) * RESULTS < len(found):
        choices.append(Choice(MoreResults(page + 1).pack(), _("More")))
    return [reply(*lines, choices=[*choices, back_to_menu()])]


@feature.intent(Intent.STANDS)
async def asked_stands(ctx: Context) -> list[Reply]:
    """Stands asked for by what they sell or where they are from ("zarbia", "huile d'argan",
    "coopératives de Fès"): every one; else the search, or how to find a stand."""
    ctx.session.search = ctx.text
    entities = ctx.understood.entities if ctx.understood is not None else Entities()
    if entities.catalogue_stands():
        return await matching(ctx, entities)
    return await asked_stand(ctx)


@feature.intent(Intent.STAND)
async def asked_stand(ctx: Context) -> list[Reply]:
    """A stand named by its number or its exhibitor: its card; else the search by name."""
    entities = ctx.understood.entities if ctx.understood is not None else Entities()
    if entities.stand is not None:
        return await card(ctx, entities.stand)
    stands = list(dict.fromkeys(exhibitor.stand for exhibitor in entities.exhibitors))
    if len(stands) == 1:
        return await card(ctx, stands[0])
    if entities.catalogue_stands():
        return await matching(ctx, entities)
    return await lookup(ctx, ctx.text) or await zones(ctx)
