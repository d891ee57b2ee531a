"""The console's broadcasts: compose in French and Arabic, preview on each channel with the
audience counted per channel, send through the same checks as `tadamon broadcast`, follow the
progress live (server-sent events), cancel; roles, CSRF, bad input and the audit log."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import ClientResponse
from sqlalchemy import func, select

from bot.app import App
from bot.worker import OutboxWorker
from storage.console import AuditLog
from storage.models import Broadcast, Contact, OutboxMessage, OutboxStatus, utcnow
from tests.console import ConsoleClient, ConsoleFactory
from tests.fakes.telegram import FakeTelegram

pytestmark = pytest.mark.timeout(120)

CASABLANCA = ZoneInfo("Africa/Casablanca")
FR = "Le salon ferme à 20:00.\nMerci de votre visite <3 & à demain !"
AR = "يغلق المعرض على الساعة 20:00. شكرا على زيارتكم!"
DATABASES = [pytest.param("sqlite", id="sqlite"),
             pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]


def noon() -> dt.datetime:
    """The worker's clock: a fair day at noon, outside quiet hours."""
    return dt.datetime(2026, 12, 13, 12, 0, tzinfo=CASABLANCA).astimezone(dt.UTC)


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


async def console_with_telegram(make_console: ConsoleFactory, fake: FakeTelegram,
                                **options: Any) -> ConsoleClient:
    return await make_console(telegram_token=fake.token, telegram_api_base=fake.base_url,
                              telegram_rate=100_000, **options)


async def add_contact(app: App, channel: str, user_id: str, language: str = "fr", *,
                      opted_out: bool = False, unreachable: bool = False,
                      last_inbound_at: dt.datetime | None = None) -> int:
    async with app.sessions() as session, session.begin():
        contact = Contact(channel=channel, user_id=user_id, language=language,
                          opted_out=opted_out, unreachable=unreachable,
                          last_inbound_at=last_inbound_at)
        session.add(contact)
        await session.flush()
        return contact.id


async def add_audience(app: App) -> None:
    """Telegram: 3 reachable, 1 opted out, 1 who blocked the bot. WhatsApp: 2 inside the
    24-hour window, 3 outside it (a French, two Arabic speakers), 1 opted out. Web: 1."""
    now = utcnow()
    for index, language in enumerate(("fr", "ar", "en")):
        await add_contact(app, "telegram", str(1000 + index), language)
    await add_contact(app, "telegram", "1100", opted_out=True)
    await add_contact(app, "telegram", "1200", "ar", unreachable=True)
    for index, language in enumerate(("fr", "ar")):
        await add_contact(app, "whatsapp", f"21260000000{index}", language,
                          last_inbound_at=now - dt.timedelta(hours=2))
    for index, language in enumerate(("fr", "ar", "ar")):
        await add_contact(app, "whatsapp", f"21261000000{index}", language,
                          last_inbound_at=now - dt.timedelta(days=3))
    await add_contact(app, "whatsapp", "212620000000", opted_out=True,
                      last_inbound_at=now - dt.timedelta(hours=1))
    await add_contact(app, "web", "w-1")


def counts_of(page: str) -> dict[str, dict[str, int]]:
    """The audience table: per channel row its counts; `window` the WhatsApp split."""
    table = page.split('<table id="audience-counts">')[1].split("</table>")[0]
    found: dict[str, dict[str, int]] = {}
    for channel, row in re.findall(r'<tr data-channel="(\w+)">(.*?)</tr>', table, re.S):
        found[channel] = {name: int(value) for name, value in
                          re.findall(r'data-count="([\w-]+)">(\d+)<', row)}
    window = table.split('class="window"')[1]
    found["window"] = {name: int(value) for name, value in
                       re.findall(r'data-count="([\w-]+)">(\d+)<', window)}
    return found


def compose(**changes: str) -> dict[str, str]:
    return {"text_fr": FR, "text_ar": AR, "audience": "all", "at": "", **changes}


