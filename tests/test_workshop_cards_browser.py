"""A workshop card and its calendar file in a real browser (headless Chromium at 390x844), in
French and Arabic: the file comes with its caption under the link. Screenshots go to
build/screenshots/ (the path is printed)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from handlers.messages import _
from tests.browser import needs_chromium
from tests.conftest import Chat, ChatFactory
from tests.test_webchat_inbox_browser import _severe, phone

NOW = dt.datetime(2026, 12, 11, 10, 0, tzinfo=ZoneInfo("Africa/Casablanca"))

pytestmark = needs_chromium


async def test_the_calendar_file_shows_its_caption_on_the_page(make_chat: ChatFactory) -> None:
    chat: Chat = await make_chat()
    chat.app.engine.clock = lambda: NOW
    base = f"http://{chat.client.host}:{chat.client.port}"
    caption = _("Add it to your calendar.")
    captions = {language: chat.app.engine.renderer.text(caption, language)
                for language in ("fr", "ar")}

    def browse() -> dict[str, Any]:
        from selenium.webdriver.common.by import By

        seen: dict[str, Any] = {}
        with phone() as fr, phone() as ar:
            for page, language, choose, register in ((fr, "fr", "Français", "S'inscrire"),
                                                      (ar, "ar", "العربية", "التسجيل")):
                page.open(base + "/")
                page.tap(choose)
                seen[f"card_{language}"] = page.say("/start ws_marketing-1")
                page.screenshot(f"workshop-card-{language}.png")
                page.tap(register)
                files = page.driver.find_elements(By.CSS_SELECTOR, ".msg.bot .doc")
                seen[f"file_{language}"] = [
                    (item.find_element(By.CSS_SELECTOR, "a.att").text,
                     item.find_element(By.CSS_SELECTOR, ".cap").text) for item in files]
                seen[f"shot_{language}"] = page.screenshot(f"workshop-calendar-{language}.png")
            seen["console"] = fr.console() + ar.console()
        return seen

    seen = await asyncio.to_thread(browse)
    assert "Animé par" in seen["card_fr"] and "المؤطر" in seen["card_ar"]
    for language in ("fr", "ar"):
        assert seen[f"file_{language}"] == [("📄 workshop.ics", captions[language])], seen
        assert seen[f"shot_{language}"].exists()
    assert _severe(seen["console"]) == []
