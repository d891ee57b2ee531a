"""Feedback in conversation: the fair, workshops and stands rated with a comment, in French and
Arabic, on the web chat, Telegram and WhatsApp; the cooperatives' digest and survey."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update

from bot.app import App
from bot.i18n import FSI, PDI
from bot.worker import OutboxWorker
from storage.cooperatives import CooperativeRepository
from storage.feedback import COMMENT_MAX, queue_cooperative_messages
from storage.models import Contact, ExhibitorSurvey, Feedback, Workshop
from tests.conftest import Chat
from tests.platforms import TelegramFactory, WhatsAppFactory

AMINA, KARIM, SALMA = 1001, 1002, 1003
CASABLANCA = dt.timezone(dt.timedelta(hours=1))
FAIR_DAY = dt.datetime(2026, 12, 13, 11, 0, tzinfo=CASABLANCA)


async def _rows(app: App, contact_user: str) -> list[Feedback]:
    async with app.sessions() as session:
        return list(await session.scalars(
            select(Feedback).join(Contact, Contact.id == Feedback.contact_id)
            .where(Contact.user_id == contact_user).order_by(Feedback.id)))


async def test_fair_feedback_and_a_second_rating_the_same_day(chat: Chat) -> None:
    chat.app.engine.clock = lambda: FAIR_DAY
    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    await chat("amina", "menu")
    asked = await chat.tap("amina", "Donner mon avis")
    assert asked.labels[:5] == ["★★★★★", "★★★★", "★★★", "★★", "★"]
    thanks = await chat.tap("amina", "★★★★")
    assert "Merci pour votre note" in thanks.text and "remplace" not in thanks.text
    recorded = await chat("amina", "  Très bien organisé, merci !  ")
    assert "Merci, votre commentaire a été enregistré." in recorded.text

    await chat("amina", "/start feedback")  # the poster's or a broadcast's deep link
    again = await chat.tap("amina", "★★")
    assert "Elle remplace la note que vous aviez donnée plus tôt aujourd'hui." in again.text
    await chat.tap("amina", "Passer")
    [row] = await _rows(chat.app, chat.user_id("amina"))
    assert (row.target_kind, row.target_key, row.rating, row.comment) == (
        "fair", "khouribga-ess-2026", 2, None)
    assert row.day == dt.date(2026, 12, 13)

    chat.app.engine.clock = lambda: FAIR_DAY + dt.timedelta(days=1)
    await chat("amina", "avis")
    await chat.tap("amina", "★★★★★")
    rows = await _rows(chat.app, chat.user_id("amina"))
    assert [(row.day, row.rating) for row in rows] == [
        (dt.date(2026, 12, 13), 2), (dt.date(2026, 12, 14), 5)]


async def test_arabic_comments_empty_emoji_or_too_long(chat: Chat) -> None:
    chat.app.engine.clock = lambda: FAIR_DAY
    await chat("karim", "السلام عليكم")
    await chat.tap("karim", "العربية")
    await chat("karim", "تقييم")
    await chat.tap("karim", "★★★★★")
    emoji = await chat("karim", "👍👍 🎉 !!")
    assert "سجلنا تقييمك بدون تعليق" in emoji.text
    [row] = await _rows(chat.app, chat.user_id("karim"))
    assert row.rating == 5 and row.comment is None

    await chat("karim", "/start stand_A18")
    await chat.tap("karim", "تقييم هذا الرواق")
    await chat.tap("karim", "★★★★")
    long = "زرابي جميلة جدا " * 200
    cut = await chat("karim", long)
    assert "شكرًا، تم تسجيل تعليقك." in cut.text
    assert f"لم نحتفظ إلا بأول {FSI}{COMMENT_MAX}{PDI} حرف" in cut.text
    stand = (await _rows(chat.app, chat.user_id("karim")))[-1]
    assert (stand.target_kind, stand.target_key, stand.rating) == ("stand", "A18", 4)
    assert stand.comment == long.strip()[:COMMENT_MAX].rstrip() and stand.language == "ar"


async def test_stand_feedback_from_the_qr_link_keeps_the_comments_language(chat: Chat) -> None:
    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    card = await chat("amina", "/start stand_A12")
    assert "Stand A12" in card.text and "Noter ce stand" in card.labels
    asked = await chat.tap("amina", "Noter ce stand")
    assert "Quelle note donnez-vous au stand A12" in asked.text
    await chat.tap("amina", "★★★★★")
    await chat("amina", "منتوجات زوينة بزاف")  # a French speaker writing in Arabic
    [row] = await _rows(chat.app, chat.user_id("amina"))
    assert (row.target_kind, row.target_key, row.rating) == ("stand", "A12", 5)
    assert row.comment == "منتوجات زوينة بزاف" and row.language == "ar"


async def _workshop_id(app: App, key: str) -> int:
    async with app.sessions() as session:
        found = await session.scalar(select(Workshop.id).where(Workshop.key == key))
    assert found is not None
    return found


async def test_workshop_prompt_goes_to_confirmed_registrants_after_the_end(
    make_telegram: TelegramFactory,
) -> None:
    tg = await make_telegram()
    app = tg.app
    before = dt.datetime(2026, 12, 11, 10, 0, tzinfo=dt.UTC)
    app.engine.clock = lambda: before
    async with app.sessions() as session, session.begin():
        await session.execute(update(Workshop).where(Workshop.key == "marketing-1")
                              .values(capacity=1))
    await app.state.bump_catalogue_version()
    workshop = await _workshop_id(app, "marketing-1")

    await tg.say(AMINA, "/start")
    await tg.tap(AMINA, "Français")
    await tg.say(AMINA, "/start ws_marketing-1")
    assert "Inscription confirmée" in await tg.tap(AMINA, "S'inscrire")
    await tg.say(KARIM, "/start", language_code="ar")
    await tg.tap(KARIM, "العربية")
    await tg.say(KARIM, "/start ws_marketing-1")
    assert "لائحة الانتظار" in await tg.tap(KARIM, "الانضمام إلى لائحة الانتظار")

    # Too early: the prompt's buttons only work once the workshop has ended.
    early = len(tg.fake.calls_of("sendMessage", AMINA))
    await tg.fake.tap(AMINA, f"fbw:{workshop}:3")
    assert "une fois qu'il sera terminé" in "".join(await tg.settle(AMINA, early))

    reminded = dt.datetime(2026, 12, 13, 10, 30, tzinfo=dt.UTC)  # the reminders go first
    assert await OutboxWorker(app, clock=lambda: reminded).drain() == 2
    after = dt.datetime(2026, 12, 13, 11, 50, tzinfo=dt.UTC)  # 12:50 in Casablanca
    app.engine.clock = lambda: after
    karim_before = len(tg.fake.calls_of("sendMessage", KARIM))
    assert await OutboxWorker(app, clock=lambda: after).drain() == 1
    prompt = tg.fake.calls_of("sendMessage", AMINA)[-1]
    assert ("Merci d'avoir participé à l'atelier «\u202fTechniques de marketing\u202f»"
            in (prompt.text or ""))
    assert tg.labels(AMINA) == ["★★★★★", "★★★★", "★★★", "★★", "★"]
    assert len(tg.fake.calls_of("sendMessage", KARIM)) == karim_before

    rated = await tg.tap(AMINA, "★★★★")
    assert "Merci pour votre note" in rated and "prochaine édition" in rated
    await tg.say(AMINA, "Plus d'ateliers sur l'export, svp")
    [row] = await _rows(app, str(AMINA))
    assert (row.target_kind, row.target_key, row.rating, row.comment) == (
        "workshop", "marketing-1", 4, "Plus d'ateliers sur l'export, svp")

    # Karim, on the waiting list, got no prompt; a forged tap does not let him rate.
    asked = len(tg.fake.calls_of("sendMessage", KARIM))
    await tg.fake.tap(KARIM, f"fbw:{workshop}:5")
    assert "للمسجلين" in "".join(await tg.settle(KARIM, asked))
    assert await _rows(app, str(KARIM)) == []


async def _link(app: App, send: Any, user: Any, exhibitor: str) -> None:
    codes = {code.exhibitor: code.code for code in await CooperativeRepository(app.sessions)
             .codes()}
    answer = await send(user, f"/start coop_{codes[exhibitor]}")
    assert "Tifawin" in answer or "Wafae" in answer or "تيفاوين" in answer or "الوفاء" in answer


async def test_the_daily_digest_goes_to_each_cooperatives_own_members(
    make_telegram: TelegramFactory,
) -> None:
    tg = await make_telegram()
    app = tg.app
    app.engine.clock = lambda: FAIR_DAY
    await tg.say(AMINA, "/start")
    await tg.tap(AMINA, "Français")
    await _link(app, tg.say, AMINA, "coop-al-wafae-zarbia")  # stand A18
    await tg.say(KARIM, "/start", language_code="ar")
    await tg.tap(KARIM, "العربية")
    await _link(app, tg.say, KARIM, "coop-tifawin")  # stand A10

    await tg.say(SALMA, "/start")
    await tg.tap(SALMA, "Français")
    await tg.say(SALMA, "A18")
    await tg.say(SALMA, "Al Wafae du tapis")  # its name: the card again
    await tg.tap(SALMA, "Ajouter à ma liste")
    await tg.say(SALMA, "A18")
    await tg.tap(SALMA, "Noter ce stand")
    await tg.tap(SALMA, "★★★★")
    await tg.say(SALMA, "Très beaux tapis")
    await tg.say(SALMA, "A10")
    await tg.tap(SALMA, "Noter ce stand")
    await tg.tap(SALMA, "★★")
    await tg.say(SALMA, "Trop cher pour moi")

    evening = dt.datetime(2026, 12, 13, 20, 31, tzinfo=CASABLANCA)
    await app.engine.flush_statistics()  # as the worker does before queueing the digests
    assert await queue_cooperative_messages(app.sessions, evening) == 2
    assert await queue_cooperative_messages(app.sessions, evening) == 0  # never twice
    salma_before = len(tg.fake.calls_of("sendMessage", SALMA))
    assert await OutboxWorker(app, clock=lambda: evening).drain() == 2

    amina = tg.fake.calls_of("sendMessage", AMINA)[-1].text or ""
    assert "Votre journée au stand A18, dimanche 13 décembre" in amina
    assert "La fiche de votre stand a été vue 3 fois (3 depuis l'ouverture)." in amina
    assert "1 visiteur a ajouté votre stand à sa liste." in amina
    assert "1 note, 4,0 sur 5 en moyenne." in amina
    assert "Très beaux tapis" in amina and "Trop cher" not in amina
    karim = tg.fake.calls_of("sendMessage", KARIM)[-1].text or ""
    assert "الرواق" in karim and "A10" in karim
    assert "Trop cher pour moi" in karim and "Très beaux tapis" not in karim
    assert len(tg.fake.calls_of("sendMessage", SALMA)) == salma_before  # visitors get none


async def test_the_exhibitor_survey_after_the_last_day_on_whatsapp(
    make_whatsapp: WhatsAppFactory,
) -> None:
    wa = await make_whatsapp()
    app = wa.app
    member, visitor = "212600000201", "212600000202"
    over = dt.datetime(2026, 12, 16, 21, 0, tzinfo=CASABLANCA)
    app.engine.clock = lambda: over
    await wa.say(member, "bonjour")
    await wa.tap(member, "Français")
    await _link(app, wa.say, member, "coop-tifawin")
    async with app.sessions() as session, session.begin():  # they wrote that day: in the
        await session.execute(update(Contact).where(Contact.user_id == member)  # 24 h window
                              .values(last_inbound_at=over - dt.timedelta(hours=2)))
    # That evening's digest, and the survey since it was the last day.
    assert await queue_cooperative_messages(app.sessions, over) == 2
    assert await OutboxWorker(app, clock=lambda: over).drain() == 2
    invitation = next(call.text or "" for call in wa.fake.messages(member)
                      if "Quatre petites questions" in (call.text or ""))
    assert "Quatre petites questions" in invitation
    assert "Quel est votre degré de satisfaction pour ce salon" in invitation
    assert "Reviendriez-vous" in await wa.tap(member, "★★★★")
    sales = await wa.tap(member, "Oui")
    assert "ventes" in sales and "Moins de 2 000 MAD" in wa.labels(member)
    await wa.tap(member, "2 000 à 10 000 MAD")
    thanks = await wa.say(member, "Un meilleur emplacement la prochaine fois")
    assert "Merci pour vos réponses" in thanks
    async with app.sessions() as session:
        [survey] = list(await session.scalars(select(ExhibitorSurvey)))
    assert (survey.satisfaction, survey.come_again, survey.sales_band, survey.comment,
            survey.language) == (4, True, "2k-10k", "Un meilleur emplacement la prochaine fois",
                                 "fr")
    assert survey.exhibitor_id is not None

    await wa.say(visitor, "bonjour")
    forged = await wa.post(wa.fake.button_reply(visitor, "svy:s:5"), visitor)
    assert "réservé aux exposants" in forged


async def test_stand_feedback_on_whatsapp_in_arabic(make_whatsapp: WhatsAppFactory) -> None:
    wa = await make_whatsapp()
    visitor = "212600000301"
    await wa.say(visitor, "السلام عليكم")
    await wa.tap(visitor, "العربية")
    await wa.say(visitor, "STAND A10")  # the poster's WhatsApp link
    asked = await wa.tap(visitor, "تقييم هذا الرواق")
    assert "A10" in asked
    await wa.tap(visitor, "★★★")
    done = await wa.say(visitor, "الفضة ديالهم زوينة")
    assert "شكرًا، تم تسجيل تعليقك." in done
    [row] = await _rows(wa.app, visitor)
    assert (row.target_kind, row.target_key, row.rating, row.comment, row.language) == (
        "stand", "A10", 3, "الفضة ديالهم زوينة", "ar")


async def test_fair_feedback_on_telegram_in_arabic(make_telegram: TelegramFactory) -> None:
    tg = await make_telegram()
    tg.app.engine.clock = lambda: FAIR_DAY
    await tg.say(KARIM, "/start", language_code="ar")
    await tg.tap(KARIM, "العربية")
    asked = await tg.say(KARIM, "/feedback")
    assert "5 نجوم" in asked or "خمس نجوم" in asked
    assert "شكرًا على تقييمك" in await tg.tap(KARIM, "★★★★★")
    assert "شكرًا، تم تسجيل تعليقك." in await tg.say(KARIM, "تنظيم ممتاز، بارك الله فيكم")
    [row] = await _rows(tg.app, str(KARIM))
    assert (row.target_kind, row.rating, row.comment, row.language) == (
        "fair", 5, "تنظيم ممتاز، بارك الله فيكم", "ar")


async def test_workshop_prompt_on_whatsapp_in_arabic(make_whatsapp: WhatsAppFactory) -> None:
    wa = await make_whatsapp()
    app = wa.app
    person = "212600000401"
    app.engine.clock = lambda: dt.datetime(2026, 12, 11, 10, 0, tzinfo=dt.UTC)
    await wa.say(person, "السلام عليكم")
    await wa.tap(person, "العربية")
    await wa.say(person, "/start ws_marketing-1")
    assert "تم تسجيلك في ورشة «تقنيات التسويق»" in await wa.tap(person, "التسجيل")
    after = dt.datetime(2026, 12, 13, 11, 50, tzinfo=dt.UTC)
    app.engine.clock = lambda: after
    async with app.sessions() as session, session.begin():
        await session.execute(update(Contact).where(Contact.user_id == person)
                              .values(last_inbound_at=after - dt.timedelta(hours=3)))
    # The two reminders and, 15 minutes after the end, the prompt with its stars.
    assert await OutboxWorker(app, clock=lambda: after).drain() == 3
    prompt = wa.fake.messages(person)[-1].text or ""
    assert "شكرًا على حضورك ورشة «تقنيات التسويق»" in prompt
    assert wa.labels(person) == ["★★★★★", "★★★★", "★★★", "★★", "★"]
    asked = await wa.tap(person, "★★★")
    assert "الدورة القادمة" in asked
    await wa.say(person, "ورشة على التجارة الإلكترونية")
    [row] = await _rows(app, person)
    assert (row.target_kind, row.target_key, row.rating, row.comment, row.language) == (
        "workshop", "marketing-1", 3, "ورشة على التجارة الإلكترونية", "ar")


async def test_the_exhibitor_survey_in_arabic_on_telegram(make_telegram: TelegramFactory) -> None:
    tg = await make_telegram()
    app = tg.app
    over = dt.datetime(2026, 12, 17, 9, 0, tzinfo=CASABLANCA)  # the morning after: still asked
    app.engine.clock = lambda: over
    await tg.say(KARIM, "/start", language_code="ar")
    await tg.tap(KARIM, "العربية")
    await _link(app, tg.say, KARIM, "coop-tifawin")
    assert await queue_cooperative_messages(app.sessions, over) == 1  # the digest is too late
    assert await OutboxWorker(app, clock=lambda: over).drain() == 1
    assert "أربعة أسئلة قصيرة" in (tg.fake.calls_of("sendMessage", KARIM)[-1].text or "")
    assert "الدورة القادمة" in await tg.tap(KARIM, "★★")
    assert "مبيعاتك" in await tg.tap(KARIM, "لا")
    await tg.tap(KARIM, "أفضل عدم الإجابة")
    assert "شكرًا على أجوبتك" in await tg.tap(KARIM, "تخطي")
    async with app.sessions() as session:
        [survey] = list(await session.scalars(select(ExhibitorSurvey)))
    assert (survey.satisfaction, survey.come_again, survey.sales_band, survey.comment,
            survey.language) == (2, False, "none", None, "ar")