async def stored(app: App, model: Any) -> int:
    async with app.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def send(console: ConsoleClient, form: dict[str, str]) -> int:
    """Post the preview's send form; the broadcast's id from where it redirects."""
    response = await console.client.post("/admin/broadcasts", allow_redirects=False,
                                         data={**form, "csrf": console.csrf})
    assert response.status == 303, await response.text()
    found = re.fullmatch(r"/admin/broadcasts/(\d+)", response.headers["Location"])
    assert found is not None, response.headers["Location"]
    return int(found.group(1))


def hidden_fields(page: str) -> dict[str, str]:
    form = page.split('<form id="broadcast-send"')[1].split("</form>")[0]
    return {name: html.unescape(value) for name, value in
            re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form)}


@pytest.mark.parametrize("database", DATABASES)
@pytest.mark.parametrize("templated_fr", ["", "broadcast:fr=salon_annonce"])
async def test_compose_preview_counts_each_channel_then_send_queues_it(
        make_console: ConsoleFactory, fake_telegram: FakeTelegram, database: str,
        templated_fr: str) -> None:
    console = await console_with_telegram(make_console, fake_telegram, database=database,
                                          whatsapp_templates=templated_fr)
    app = console.app
    await add_audience(app)
    status, page = await console.get("/admin/broadcasts")
    assert status == 200 and 'id="new-broadcast"' in page
    status, page = await console.get("/admin/broadcasts/new")
    assert status == 200 and 'id="broadcast-compose"' in page
    assert '<textarea id="text_ar" name="text_ar" lang="ar" dir="rtl"' in page
    assert 'value="workshop:' in page and 'type="datetime-local"' in page
    status, page = await console.post("/admin/broadcasts/preview", compose())
    assert status == 200 and 'id="broadcast-preview"' in page, page
    counts = counts_of(page)
    assert counts["telegram"] == {"reachable": 3, "opted-out": 1, "unreachable": 1}
    assert counts["whatsapp"] == {"reachable": 5, "opted-out": 1, "unreachable": 0}
    assert counts["web"] == {"reachable": 1, "opted-out": 0, "unreachable": 0}
    templated = 1 if templated_fr else 0  # the French speaker outside the window
    assert counts["window"] == {"inside-window": 2, "templated": templated,
                                "untemplated": 3 - templated}
    assert "Tout le monde\u202f: 9 personnes." in page
    # Each channel, in each language, as its own formatting sends it.
    telegram = re.findall(r'data-channel="telegram" data-language="fr">(.*?)</article>', page,
                          re.S)[0]
    assert "Merci de votre visite &lt;3 &amp; à demain !" in telegram
    whatsapp = re.findall(r'data-channel="whatsapp" data-language="(\w+)">(.*?)</article>',
                          page, re.S)
    assert [language for language, _ in whatsapp] == ["fr", "ar"]
    if templated_fr:
        assert 'data-template="salon_annonce"' in whatsapp[0][1]
        assert "Le salon ferme à 20:00. · Merci de votre visite" in whatsapp[0][1]
    else:
        assert "ignoré\u202f: aucun modèle" in whatsapp[0][1]
    assert "ignoré\u202f: aucun modèle" in whatsapp[1][1]  # no Arabic template either way
    assert AR in re.findall(r'data-channel="web" data-language="ar">(.*?)</article>', page,
                            re.S)[0]
    assert await stored(app, Broadcast) == 0  # a preview queues nothing
    broadcast_id = await send(console, hidden_fields(page))
    async with app.sessions() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        assert (broadcast.audience, broadcast.text, broadcast.urgent) == (
            "all", {"fr": FR.strip(), "ar": AR}, False)
        rows = list(await session.scalars(select(OutboxMessage)))
    # The opted out are left out; who blocked the bot gets a row the worker skips.
    assert len(rows) == 10 and {row.broadcast_id for row in rows} == {broadcast_id}
    entries = [(entry.action, entry.subject, entry.detail)
               for entry in await AuditLog(app.sessions).recent()]
    assert entries[0] == ("broadcast queued", str(broadcast_id), "all, 10")
    status, page = await console.get("/admin/broadcasts")
    assert f'href="/admin/broadcasts/{broadcast_id}"' in page and "Tout le monde" in page


