"""The conversation's session: typed, versioned, and readable from what older code stored."""

from __future__ import annotations

import json
import time

from handlers.session import VERSION, CachedContact, Session
from storage import keys
from storage.models import Role
from storage.repositories import ContactView
from tests.conftest import Chat

PERSON = ContactView(id=7, channel="whatsapp", user_id="212600000001", language="ar",
                     language_confirmed=True, role=Role.COOPERATIVE, opted_out=False)


def test_a_session_written_before_versions_still_loads_without_its_dead_key() -> None:
    """What the code before the typed session kept in Redis (no version, `last_stand` that
    nothing read) loads into the model, and is written back versioned, without that key."""
    at = time.time()
    old = {"lang": "ar", "lang_prompted": True, "offered": ["m:", "st:A12", 3],
           "contact": {"id": 7, "channel": "whatsapp", "user_id": "212600000001",
                       "language": "ar", "language_confirmed": True, "role": "cooperative",
                       "opted_out": False, "unreachable": False, "at": at},
           "search": "argan", "last_stand": "A12",
           "flow": "feedback", "data": {"kind": "stand", "key": "A12"}}
    session = Session.load(old)
    assert session.language == "ar" and session.language_prompted
    assert session.offered == ["m:", "st:A12"]  # a number is not a button id
    assert session.contact == CachedContact(PERSON, at)
    assert session.search == "argan"
    assert (session.flow, session.data) == ("feedback", {"kind": "stand", "key": "A12"})
    stored = session.dump()
    assert stored["v"] == VERSION and "last_stand" not in stored
    assert Session.load(json.loads(json.dumps(stored))) == session


def test_an_empty_session_stores_only_its_version() -> None:
    assert Session().dump() == {"v": VERSION}
    assert Session.load({}) == Session()


def test_a_newer_or_damaged_session_starts_afresh() -> None:
    assert Session.load({"v": VERSION + 1, "lang": "ar", "flow": "broadcast"}) == Session()
    damaged = Session.load({"lang": 3, "offered": "m:", "flow": ["x"], "data": {"a": 1},
                            "contact": {"id": 7, "role": "emperor", "at": "soon"}})
    assert damaged == Session()


def test_data_without_a_flow_is_not_kept() -> None:
    assert Session.load({"data": {"feedback_id": 4}}).data == {}
    session = Session(flow=None, data={"feedback_id": 4})
    assert "data" not in session.dump()


def test_offered_buttons_newest_first_and_bounded() -> None:
    session = Session(offered=["a", "b"])
    session.remember_offered(["c", "a"])
    assert session.offered == ["c", "a", "b"]
    session.remember_offered([f"x{i}" for i in range(100)])
    assert len(session.offered) == 60 and session.offered[0] == "x0"


async def test_what_redis_keeps_after_a_conversation_is_the_versioned_model(chat: Chat) -> None:
    """After a person opens a stand card and searches, Redis holds the versioned session:
    their language, the offered buttons, their search, and no dead key."""
    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    assert "A12" in (await chat("amina", "A12")).text
    await chat("amina", "argan")
    raw = await chat.app.state.redis.get(keys.session("web", chat.user_id("amina")))
    stored = json.loads(raw)
    assert stored["v"] == VERSION
    assert stored["lang"] == "fr" and stored["lang_prompted"] is True
    assert stored["search"] == "argan" and stored["offered"]
    assert stored["contact"]["user_id"] == chat.user_id("amina")
    assert "last_stand" not in stored and "flow" not in stored
