"""The main menu shows what is the person's own (their workshops, their list, a seat offered
to them), help names every entry, and someone who stopped the announcements gets them back only
when they ask."""

from __future__ import annotations

from tests.conftest import Chat
from tests.platforms import TelegramFactory
from tests.test_registration_conversation import NOW, small_workshop


async def opted_out(chat: Chat, user: str) -> bool:
    contact = await chat.app.engine.contacts.get("web", chat.user_id(user))
    assert contact is not None
    return contact.opted_out


async def test_the_menu_has_my_workshops_and_my_list_once_a_stand_is_saved(chat: Chat) -> None:
    await chat("amina", "bonjour")
    menu = await chat.tap("amina", "Français")
    assert "Mes ateliers" in menu.labels and "Ma liste" not in menu.labels

    await chat("amina", "A12")
    await chat.tap("amina", "Ajouter à ma liste")
    menu = await chat("amina", "menu")

    assert menu.labels[:4] == ["Ateliers", "Mes ateliers", "Trouver un stand", "Ma liste"]
    mine = await chat.tap("amina", "Ma liste")
    assert "Votre liste\u202f: 1 stand." in mine.text


async def test_help_names_every_entry_of_the_menu(chat: Chat) -> None:
    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    french = await chat("amina", "aide")
    await chat("karim", "السلام عليكم")
    await chat.tap("karim", "العربية")
    arabic = await chat("karim", "مساعدة")

    for line in ("• ateliers", "• mes ateliers", "• stands", "• ma liste", "• avis",
                 "• infos", "langue", "• arrêt"):
        assert line in french.text, line
    for line in ("• ورشات", "• ورشاتي", "• أروقة", "• قائمتي", "• رأي", "• معلومات",
                 "اللغة", "• توقف"):
        assert line in arabic.text, line


async def test_the_next_workshop_then_a_seat_offered_come_first_in_the_menu(chat: Chat) -> None:
    chat.app.engine.clock = lambda: NOW
    await small_workshop(chat)
    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    await chat("amina", "/start ws_marketing-1")
    await chat.tap("amina", "S'inscrire")

    menu = await chat("amina", "menu")
    assert menu.replies[0]["text"].startswith(
        "Votre prochain atelier\u202f: «\u202fTechniques de marketing")
    assert menu.replies[-1]["text"] == "Que souhaitez-vous faire\u202f?"
    hello = await chat("amina", "bonsoir")
    assert "Votre prochain atelier\u202f: «\u202fTechniques de marketing" in hello.text

    await chat("karim", "السلام عليكم")
    await chat.tap("karim", "العربية")
    await chat("karim", "/start ws_marketing-1")
    await chat.tap("karim", "الانضمام إلى لائحة الانتظار")  # full: one seat
    await chat("amina", "mes ateliers")
    await chat.tap("amina", "Annuler\u202f: Techniques de marketing")

    his = await chat("karim", "القائمة")
    offer = his.replies[0]
    assert offer["text"].startswith("مقعد معروض عليك في ورشة «تقنيات التسويق»")
    assert [choice["label"] for choice in offer["choices"]] == ["قبول المقعد", "رفض"]
    accepted = await chat.tap("karim", "قبول المقعد")
    assert "المقعد لك" in accepted.text


async def test_after_stop_a_message_is_answered_and_asks_once_before_resuming(
        chat: Chat) -> None:
    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    stopped = await chat("amina", "arrêt")
    assert "Pour les recevoir de nouveau, envoyez «\u202freprendre\u202f»." in stopped.text
    assert await opted_out(chat, "amina")

    card = await chat("amina", "A12")
    assert "Stand A12" in card.text
    assert card.replies[-1]["text"].endswith("Les réactiver\u202f?")
    assert [choice["label"] for choice in card.replies[-1]["choices"]] == ["Oui, les réactiver"]
    assert await opted_out(chat, "amina")

    answer = await chat("amina", "où sont les toilettes ?")
    assert "réactiver" not in answer.text  # asked once
    assert await opted_out(chat, "amina")

    await chat("amina", "A12")
    back = await chat.post({"session": chat.session("amina"), "choice": "resume"})
    assert "vous recevrez de nouveau les annonces" in back.text
    assert not await opted_out(chat, "amina")


async def test_resume_said_in_arabic_and_darija(chat: Chat) -> None:
    await chat("karim", "السلام عليكم")
    await chat.tap("karim", "العربية")
    await chat("karim", "توقف")
    card = await chat("karim", "a 12")
    assert "هل تريد إعادة تفعيلها؟" in card.text
    assert await opted_out(chat, "karim")
    back = await chat("karim", "استئناف")
    assert "ستصلك الإعلانات من جديد" in back.text
    assert not await opted_out(chat, "karim")

    await chat("sara", "salam")
    await chat.tap("sara", "العربية")
    await chat("sara", "stop")
    await chat("sara", "fin kaynin twalet?")
    assert await opted_out(chat, "sara")
    await chat("sara", "rje3")
    assert not await opted_out(chat, "sara")


async def test_telegram_deep_link_after_stop_keeps_the_opt_out_and_start_resumes(
        make_telegram: TelegramFactory) -> None:
    tg = await make_telegram()
    await tg.say(601, "/start")
    await tg.tap(601, "Français")
    await tg.say(601, "/stop")

    card = await tg.say(601, "/start stand_A12")

    assert "Stand A12" in card and "Les réactiver\u202f?" in card
    contact = await tg.app.engine.contacts.get("telegram", "601")
    assert contact is not None and contact.opted_out
    back = await tg.say(601, "/start")
    assert "vous recevrez de nouveau les annonces" in back
    contact = await tg.app.engine.contacts.get("telegram", "601")
    assert contact is not None and not contact.opted_out
