"""Exploration."""

from __future__ import annotations

from handlers.messages import Inbound, Kind
from storage.models import utcnow
from tests.conftest import ChatFactory
from tests.console import ConsoleFactory


async def test_explore(make_console: ConsoleFactory, make_chat: ChatFactory) -> None:
    console = await make_console()
    app = console.app
    now = utcnow()
    app.engine.clock = lambda: now
    chat = await make_chat(app)
    for user, text in [("amina", "je voudrais voir le programme des ateliers"),
                       ("karim", "فين كاين المرحاض؟"), ("youssef", "fin kayn l3sel"),
                       ("john", "where are the toilets?"), ("zz", "blorf quux zzzt")]:
        answer = await chat(user, text)
        print(user, answer.body.get("intent"), answer.lang, answer.labels)
    answer = await chat.tap("amina", answer.choices[0]["id"] if False else chat.last("amina").choices[0]["id"])
    print("tap", answer.body.get("intent"), answer.lang, answer.labels)
    a = await app.engine.answer(Inbound("telegram", "1001", Kind.TEXT, "where are the toilets?", message_id="1"))
    print("tg", a.intent)
    await app.engine.flush_statistics()
    status, html = await console.get("/admin/")
    with open("/tmp/today/page.html", "w") as f:
        f.write(html)
    print(status)
