"""Pictures and files: handlers describe them (handlers/pictures.py), bot/ draws them when it
renders the reply; and the layers contract that keeps handlers/ from importing bot/ holds with
no import left out of it."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import tomllib
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.app import App
from handlers import organizers, registrations, stands
from handlers.context import Context
from handlers.messages import Inbound, Kind, Rendered, Reply
from handlers.pictures import Calendar, CheckinPass, FloorPlan, SummaryChart
from handlers.stands import FloorMap
from tests.conftest import AppFactory

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NOW = dt.datetime(2026, 12, 11, 10, 0, tzinfo=ZoneInfo("Africa/Casablanca"))


def test_the_layers_contract_holds_with_no_import_ignored() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    [contract] = config["tool"]["importlinter"]["contracts"]
    assert contract["type"] == "layers" and contract["layers"] == ["bot", "handlers", "storage"]
    assert not contract.get("ignore_imports")
    linted = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, capture_output=True,
        text=True, check=False)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "1 kept, 0 broken" in linted.stdout


async def _context(app: App, user_id: str) -> Context:
    """What the engine gives a handler, for a French-speaking person on Telegram."""
    engine = app.engine
    contact = await engine.contacts.arrive("telegram", user_id, "fr")
    await engine.contacts.set_language(contact.id, "fr", confirmed=True)
    fair = await engine.catalogue.fair()
    assert fair is not None
    return Context(
        inbound=Inbound("telegram", user_id, Kind.TEXT, text="A18"), contact=contact,
        language="fr", session={}, fair=fair, catalogue=engine.catalogue,
        contacts=engine.contacts, feedback=engine.feedback, cooperatives=engine.cooperatives,
        link_attempts=engine.link_attempts, outbox=engine.outbox,
        registrations=engine.registrations, saved=engine.saved, reports=engine.reports,
        now=NOW, zone=ZoneInfo(fair.timezone))


async def _drawn(app: App, replies: list[Reply]) -> list[Rendered]:
    """The replies as the engine renders them: pictures drawn, then text."""
    renderer = await app.engine.fair_renderer()
    return renderer.render_all(await renderer.draw_pictures(replies, "fr"), "fr")


async def test_the_map_is_described_by_the_handler_and_drawn_by_the_renderer(
    make_app: AppFactory,
) -> None:
    app = await make_app()
    ctx = await _context(app, "1001")
    [described] = await stands.floor_map(ctx, "A18")
    [media] = described.media
    assert isinstance(media.picture, FloorPlan) and media.data == b""
    assert media.picture.highlight == "A18" and len(media.picture.stands) > 10

    [rendered] = await _drawn(app, [described])
    [image] = rendered.media
    assert image.kind == "image" and image.filename == "map-A18.png"
    assert image.mime == "image/png" and image.data.startswith(PNG_SIGNATURE)
    assert "Stand A18" in image.caption
    # Drawn once per stand, view and language, kept with the catalogue version served.
    snapshot = await ctx.catalogue.current(ctx.fair.id)
    assert snapshot is not None
    assert snapshot.pictures[("map", "A18", "", "zoom", "fr")] == image.data
    again = (await app.engine.fair_renderer()).render(described, "fr")
    assert again.media[0].data == image.data


async def test_the_engine_draws_the_map_the_person_asks_for(make_app: AppFactory) -> None:
    app = await make_app()
    await _context(app, "1002")  # a French speaker who chose their language
    card = await app.engine.handle(Inbound("telegram", "1002", Kind.TEXT, text="A18"))
    assert FloorMap("A18").pack() in [choice.id for choice in card[0].choices]
    [shown] = await app.engine.handle(Inbound("telegram", "1002", Kind.CHOICE,
                                              choice=FloorMap("A18").pack()))
    assert "Le stand A18 est en rouge" in shown.text
    [image] = shown.media
    assert image.filename == "map-A18.png" and image.data.startswith(PNG_SIGNATURE)


async def test_the_calendar_file_is_described_then_written_in_the_fairs_zone(
    make_app: AppFactory,
) -> None:
    app = await make_app()
    ctx = await _context(app, "1003")
    workshop = next(item for item in await ctx.catalogue.workshops(ctx.fair.id)
                    if item.starts_at > NOW and item.audience != "cooperatives")
    [described] = await registrations.register(ctx, workshop.id)
    media, checkin = described.media  # the calendar file, then the check-in QR code
    assert isinstance(media.picture, Calendar) and media.data == b""
    assert str(media.picture.zone) == ctx.fair.timezone
    assert isinstance(checkin.picture, CheckinPass) and checkin.kind == "image"

    [rendered] = await _drawn(app, [described])
    document, qr = rendered.media
    assert qr.mime == "image/png" and qr.data.startswith(b"\x89PNG")
    assert document.kind == "document" and document.filename == "workshop.ics"
    assert document.mime == "text/calendar"
    text = document.data.decode()
    assert text.startswith("BEGIN:VCALENDAR") and "BEGIN:VTIMEZONE" in text
    title = workshop.title["fr"]
    assert f"SUMMARY:{title[:40]}" in text.replace("\r\n ", "")
    assert f"TZID={ctx.fair.timezone}" in text


async def test_the_organizers_chart_is_described_then_drawn(make_app: AppFactory) -> None:
    app = await make_app()
    ctx = await _context(app, "1004")
    [summary] = await organizers.stats(ctx)
    [media] = summary.media
    assert isinstance(media.picture, SummaryChart) and media.data == b""

    [rendered] = await _drawn(app, [summary])
    [chart] = rendered.media
    assert chart.filename == "stats.png" and chart.data.startswith(PNG_SIGNATURE)
    assert "Notes du salon" in chart.caption
