"""A cooperative member asks for their own stand ("mon stand", "رواقي", "stand dyali", "my
stand") and sees its day so far; a wrong code is told so; `coop-codes` never writes a link to
nowhere: web chat links with TADAMON_PUBLIC_URL, exit 2 without any channel."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import update

from bot.app import sample_catalogue
from storage.models import Exhibitor
from tests.conftest import Chat, ChatFactory, cli_env, run_tadamon
from tests.test_coop_codes import CARPETS, NOT_VALID_AR, NOT_VALID_FR, code_of

# Sunday 13 December 2026, 15:00 at the fair: its first day.
NOW = dt.datetime(2026, 12, 13, 15, 0, tzinfo=ZoneInfo("Africa/Casablanca"))
HOW_TO_LINK_FR = "envoyez le mot coop"


async def french(chat: Chat, user: str) -> None:
    await chat(user, "bonjour")
    await chat.tap(user, "Français")


async def test_a_member_sees_their_stands_day_on_demand(chat: Chat) -> None:
    chat.app.engine.clock = lambda: NOW
    code = await code_of(chat.app)
    # a visitor opens the carpets' stand card and saves it
    await french(chat, "sara")
    card = await chat("sara", "A18")
    assert "A18" in card.text
    saved = next(choice["id"] for choice in card.choices if choice["id"].startswith("sv:"))
    await chat.post({"session": chat.session("sara"), "choice": saved})

    # before linking, "mon stand" says how to link
    await french(chat, "youssef")
    assert HOW_TO_LINK_FR in (await chat("youssef", "mon stand")).text
    await chat("youssef", f"coop {code}")
    for text in ("mon stand", "ma coopérative", "stand dyali", "my stand"):
        answer = await chat("youssef", text)
        assert answer.body["intent"] == "cooperative", text
        lines = answer.text.splitlines()
        assert "A18" in lines[0] and "dimanche 13 décembre" in lines[0], (text, lines)
        assert "vue 1\u00a0fois" in answer.text.replace(" fois", "\u00a0fois"), answer.text
        assert "1 visiteur" in answer.text.replace("\u00a0", " "), answer.text
        assert HOW_TO_LINK_FR not in answer.text

    await chat("karim", "السلام عليكم")
    await chat.tap("karim", "العربية")
    await chat("karim", f"تعاونية {code}")
    answer = await chat("karim", "رواقي")
    assert answer.body["intent"] == "cooperative"
    assert "A18" in answer.text.splitlines()[0] and "دجنبر" in answer.text.splitlines()[0]
    assert "أرسل كلمة" not in answer.text


async def test_coop_12345_is_not_a_valid_code(chat: Chat) -> None:
    await french(chat, "amina")
    answer = await chat("amina", "COOP 12345")
    assert NOT_VALID_FR in answer.text and "stand" not in answer.text.lower()
    await chat("karim", "السلام عليكم")
    await chat.tap("karim", "العربية")
    assert NOT_VALID_AR in (await chat("karim", "COOP 12345")).text


async def test_coop_codes_without_a_channel_exit_2(tmp_path: Path) -> None:
    env = cli_env(TADAMON_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/coops.db")
    assert (await run_tadamon("import", str(sample_catalogue()), env=env, cwd=tmp_path))[0] == 0
    code, out, err = await run_tadamon("coop-codes", env=env, cwd=tmp_path)
    assert (code, out) == (2, "")
    assert err == ("tadamon: coop-codes need a channel to link to: set TADAMON_TELEGRAM_TOKEN, "
                   "TADAMON_WHATSAPP_TOKEN or TADAMON_PUBLIC_URL (the web chat)\n")


async def test_coop_codes_give_web_chat_links_that_link_a_member(
    tmp_path: Path, make_chat: ChatFactory,
) -> None:
    chat = await make_chat()
    env = cli_env(TADAMON_DATABASE_URL=chat.app.settings.database_url,
                  TADAMON_PUBLIC_URL="https://salon.example.ma/")
    code, out, err = await run_tadamon("coop-codes", env=env, cwd=tmp_path)
    assert code == 0, err
    assert "<bot>" not in out and "<number>" not in out
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    assert list(rows[0]) == ["exhibitor_id", "name_fr", "name_ar", "stand", "code",
                             "telegram_link", "whatsapp_link", "web_link"]
    carpets = next(row for row in rows if row["exhibitor_id"] == CARPETS)
    assert (carpets["telegram_link"], carpets["whatsapp_link"]) == ("", "")
    assert carpets["web_link"] == f"https://salon.example.ma/?start=coop_{carpets['code']}"

    # what the web chat page sends for `/?start=coop_CODE`
    await chat.new_session("youssef")
    payload = carpets["web_link"].partition("?start=")[2]
    linked = await chat.post({"session": chat.session("youssef"), "start": payload})
    assert "Coopérative Al Wafae du tapis" in linked.text and "A18" in linked.text


async def test_a_member_whose_cooperative_has_no_stand_is_told_so(chat: Chat) -> None:
    code = await code_of(chat.app)
    async with chat.app.sessions() as session, session.begin():
        await session.execute(update(Exhibitor).where(Exhibitor.key == CARPETS)
                              .values(stand_id=None))
    await french(chat, "youssef")
    await chat("youssef", f"coop {code}")
    answer = await chat("youssef", "mon stand")
    assert "n'a pas de stand à ce salon" in answer.text
    assert HOW_TO_LINK_FR not in answer.text
    await chat("karim", "السلام عليكم")
    await chat.tap("karim", "العربية")
    await chat("karim", f"تعاونية {code}")
    assert "ليس لها رواق في هذا المعرض" in (await chat("karim", "رواقي")).text
