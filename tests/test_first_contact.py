"""The first minute of a visit: a poster's code, a deep link or a first question opens the
answer in the language the person most likely reads, with its buttons and a one-tap language
switch, and the same answer comes back after the switch, on the web, Telegram and WhatsApp."""

from __future__ import annotations

from typing import Any

import pytest

from bot.i18n import FSI, PDI
from tests.conftest import Answer, Chat
from tests.platforms import TelegramFactory, WhatsAppFactory

LANGUAGE_BUTTONS = ["العربية", "Français", "English"]
ARABIC_CARD = f"الرواق {FSI}A12{PDI}"


async def start(chat: Chat, user: str, payload: str, **extra: Any) -> Answer:
    """What the page sends for `/?start=PAYLOAD`, on a new session."""
    token = await chat.new_session(user)
    answer = await chat.post({"session": token, "start": payload, **extra.pop("body", {})},
                             headers=extra.pop("headers", None))
    chat.history.setdefault(user, []).append(answer)
    return answer


def reply_with(answer: Answer, text: str) -> dict[str, Any]:
    found = [item for item in answer.replies if text in item["text"]]
    assert found, (text, answer)
    return found[0]


def labels(item: dict[str, Any]) -> list[str]:
    return [choice["label"] for choice in item["choices"]]


async def test_a_poster_code_opens_the_card_in_the_browser_language_with_its_buttons(
        chat: Chat) -> None:
    answer = await start(chat, "amina", "stand_A12", body={"lang": "ar-MA"})

    assert (answer.status, answer.lang, answer.body["dir"]) == (200, "ar", "rtl")
    assert answer.body["intent"] == "stand"
    card = reply_with(answer, ARABIC_CARD)
    assert "أضف إلى قائمتي" in labels(card)  # the card keeps its own buttons
    assert labels(answer.replies[-1]) == LANGUAGE_BUTTONS


async def test_the_browser_header_tells_the_language_when_the_page_does_not(
        chat: Chat) -> None:
    arabic = await start(chat, "karim", "stand_A12",
                         headers={"Accept-Language": "ar-MA,ar;q=0.9,fr;q=0.8"})
    french = await start(chat, "sara", "stand_A12")

    assert arabic.lang == "ar" and ARABIC_CARD in arabic.text
    assert french.lang == "fr" and "Stand A12" in french.text
    assert labels(reply_with(french, "Stand A12"))


async def test_after_choosing_arabic_the_card_comes_back_in_arabic(chat: Chat) -> None:
    first = await start(chat, "amina", "stand_A12")
    assert first.lang == "fr" and labels(first.replies[-1]) == LANGUAGE_BUTTONS

    switched = await chat.tap("amina", "العربية")

    assert switched.lang == "ar" and switched.body["intent"] == "stand"
    assert "تم اختيار اللغة: العربية." in switched.text
    assert "أضف إلى قائمتي" in labels(reply_with(switched, ARABIC_CARD))
    assert "ماذا تريد أن تفعل؟" not in switched.text  # not the main menu
    # Only right after the first answer: later, the same button changes the language alone.
    later = await chat.post({"session": chat.session("amina"), "choice": "lang:fr"})
    assert "Langue choisie\u202f: français." in later.text and "Stand A12" not in later.text


async def test_the_language_already_shown_is_confirmed_without_repeating_the_card(
        chat: Chat) -> None:
    await start(chat, "amina", "stand_A12")

    kept = await chat.tap("amina", "Français")

    assert "Langue choisie\u202f: français." in kept.text and "Stand A12" not in kept.text


async def test_a_bad_start_payload_is_a_clear_error(chat: Chat) -> None:
    token = await chat.new_session("amina")
    for body in ({"session": token, "start": 12}, {"session": token, "start": "x" * 300},
                 {"session": token, "start": "stand_A12", "lang": "<script>"}):
        answer = await chat.post(body)
        assert answer.status == 400 and answer.body["error"]
    forged = await chat.post({"session": token, "start": "stand_<b>ZZ</b>"})
    assert forged.status == 200 and "Ce lien n'est pas valide." in forged.text


@pytest.mark.parametrize(("question", "language", "expected", "again"), [
    ("où sont les toilettes ?", "fr", "toilettes", "المراحيض"),
    ("أين المراحيض؟", "ar", "المراحيض", "toilettes"),
    ("fin kaynin twalet?", "ar", "المراحيض", "toilettes"),
    ("where are the toilets?", "en", "toilets", "المراحيض"),
])
async def test_a_first_question_is_answered_then_again_in_the_chosen_language(
        chat: Chat, question: str, language: str, expected: str, again: str) -> None:
    first = await chat("amina", question)
    assert first.lang == language and first.body["intent"] == "info"
    assert expected in first.text.lower()
    assert labels(first.replies[-1]) == LANGUAGE_BUTTONS

    other = "Français" if language == "ar" else "العربية"
    switched = await chat.tap("amina", other)

    assert switched.body["intent"] == "info"
    assert again in switched.text.lower()


async def test_telegram_language_code_and_a_workshop_link(
        make_telegram: TelegramFactory) -> None:
    tg = await make_telegram()

    first = await tg.say(501, "/start ws_marketing-1", language_code="ar")

    assert "تقنيات التسويق" in first
    card = next(call for call in tg.fake.calls_of("sendMessage", 501)
                if "تقنيات التسويق" in (call.text or ""))
    keyboard = [button["text"] for row in card.params["reply_markup"]["inline_keyboard"]
                for button in row]
    assert "التسجيل" in keyboard
    assert tg.labels(501) == LANGUAGE_BUTTONS

    switched = await tg.tap(501, "Français")

    assert "Langue choisie\u202f: français." in switched
    assert "Techniques de marketing" in switched
    assert "S'inscrire" in tg.labels(501)


async def test_whatsapp_stand_text_then_arabic(make_whatsapp: WhatsAppFactory) -> None:
    wa = await make_whatsapp()

    first = await wa.say("212600000001", "STAND A12")

    assert "Stand A12" in first
    card = next(call for call in wa.fake.messages("212600000001", "interactive")
                if "Stand A12" in (call.text or ""))
    assert "Ajouter à ma liste" in [row[1] for row in card.rows]  # the card's own buttons
    assert wa.labels("212600000001") == LANGUAGE_BUTTONS

    switched = await wa.tap("212600000001", "العربية")

    assert "تم اختيار اللغة: العربية." in switched
    assert ARABIC_CARD in switched


@pytest.mark.parametrize(("browser", "words", "language", "card", "button"), [
    ("fr", "بالعربية", "ar", ARABIC_CARD, "أضف إلى قائمتي"),
    ("fr", "3arbia", "ar", ARABIC_CARD, "أضف إلى قائمتي"),
    ("ar", "en français s'il vous plaît", "fr", "Stand A12", "Ajouter à ma liste"),
])
async def test_a_language_named_in_words_shows_the_card_again_too(
        chat: Chat, browser: str, words: str, language: str, card: str, button: str) -> None:
    await start(chat, "amina", "stand_A12", body={"lang": browser})

    switched = await chat("amina", words)

    assert switched.lang == language
    assert button in labels(reply_with(switched, card))
