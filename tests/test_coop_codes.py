"""Cooperative link codes: long enough not to be guessed, wrong ones told apart from a search,
and wrong attempts limited per person and per network address, on every channel."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import update

from bot.app import App
from bot.i18n import FSI, PDI
from handlers.messages import Inbound, Kind
from storage import keys
from storage.cooperatives import CODE_ALPHABET, CooperativeRepository
from storage.models import Exhibitor
from tests.conftest import AppFactory, Chat
from tests.platforms import TelegramFactory, WhatsAppFactory

AMINA, KARIM = 2001, 2002
CARPETS = "coop-al-wafae-zarbia"  # stand A18
WRONG = "ZZZZZZZZZZZZZ"  # a code's length and symbols, no exhibitor's code
LINKED_FR = "Vous êtes maintenant lié à Coopérative Al Wafae du tapis, stand A18"
NOT_VALID_FR = "Ce code de coopérative n'est pas valable."
NOT_VALID_AR = "رمز التعاونية هذا غير صالح."
LIMITED_FR = "Trop de codes de coopérative erronés ont été essayés."
LIMITED_AR = "أُدخل عدد كبير من رموز التعاونية غير الصحيحة."


async def code_of(app: App, exhibitor: str = CARPETS) -> str:
    codes = {code.exhibitor: code.code for code in await CooperativeRepository(app.sessions)
             .codes()}
    return codes[exhibitor]


async def role_of(app: App, channel: str, user_id: str) -> tuple[str, bool]:
    """The person's role, and whether they are linked to an exhibitor."""
    contact = await app.engine.contacts.get(channel, user_id)
    assert contact is not None
    linked = await app.engine.cooperatives.exhibitor_of(contact.id)
    return str(contact.role), linked is not None


async def test_new_codes_have_13_symbols_and_earlier_codes_still_link(chat: Chat) -> None:
    codes = await CooperativeRepository(chat.app.sessions).codes()
    assert codes and all(len(code.code) == 13 and set(code.code) <= set(CODE_ALPHABET)
                         for code in codes)
    assert len(CODE_ALPHABET) ** 13 >= 2 ** 60
    carpets = next(code.code for code in codes if code.exhibitor == CARPETS)

    linked = await chat("fatima", f"/start coop_{carpets}")  # the Telegram link's payload
    assert LINKED_FR in linked.text
    assert await role_of(chat.app, "web", chat.user_id("fatima")) == ("cooperative", True)
    typed = await chat("khadija", f"تعاونية {carpets.lower()}")
    assert f"الرواق {FSI}A18{PDI}" in typed.text
    assert await role_of(chat.app, "web", chat.user_id("khadija")) == ("cooperative", True)

    # A code handed out before codes grew (8 symbols) links as it did.
    async with chat.app.sessions() as session, session.begin():
        await session.execute(update(Exhibitor).where(Exhibitor.key == "coop-tifawin")
                              .values(link_code="HADS2EPT"))
    earlier = await chat("youssef", "COOP HADS2EPT")  # the WhatsApp link's text
    assert "Vous êtes maintenant lié à Coopérative Tifawin" in earlier.text
    assert await role_of(chat.app, "web", chat.user_id("youssef")) == ("cooperative", True)


async def test_a_wrong_code_is_not_valid_in_french_and_arabic(chat: Chat) -> None:
    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    for text in (f"coop {WRONG}", f"/start coop_{WRONG}", "coop AB12", "COOP-ABCD-EFGH-JKMN-P",
                 "coop 22222222222222222222"):
        answer = await chat("amina", text)
        assert NOT_VALID_FR in answer.text, text
        assert "stand" not in answer.text.lower(), text
    assert await role_of(chat.app, "web", chat.user_id("amina")) == ("visitor", False)

    await chat("karim", "السلام عليكم")
    await chat.tap("karim", "العربية")
    for text in (f"تعاونية {WRONG}", "تعاونية ABC", f"coop_{WRONG.lower()}"):
        answer = await chat("karim", text)
        assert NOT_VALID_AR in answer.text, text
    assert await role_of(chat.app, "web", chat.user_id("karim")) == ("visitor", False)

    # Looking for a cooperative by name is still a search.
    search = await chat("amina", "coopérative tifawin")
    assert "Tifawin" in search.text and NOT_VALID_FR not in search.text


async def test_texts_that_cannot_be_codes_do_not_use_up_attempts(chat: Chat) -> None:
    for text in ("coop AB12", "coop tifawin", "تعاونية X", "coop 0000000000000",
                 "coop ABCDEFGHJKMNPQ", "coop_O1L"):
        assert NOT_VALID_FR in (await chat("salma", text)).text, text
    assert LINKED_FR in (await chat("salma", f"coop {await code_of(chat.app)}")).text


