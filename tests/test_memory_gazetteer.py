"""The understanding step's gazetteer is built once per catalogue version, however many first
messages arrive while it is being built (each used to build, and keep, a copy of its own)."""

from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

from bot.app import App
from handlers.context import Context
from handlers.messages import Inbound, Kind
from tests.conftest import AppFactory

NOW = dt.datetime(2026, 12, 14, 11, 0, tzinfo=ZoneInfo("Africa/Casablanca"))


async def _context(app: App, user_id: str, text: str) -> Context:
    """What the engine gives a handler, for a person who wrote `text` on Telegram."""
    engine = app.engine
    contact = await engine.contacts.arrive("telegram", user_id, "fr")
    fair = await engine.catalogue.fair()
    assert fair is not None
    return Context(
        inbound=Inbound("telegram", user_id, Kind.TEXT, text=text), contact=contact,
        language="fr", session={}, fair=fair, catalogue=engine.catalogue,
        contacts=engine.contacts, feedback=engine.feedback, cooperatives=engine.cooperatives,
        link_attempts=engine.link_attempts, outbox=engine.outbox,
        registrations=engine.registrations, saved=engine.saved, reports=engine.reports,
        now=NOW, zone=ZoneInfo(fair.timezone))


async def test_first_messages_at_once_share_one_gazetteer(make_app: AppFactory) -> None:
    """Twelve people's first free texts, in French, Arabic, Darija and English, understood at
    once by a process that has not built its gazetteer yet: one is built, and each text is
    understood in that catalogue (the honey and the argan oil are the sample fair's)."""
    app = await make_app()
    texts = ["je cherche du miel", "أبحث عن العسل", "fin kayn l3sel", "where is the honey",
             "huile d'argan", "زيت الأركان", "bghit zit argan", "argan oil please",
             "miel bio", "عسل", "l3sel", "honey"]
    contexts = [await _context(app, f"77{index:02}", text) for index, text in enumerate(texts)]

    built = await asyncio.gather(*(ctx.gazetteer() for ctx in contexts))

    assert len({id(gazetteer) for gazetteer in built}) == 1
    understood = await asyncio.gather(*(ctx.understand(ctx.inbound.text or "")
                                        for ctx in contexts))
    assert all(item.entities.products for item in understood), [
        (text, item) for text, item in zip(texts, understood, strict=True)
        if not item.entities.products]
    snapshot = await app.engine.catalogue.current(contexts[0].fair.id)
    assert snapshot is not None and snapshot.derived["gazetteer"] is built[0]
