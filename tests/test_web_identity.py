"""Who is who on the web chat: sessions the server issues, a public id everywhere else, limits
on new sessions per client address, JSON from this site only, hardened answers, and nothing
queued for people the web chat cannot reach later."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import App
from bot.channels.web import client_address
from bot.http import make_web_app
from bot.settings import Settings
from storage.models import Contact, OutboxMessage, WebSession
from storage.outbox import Outbox, queue_reminders
from storage.websessions import public_id
from tests.conftest import Chat, ChatFactory, cli_env, run_tadamon

JSON = {"Content-Type": "application/json"}
EVIL = "https://evil.example"


async def _sessions(chat: Chat) -> list[WebSession]:
    async with chat.app.sessions() as session:
        return list(await session.scalars(select(WebSession).order_by(WebSession.id)))


async def _issue(chat: Chat, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    response = await chat.client.post("/chat/api/sessions", data=b"{}",
                                      headers={**JSON, **(headers or {})})
    return response.status, await response.json(), response.headers


# ---- sessions the server issues ----------------------------------------------------------

async def test_the_server_issues_sessions_and_keeps_only_their_hash(chat: Chat) -> None:
    status, body, headers = await _issue(chat)
    assert status == 201
    token = body["session"]
    assert len(token) >= 43 and token != (await _issue(chat))[1]["session"]
    assert headers["Cache-Control"] == "no-store"
    chat.tokens["amina"] = token
    welcome = await chat("amina", "bonjour")
    assert "Bienvenue" in welcome.text

    [row, _other] = await _sessions(chat)
    assert token not in (row.token_hash, row.public_id)
    assert row.public_id == public_id(token) == chat.user_id("amina")
    contact = await chat.app.engine.contacts.get("web", row.public_id)
    assert contact is not None and token not in contact.user_id
    # the public id is no key: presented as a session, it is refused
    assert (await chat.post({"session": row.public_id, "text": "bonjour"})).status == 401


@pytest.mark.parametrize("session", ["s1", "x", "session-amina", "A" * 43, "é" * 43, ""])
async def test_a_session_this_deployment_did_not_issue_gets_401(chat: Chat,
                                                                 session: str) -> None:
    answer = await chat.post({"session": session, "text": "bonjour"})
    assert answer.status == 401
    assert "session" in answer.body["error"] and answer.replies == []


async def test_a_session_survives_a_redis_restart_and_works_in_every_process(
    chat: Chat, redis_url: str,
) -> None:
    await chat("amina", "bonjour")
    await chat.app.redis.flushall()  # Redis restarted empty
    other = App(Settings(_env_file=None,  # type: ignore[call-arg]
                         database_url=chat.app.settings.database_url, redis_url=redis_url))
    client: TestClient[Any, Any] = TestClient(TestServer(make_web_app(other)))
    await client.start_server()
    try:
        response = await client.post("/chat/api/messages",
                                     json={"session": chat.session("amina"), "text": "menu"})
        assert response.status == 200
        assert "Que souhaitez-vous faire" in json.dumps(await response.json(),
                                                        ensure_ascii=False)
    finally:
        await client.close()
        await other.close()


async def test_an_old_web_organizer_cannot_be_impersonated(chat: Chat) -> None:
    """A database from before sessions were issued may hold `web:session-boss` as organizer:
    sending that id no longer makes anyone the organizer."""
    await chat.app.engine.contacts.grant_organizer("web", "session-boss", "cli")
    forged = await chat.post({"session": "session-boss", "text": "/broadcast"})
    assert forged.status == 401
    assert "Écrivez le texte" not in forged.text
    stats = await chat.post({"session": "session-boss", "text": "/stats"})
    assert stats.status == 401 and stats.replies == []
    refused = await chat("amina", "/broadcast")
    assert "je n'ai pas compris" in refused.text


async def test_message_ids_are_unique_within_a_session_not_across_sessions(chat: Chat) -> None:
    await chat("amina", "bonjour")
    await chat("karim", "salam")
    amina = await chat.post({"session": chat.session("amina"), "text": "A12", "id": "m-1"})
    karim = await chat.post({"session": chat.session("karim"), "text": "A12", "id": "m-1"})
    assert "Stand A12" in amina.text
    assert "A12" in karim.text and karim.replies
    replayed = await chat.post({"session": chat.session("amina"), "text": "A12", "id": "m-1"})
    assert replayed.status == 200 and replayed.replies == []


# ---- new sessions per client address ------------------------------------------------------

async def test_new_sessions_are_limited_per_address_and_a_forged_forward_is_ignored(
    make_chat: ChatFactory,
) -> None:
    chat = await make_chat(web_sessions_per_minute=2)
    assert (await _issue(chat))[0] == 201
    assert (await _issue(chat))[0] == 201
    status, body, headers = await _issue(chat)
    assert status == 429 and body["error"]
    assert 1 <= int(headers["Retry-After"]) <= 30
    # the peer is no trusted proxy: what it says of others is not believed
    status, _body, headers = await _issue(chat, {"X-Forwarded-For": "203.0.113.7"})
    assert status == 429 and "Retry-After" in headers
    rows = await _sessions(chat)
    assert len({row.client_hash for row in rows}) == 1
    assert rows[0].client_hash == await chat.app.web_sessions.client_hash("127.0.0.1")
    assert all("127.0.0.1" not in (row.client_hash or "") for row in rows)


async def test_a_trusted_proxy_forwards_the_client_address(make_chat: ChatFactory) -> None:
    chat = await make_chat(web_sessions_per_minute=2, trusted_proxies="127.0.0.1, 10.0.0.0/8")
    first = {"X-Forwarded-For": "203.0.113.7"}
    assert (await _issue(chat, first))[0] == 201
    assert (await _issue(chat, {"X-Forwarded-For": "203.0.113.7, 10.1.2.3"}))[0] == 201
    assert (await _issue(chat, first))[0] == 429
    # what the client put left of its real address changes nothing
    spoofed = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
    assert (await _issue(chat, spoofed))[0] == 429
    assert (await _issue(chat, {"X-Forwarded-For": "203.0.113.8"}))[0] == 201
    hashes = [row.client_hash for row in await _sessions(chat)]
    assert hashes == [await chat.app.web_sessions.client_hash(address) for address in
                      ("203.0.113.7", "203.0.113.7", "203.0.113.8")]


def test_the_client_address_is_the_right_most_untrusted_hop() -> None:
    proxies = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128")]
    assert client_address("203.0.113.9", ["1.2.3.4"], proxies) == "203.0.113.9"
    assert client_address("10.0.0.2", ["1.2.3.4, 5.6.7.8"], proxies) == "5.6.7.8"
    assert client_address("10.0.0.2", ["1.2.3.4", "5.6.7.8, 10.9.9.9"], proxies) == "5.6.7.8"
    assert client_address("::1", ["[2001:db8::7]:4711"], proxies) == "2001:db8::7"
    assert client_address("::ffff:10.0.0.3", ["5.6.7.8:80"], proxies) == "5.6.7.8"
    assert client_address("10.0.0.2", ["10.0.0.7"], proxies) == "10.0.0.7"
    assert client_address("10.0.0.2", ["unknown"], proxies) == "10.0.0.2"
    assert client_address("10.0.0.2", [], proxies) == "10.0.0.2"


# ---- JSON from this site only ---------------------------------------------------------------

async def test_only_json_is_accepted(chat: Chat) -> None:
    await chat("amina", "bonjour")
    body = json.dumps({"session": chat.session("amina"), "text": "A12"}).encode()
    for path, data in (("/chat/api/messages", body), ("/chat/api/sessions", b"{}")):
        for content_type in ("text/plain", "application/x-www-form-urlencoded",
                             "multipart/form-data; boundary=x"):
            response = await chat.client.post(path, data=data,
                                              headers={"Content-Type": content_type})
            assert response.status == 415, (path, content_type)
            assert "application/json" in (await response.json())["error"]
    accepted = await chat.post(None, raw=body,
                               headers={"Content-Type": "application/json; charset=utf-8"})
    assert "Stand A12" in accepted.text


async def test_another_website_cannot_drive_the_chat(make_chat: ChatFactory) -> None:
    chat = await make_chat(public_url="https://salon.example/")
    await chat("amina", "bonjour")
    body = {"session": chat.session("amina"), "text": "A12"}
    for origin in (EVIL, "null", "https://salon.example.evil.example", "http://salon.example"):
        answer = await chat.post(body, headers={"Origin": origin})
        assert answer.status == 403 and "another website" in answer.body["error"], origin
        assert (await _issue(chat, {"Origin": origin}))[0] == 403
    own = f"http://{chat.client.host}:{chat.client.port}"
    for origin in (own, "https://salon.example", "https://SALON.example"):
        assert "Stand A12" in (await chat.post(body, headers={"Origin": origin})).text
    assert (await _issue(chat, {"Origin": own}))[0] == 201


async def test_behind_a_trusted_tls_proxy_the_public_scheme_is_the_origin(
    make_chat: ChatFactory,
) -> None:
    chat = await make_chat(trusted_proxies="127.0.0.1")
    await chat("amina", "bonjour")
    host = f"{chat.client.host}:{chat.client.port}"
    body = {"session": chat.session("amina"), "text": "A12"}
    proxied = await chat.post(body, headers={"Origin": f"https://{host}",
                                             "X-Forwarded-Proto": "https"})
    assert "Stand A12" in proxied.text
    assert (await chat.post(body, headers={"Origin": f"https://{host}"})).status == 403


# ---- hardened answers ----------------------------------------------------------------------

def _hardened(headers: Any) -> None:
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


async def test_the_page_its_files_and_the_api_answer_with_security_headers(chat: Chat) -> None:
    page = await chat.client.get("/")
    html = await page.text()
    _hardened(page.headers)
    policy = page.headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'",
                      "frame-ancestors 'none'", "base-uri 'none'", "connect-src 'self'"):
        assert directive in policy
    assert "<style" not in html and "<script>" not in html and " style=" not in html
    assert '<script src="/chat/static/webchat.js"></script>' in html
    assert '<link rel="stylesheet" href="/chat/static/webchat.css">' in html
    for name, kind, words in (("webchat.js", "text/javascript", "/chat/api/sessions"),
                              ("webchat.css", "text/css", "--green")):
        response = await chat.client.get(f"/chat/static/{name}")
        assert response.status == 200 and response.content_type == kind
        assert words in await response.text()
        _hardened(response.headers)
    missing = await chat.client.get("/chat/static/other.js")
    assert missing.status == 404
    _hardened(missing.headers)

    status, _body, headers = await _issue(chat)
    assert status == 201
    _hardened(headers)
    assert headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    await chat("amina", "/start ws_marketing-1")
    registered = await chat.tap("amina", "S'inscrire")
    calendar = await chat.client.get(registered.replies[0]["media"][0]["url"])
    assert calendar.status == 200
    _hardened(calendar.headers)
    gone = await chat.client.get("/chat/media/" + "x" * 24)
    assert gone.status == 404
    _hardened(gone.headers)
    for answer in (await chat.client.post("/chat/api/messages", data=b"{}", headers=JSON),
                   await chat.client.post("/chat/api/messages", json={"session": "s1",
                                                                       "text": "x"}),
                   await chat.client.post("/chat/api/messages", data=b"x")):
        assert answer.status in (400, 401, 415)
        _hardened(answer.headers)


# ---- whole bodies --------------------------------------------------------------------------

async def test_a_message_sent_in_two_tcp_segments_is_read_whole(chat: Chat) -> None:
    await chat("karim", "السلام عليكم")
    text = "أبحث عن تعاونية تبيع زيت الأركان والعسل في المعرض، " * 22
    body = json.dumps({"session": chat.session("karim"), "text": text.strip()},
                      ensure_ascii=False).encode()
    assert len(body) > 2000
    head = (f"POST /chat/api/messages HTTP/1.1\r\nHost: {chat.client.host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode()
    reader, writer = await asyncio.open_connection(chat.client.host, chat.client.port)
    try:
        writer.write(head + body[:1000])
        await writer.drain()
        await asyncio.sleep(0.005)
        writer.write(body[1000:])
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 200 OK", answer[:300]
    reply = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert reply["lang"] == "ar" and reply["replies"]


# ---- web chat people are written to later through their inbox --------------------------------

async def test_web_visitors_get_reminders_and_broadcast_rows_like_everyone(chat: Chat) -> None:
    now = dt.datetime(2026, 12, 11, 10, 0, tzinfo=dt.UTC)
    chat.app.engine.clock = lambda: now
    for person in ("amina", "karim"):
        await chat(person, "bonjour")
        await chat.tap(person, "Français")
        await chat(person, "/start ws_marketing-1")
        registered = await chat.tap(person, "S'inscrire")
        assert ("Inscription confirmée\u202f: «\u202fTechniques de marketing\u202f»"
                in registered.text)
    telegram = await chat.app.engine.contacts.arrive("telegram", "77", "fr")
    outbox = Outbox(chat.app.sessions)
    assert await outbox.recipients("all") == 3
    assert await outbox.recipients_by_channel("all") == {"telegram": 1, "web": 2}
    assert await outbox.recipients("workshop:marketing-1") == 2
    fair = await chat.app.engine.catalogue.fair()
    assert fair is not None
    _id, count = await outbox.queue_broadcast(fair.id, "all", {"fr": "Bonjour", "ar": "مرحبا"},
                                              now)
    assert count == 3
    await queue_reminders(chat.app.sessions, now)
    async with chat.app.sessions() as session:
        rows = (await session.execute(
            select(OutboxMessage.kind, Contact.channel)
            .join(Contact, Contact.id == OutboxMessage.contact_id))).all()
    assert sorted(rows).count(("broadcast", "web")) == 2
    assert ("broadcast", "telegram") in rows
    assert sorted(rows).count(("workshop_reminder", "web")) == 4  # the evening and the hour
    assert telegram.channel == "telegram"


# ---- what organizers and operators see ------------------------------------------------------

async def test_exports_logs_and_metrics_never_show_the_token(
    chat: Chat, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    await chat("amina", "/start ws_marketing-1")
    await chat.tap("amina", "S'inscrire")
    for _attempt in range(20):  # past the flood limit: the throttle names the person in the log
        await chat("amina", "A12")
    token, person = chat.session("amina"), chat.user_id("amina")
    env = cli_env(TADAMON_DATABASE_URL=chat.app.settings.database_url)
    written = ""
    for what in ("contacts", "registrations"):
        out = tmp_path / f"{what}.csv"
        code, _stdout, stderr = await run_tadamon("export", what, "--out", str(out), env=env,
                                                  cwd=tmp_path)
        assert code == 0, stderr
        written += out.read_text(encoding="utf-8")
    assert f"web,{person}," in written and token not in written
    metrics = await (await chat.client.get("/metrics")).text()
    assert token not in metrics
    assert token not in caplog.text
