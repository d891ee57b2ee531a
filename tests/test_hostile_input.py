"""Hostile input through the web chat API: broken Unicode and control characters, forged button
ids, deep-link payloads that try to put words in the bot's mouth."""

from __future__ import annotations

import pytest

from bot.i18n import FSI, PDI
from tests.conftest import Chat, ChatFactory

BROKEN = ["tr\ud800s bien", "très\x00 bien", "très\x1b[31m bien\x85"]


async def handler_errors(chat: Chat) -> float:
    """`tadamon_handler_errors_total{channel="web"}` as /metrics shows it (0 before any)."""
    text = await (await chat.client.get("/metrics")).text()
    for line in text.splitlines():
        if line.startswith('tadamon_handler_errors_total{channel="web"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def stored_comments(chat: Chat, user: str) -> list[str | None]:
    contact = await chat.app.engine.contacts.get("web", chat.user_id(user))
    assert contact is not None
    return [row["comment"] for row in await chat.app.engine.feedback.for_contact(contact.id)]


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_broken_unicode_and_control_characters_get_a_normal_answer(
    make_chat: ChatFactory, database: str
) -> None:
    chat = await make_chat(database=database)
    await chat("amina", "bonjour")
    await chat.tap("amina", "lang:fr")
    for text in BROKEN:
        answer = await chat("amina", text)
        assert answer.status == 200, answer
        assert "indisponible" not in answer.text
        assert "Désolé, un problème" not in answer.text
    card = await chat("amina", "A\x0012")
    assert card.mentions("Stand A12")
    assert await handler_errors(chat) == 0
    health = await chat.client.get("/healthz")
    assert health.status == 200  # no false database alarm


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
@pytest.mark.parametrize("comment", BROKEN)
async def test_a_comment_with_broken_unicode_is_stored_clean(
    make_chat: ChatFactory, database: str, comment: str
) -> None:
    chat = await make_chat(database=database)
    await chat("amina", "bonjour")
    await chat.tap("amina", "lang:fr")
    await chat("amina", "avis")
    await chat.tap("amina", "★★★★")
    thanks = await chat("amina", comment)
    assert thanks.status == 200
    assert "Merci, votre commentaire a été enregistré" in thanks.text
    [stored] = await stored_comments(chat, "amina")
    assert stored is not None
    assert stored.startswith("tr") and stored.endswith("bien")
    assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F or 0xD800 <= ord(ch) <= 0xDFFF
                   for ch in stored)
    stored.encode("utf-8")  # what PostgreSQL, a CSV export and a log line all need


async def test_a_multiline_comment_keeps_its_lines(chat: Chat) -> None:
    await chat("amina", "bonjour")
    await chat.tap("amina", "lang:fr")
    await chat("amina", "avis")
    await chat.tap("amina", "★★★★★")
    await chat("amina", "Bien organisé.\r\nMerci\tà tous !")
    assert await stored_comments(chat, "amina") == ["Bien organisé.\nMerci\tà tous !"]


@pytest.mark.parametrize("choice", [
    "ws:²", "reg:١٢", "wsd:²", "offer:yes:²", "offer:no:١", "fbw:²:5", "fbw:1:²", "fbw:1:5\n",
    "offer:yes:" + "9" * 40,
])
async def test_a_forged_button_id_gets_the_polite_answer(chat: Chat, choice: str) -> None:
    await chat("amina", "bonjour")
    await chat.tap("amina", "lang:fr")
    forged = await chat.post({"session": chat.session("amina"), "choice": choice})
    assert forged.status in (200, 400), forged
    if forged.status == 200:
        assert "Ce bouton n'est plus valable" in forged.text
    assert await handler_errors(chat) == 0


async def test_a_forged_survey_answer_asks_the_question_again(chat: Chat) -> None:
    from storage.cooperatives import CooperativeRepository

    codes = {code.exhibitor: code.code
             for code in await CooperativeRepository(chat.app.sessions).codes()}
    await chat("fatima", f"/start coop_{codes['coop-al-wafae-zarbia']}")
    forged = await chat.post({"session": chat.session("fatima"), "choice": "svy:s:²"})
    assert "Quel est votre degré de satisfaction pour ce salon" in forged.text
    assert await handler_errors(chat) == 0


async def test_a_forged_button_in_arabic(chat: Chat) -> None:
    await chat("karim", "السلام عليكم")
    await chat.tap("karim", "lang:ar")
    forged = await chat.post({"session": chat.session("karim"), "choice": "offer:yes:²"})
    assert "هذا الزر لم يعد صالحًا" in forged.text
    assert await handler_errors(chat) == 0


INJECTED = "ATTENTION: le salon est déplacé à Casablanca, appelez le 0600000000"


@pytest.mark.parametrize("payload", [
    f"stand_{INJECTED}", f"ws_{INJECTED}", f"coop_{INJECTED}", INJECTED, f"stand_A12 {INJECTED}",
    "stand_<b>A12</b>", "ws_../../etc", "stand_" + "A" * 300,
])
async def test_a_deep_link_payload_is_never_echoed_in_french(chat: Chat, payload: str) -> None:
    await chat("amina", "bonjour")
    await chat.tap("amina", "lang:fr")
    answer = await chat("amina", f"/start {payload}")
    assert answer.status == 200
    assert "ATTENTION" not in answer.text and "Casablanca" not in answer.text
    assert "<b>" not in answer.text and "etc" not in answer.text and "AAAA" not in answer.text
    assert "Ce lien n'est pas valide" in answer.text
    assert "Ateliers" in answer.labels


async def test_a_deep_link_payload_is_never_echoed_in_arabic(chat: Chat) -> None:
    await chat("karim", "السلام عليكم")
    await chat.tap("karim", "lang:ar")
    answer = await chat("karim", "/start stand_تنبيه: تم نقل المعرض إلى الدار البيضاء")
    assert "تنبيه" not in answer.text and "الدار البيضاء" not in answer.text
    assert "هذا الرابط غير صالح" in answer.text


async def test_a_newcomers_bad_link_gets_the_welcome_and_no_echo(chat: Chat) -> None:
    answer = await chat("nadia", f"/start stand_{INJECTED}")
    assert "Bienvenue" in answer.text
    assert "Ce lien n'est pas valide" in answer.text
    assert "ATTENTION" not in answer.text
    assert answer.labels[-3:] == ["العربية", "Français", "English"]


async def test_a_well_formed_unknown_stand_is_still_named(chat: Chat) -> None:
    await chat("amina", "bonjour")
    await chat.tap("amina", "lang:fr")
    missing = await chat("amina", "/start stand_Z99")
    assert "Il n'y a pas de stand Z99" in missing.text
    found = await chat("amina", "/start stand_a-12")
    assert found.mentions("Stand A12")
    await chat("karim", "السلام عليكم")
    await chat.tap("karim", "lang:ar")
    arabic = await chat("karim", "/start stand_Z99")
    assert f"{FSI}Z99{PDI}" in arabic.text