async def test_progress_streams_until_every_row_is_settled(
        make_console: ConsoleFactory, fake_telegram: FakeTelegram) -> None:
    console = await console_with_telegram(make_console, fake_telegram)
    app = console.app
    for index in range(4):
        await add_contact(app, "telegram", str(2000 + index), ("fr", "ar")[index % 2])
    await console.get("/admin/broadcasts/new")
    status, page = await console.post("/admin/broadcasts/preview",
                                      compose(audience="lang:ar", urgent="1"))
    assert status == 200 and 'name="urgent" value="1"' in page
    broadcast_id = await send(console, hidden_fields(page))
    status, page = await console.get(f"/admin/broadcasts/{broadcast_id}")
    assert status == 200 and 'id="broadcast-status"' in page and 'data-done="1"' not in page
    assert '<progress id="broadcast-progress" value="0" max="2">' in page
    assert 'id="broadcast-cancel"' in page and "Arabophones" in page
    response = await console.client.get(f"/admin/broadcasts/{broadcast_id}/events")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    kind, first = await next_event(response)
    assert kind == "progress" and (first["pending"], first["max"], first["finished"]) == (
        2, 2, False)
    assert await OutboxWorker(app, clock=noon).drain() == 2
    events = [await next_event(response)]
    while events[-1][0] != "done":
        events.append(await next_event(response))
    kind, last = events[-1]
    assert (last["sent"], last["value"], last["max"], last["finished"]) == (2, 2, 2, True)
    assert last["percent"] == "100\u00a0%"
    assert await response.content.read() == b""  # the stream ended
    assert len(fake_telegram.calls_of("sendMessage")) == 2
    status, page = await console.get(f"/admin/broadcasts/{broadcast_id}")
    assert 'data-done="1"' in page and 'id="broadcast-cancel"' not in page
    assert '<span id="broadcast-percent">100\u00a0%</span>' in page
    # A finished broadcast's stream gives its last state at once, and ends.
    response = await console.client.get(f"/admin/broadcasts/{broadcast_id}/events")
    kind, state = await next_event(response)
    assert kind == "done" and state["sent"] == 2
    assert await response.content.read() == b""