async def test_the_sixth_wrong_code_within_the_hour_is_refused_even_a_right_one(
    make_whatsapp: WhatsAppFactory, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    wa = await make_whatsapp()
    member, neighbour = "212600000501", "212600000502"
    await wa.say(member, "bonjour")
    await wa.tap(member, "Français")
    for _attempt in range(keys.LINK_CODE_PERSON_LIMIT):
        assert NOT_VALID_FR in await wa.say(member, f"COOP {WRONG}")
    right = await code_of(wa.app)
    refused = await wa.say(member, f"COOP {right}")
    assert LIMITED_FR in refused and "réessayez dans 60 minutes" in refused, refused
    assert await role_of(wa.app, "whatsapp", member) == ("visitor", False)
    assert LIMITED_FR in await wa.say(member, f"COOP {right}")  # refusals add no time
    # Logged once, and never with a code.
    logged = [record.getMessage() for record in caplog.records]
    assert len([line for line in logged if "too many wrong link codes" in line]) == 1
    assert len([line for line in logged if "wrong link code from" in line]) == 5
    assert not [line for line in logged if right in line or WRONG in line]

    # Someone else is not affected.
    assert LINKED_FR in await wa.say(neighbour, f"COOP {right}")
    assert await role_of(wa.app, "whatsapp", neighbour) == ("cooperative", True)

    # Once the hour has passed, the right code links.
    contact = await wa.app.engine.contacts.get("whatsapp", member)
    assert contact is not None
    counter = keys.link_code_failures_of_contact(contact.id)
    assert 0 < await wa.app.redis.pttl(counter) <= keys.LINK_CODE_WINDOW * 1000
    await wa.app.redis.pexpire(counter, 1)
    await asyncio.sleep(0.05)
    assert LINKED_FR in await wa.say(member, f"COOP {right}")
    assert await role_of(wa.app, "whatsapp", member) == ("cooperative", True)


async def test_wrong_codes_in_arabic_on_telegram_then_the_limit(
    make_telegram: TelegramFactory,
) -> None:
    tg = await make_telegram()
    await tg.say(KARIM, "/start", language_code="ar")
    await tg.tap(KARIM, "العربية")
    for _attempt in range(keys.LINK_CODE_PERSON_LIMIT):
        assert NOT_VALID_AR in await tg.say(KARIM, f"/start coop_{WRONG}")
    limited = await tg.say(KARIM, f"/start coop_{await code_of(tg.app)}")
    assert LIMITED_AR in limited and f"بعد {FSI}60{PDI} دقيقةً" in limited
    assert await role_of(tg.app, "telegram", str(KARIM)) == ("visitor", False)
    assert LINKED_FR in await tg.say(AMINA, f"/start coop_{await code_of(tg.app)}")


async def test_web_sessions_sharing_an_address_share_its_limit(make_app: AppFactory) -> None:
    app = await make_app()
    engine = app.engine
    right = await code_of(app)

    async def say(session: str, text: str, client: str | None) -> str:
        rendered = await engine.handle(Inbound("web", session, Kind.TEXT, text=text,
                                               client=client))
        return "\n".join(item.text for item in rendered)

    # Many new sessions from one address, each under the limit per person.
    per_session = keys.LINK_CODE_PERSON_LIMIT - 2
    sessions = [f"rotating-{index}" for index in range(
        -(-keys.LINK_CODE_CLIENT_LIMIT // per_session))]
    tried = 0
    for session in sessions:
        for _attempt in range(per_session):
            if tried == keys.LINK_CODE_CLIENT_LIMIT:
                break
            assert NOT_VALID_FR in await say(session, f"coop {WRONG}", "address-1")
            tried += 1
    assert LIMITED_FR in await say(sessions[-1], f"coop {right}", "address-1")
    assert LIMITED_FR in await say("rotating-new", f"coop {right}", "address-1")
    assert await role_of(app, "web", "rotating-new") == ("visitor", False)

    # Another address, and a platform identity (no address), are not affected.
    assert LINKED_FR in await say("elsewhere", f"coop {right}", "address-2")
    assert LINKED_FR in await say("mobile", f"coop {right}", None)
    assert await role_of(app, "web", "elsewhere") == ("cooperative", True)


async def test_rotating_web_chat_sessions_from_one_address_share_its_limit(chat: Chat) -> None:
    """Through the HTTP API: every new session from 127.0.0.1 carries the same address hash,
    so opening new sessions does not buy new attempts."""
    right = await code_of(chat.app)
    per_session = keys.LINK_CODE_PERSON_LIMIT - 1
    tried, index = 0, 0
    while tried < keys.LINK_CODE_CLIENT_LIMIT:
        index += 1
        for _attempt in range(min(per_session, keys.LINK_CODE_CLIENT_LIMIT - tried)):
            assert NOT_VALID_FR in (await chat(f"visitor-{index}", f"coop {WRONG}")).text
            tried += 1
    answer = await chat("newcomer", f"coop {right}")
    assert LIMITED_FR in answer.text
    assert await role_of(chat.app, "web", chat.user_id("newcomer")) == ("visitor", False)