async def test_the_stream_ends_when_the_browser_goes(
        make_console: ConsoleFactory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.console.broadcasts")
    console = await make_console()
    await add_contact(console.app, "telegram", "2500")
    await console.get("/admin/broadcasts/new")
    _status, page = await console.post("/admin/broadcasts/preview", compose())
    broadcast_id = await send(console, hidden_fields(page))
    response = await console.client.get(f"/admin/broadcasts/{broadcast_id}/events")
    kind, state = await next_event(response)
    assert kind == "progress" and state["pending"] == 1
    response.close()
    for _ in range(300):  # the next event finds the browser gone
        if any("went" in record.getMessage() for record in caplog.records):
            break
        await asyncio.sleep(0.1)
    assert any(f"following broadcast {broadcast_id} went" in record.getMessage()
               for record in caplog.records)
    assert (await console.get(f"/admin/broadcasts/{broadcast_id}"))[0] == 200


async def next_event(response: ClientResponse) -> tuple[str, dict[str, Any]]:
    kind, data = "", ""
    while True:
        line = (await response.content.readline()).decode()
        assert line, "the stream ended before the event"
        if line == "\n" and data:
            return kind, json.loads(data)
        if line.startswith("event: "):
            kind = line.removeprefix("event: ").strip()
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")


@pytest.mark.parametrize("database", DATABASES)
async def test_cancel_skips_what_is_not_sent(make_console: ConsoleFactory, database: str
                                             ) -> None:
    console = await make_console(database=database)
    app = console.app
    for index in range(3):
        await add_contact(app, "telegram", str(3000 + index))
    tomorrow = (dt.datetime.now(CASABLANCA) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    await console.get("/admin/broadcasts/new")
    status, page = await console.post("/admin/broadcasts/preview", compose(at=tomorrow))
    assert status == 200 and "Envoyée le " in page
    broadcast_id = await send(console, hidden_fields(page))
    status, page = await console.get(f"/admin/broadcasts/{broadcast_id}")
    assert "programmé" in page and 'id="broadcast-cancel"' in page
    status, page = await console.post(f"/admin/broadcasts/{broadcast_id}/cancel")
    assert status == 200 and 'data-done="1"' in page and "annulé" in page
    async with app.sessions() as session:
        rows = list(await session.scalars(select(OutboxMessage)))
        broadcast = await session.get(Broadcast, broadcast_id)
    assert [row.status for row in rows] == [OutboxStatus.SKIPPED] * 3
    assert broadcast is not None and broadcast.status == "cancelled"
    entries = [(entry.action, entry.subject, entry.detail)
               for entry in await AuditLog(app.sessions).recent()]
    assert entries[0] == ("broadcast cancelled", str(broadcast_id), "3")
    status, page = await console.get("/admin/audit")
    assert "diffusion annulée" in page and "diffusion mise en file" in page


async def test_bad_input_is_said_and_the_texts_are_kept(make_console: ConsoleFactory) -> None:
    console = await make_console()
    await add_contact(console.app, "telegram", "4000")
    await console.get("/admin/broadcasts/new")
    cases = [
        (compose(text_fr="  "), "text_fr", "Écrivez le texte en français."),
        (compose(text_ar=""), "text_ar", "Écrivez le texte en arabe."),
        (compose(text_ar="يغلق المعرض. " * 100), "text_ar",
         "Le texte en arabe compte 1299 caractères ; une diffusion en contient au plus 1000."),
        (compose(at="demain 9h"), "at", "« demain 9h » n'est pas une date et une heure."),
        (compose(at="2020-01-01T09:00"), "at", "Cette heure est déjà passée : il est "),
        (compose(audience="everybody"), "audience", "Ce public est inconnu"),
        (compose(audience="workshop:no-such-workshop"), "audience",
         "Le salon n'a pas d'atelier no-such-workshop."),
    ]
    for form, field, message in cases:
        status, page = await console.post("/admin/broadcasts/preview", form)
        assert status == 400, (form, page)
        error = re.search(r'<p id="broadcast-error" class="error" role="alert" '
                          r'data-field="(\w+)">(.*?)</p>', page, re.S)
        assert error is not None, page
        assert error.group(1) == field and message in html.unescape(error.group(2)).replace(
            "\u202f", " ").replace("\u00a0", " "), (form, error.group(2))
        kept_fr = re.search(r'name="text_fr"[^>]*>(.*?)</textarea>', page, re.S)
        assert kept_fr is not None and html.unescape(kept_fr.group(1)) == form["text_fr"]
        kept_ar = re.search(r'name="text_ar"[^>]*>(.*?)</textarea>', page, re.S)
        assert kept_ar is not None and html.unescape(kept_ar.group(1)) == form["text_ar"]
        # Sending it anyway (a form kept from before) is checked again and refused.
        status, page = await console.post("/admin/broadcasts", form)
        assert status == 400 and 'id="broadcast-error"' in page
    # Back from the preview to change it: the form as it was filled in.
    status, page = await console.post("/admin/broadcasts/preview", {**compose(), "edit": "1"})
    assert status == 200 and 'id="broadcast-compose"' in page and html.escape(AR) in page
    assert await stored(console.app, Broadcast) == 0
    huge = await console.post("/admin/broadcasts/preview", compose(text_fr="x" * 300_000))
    assert huge[0] in (400, 413)
    assert await stored(console.app, Broadcast) == 0


async def test_viewers_look_but_do_not_send_and_forms_need_their_token(
        make_console: ConsoleFactory) -> None:
    organizer = await make_console()
    app = organizer.app
    await add_contact(app, "telegram", "5000")
    await organizer.get("/admin/broadcasts/new")
    _status, page = await organizer.post("/admin/broadcasts/preview", compose())
    broadcast_id = await send(organizer, hidden_fields(page))
    # Without the session's token nothing is sent nor cancelled.
    status, page = await organizer.post("/admin/broadcasts", compose(), csrf=False)
    assert status == 403
    status, page = await organizer.post(f"/admin/broadcasts/{broadcast_id}/cancel",
                                        {"csrf": "0" * 64}, csrf=False)
    assert status == 403
    viewer = await make_console(app=app, login="viewer@fair.ma", role="viewer")
    status, page = await viewer.get("/admin/broadcasts")
    assert status == 200 and f'href="/admin/broadcasts/{broadcast_id}"' in page
    assert 'id="new-broadcast"' not in page
    status, page = await viewer.get(f"/admin/broadcasts/{broadcast_id}")
    assert status == 200 and 'id="broadcast-progress"' in page
    assert 'id="broadcast-cancel"' not in page
    assert (await viewer.get("/admin/broadcasts/new"))[0] == 403
    for path in ("/admin/broadcasts/preview", "/admin/broadcasts",
                 f"/admin/broadcasts/{broadcast_id}/cancel"):
        status, page = await viewer.post(path, compose())
        assert status == 403 and "Seuls les organisateurs" in page, path
    assert await stored(app, Broadcast) == 1
    async with app.sessions() as session:
        statuses = list(await session.scalars(select(OutboxMessage.status)))
    assert statuses == [OutboxStatus.PENDING]
    actions = [entry.action for entry in await AuditLog(app.sessions).recent()]
    assert actions.count("broadcast queued") == 1 and "broadcast cancelled" not in actions


async def test_unknown_or_malformed_broadcasts_are_not_found(make_console: ConsoleFactory
                                                             ) -> None:
    console = await make_console()
    for path in ("/admin/broadcasts/42", "/admin/broadcasts/abc", "/admin/broadcasts/0",
                 "/admin/broadcasts/-1", "/admin/broadcasts/" + "9" * 30,
                 "/admin/broadcasts/42/events", "/admin/broadcasts/x%00/events"):
        status, page = await console.get(path)
        assert status == 404 and "Cette diffusion n'existe pas." in html.unescape(page), path
    await console.get("/admin/broadcasts")
    status, page = await console.post("/admin/broadcasts/42/cancel")
    assert status == 404
    signed_out = await make_console(app=console.app, login=None)
    response = await signed_out.client.get("/admin/broadcasts/new", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"].startswith("/admin/login")


async def test_the_arabic_pages_run_right_to_left(make_console: ConsoleFactory) -> None:
    console = await make_console()
    await add_contact(console.app, "telegram", "6000", "ar")
    await console.get("/admin/language/ar?next=/admin/broadcasts")
    status, page = await console.get("/admin/broadcasts/new")
    assert status == 200 and '<html lang="ar" dir="rtl">' in page
    assert "إعلان جديد" in page or "بث جديد" in page
    status, page = await console.post("/admin/broadcasts/preview", compose(audience="lang:ar"))
    assert status == 200 and 'dir="rtl"' in page and "الناطقون بالعربية" in page
    broadcast_id = await send(console, hidden_fields(page))
    status, page = await console.get(f"/admin/broadcasts/{broadcast_id}")
    assert status == 200 and '<html lang="ar" dir="rtl">' in page and AR in page
    status, page = await console.get("/admin/broadcasts/new")
    status, page = await console.post("/admin/broadcasts/preview", compose(text_ar=""))
    assert status == 400 and "اكتب النص العربي." in page
    await console.get("/admin/language/en?next=/admin/broadcasts")
    status, page = await console.get(f"/admin/broadcasts/{broadcast_id}")
    assert status == 200 and '<html lang="en" dir="ltr">' in page
    assert "Arabic speakers" in page and f"Broadcast {broadcast_id}" in page
