"""A short conversation on the web chat in a phone-sized Chromium, in French and in Arabic:
the programme, a workshop card, a registration and a stand search, each step photographed
(in build/screenshots, to look at) and read back as the page shows it."""

from __future__ import annotations

import asyncio
import datetime as dt
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.browser import POLL, SCREENSHOTS, answered, bot_bubbles, chromium, needs_chromium
from tests.conftest import ChatFactory

pytestmark = needs_chromium

NOW = dt.datetime(2026, 12, 11, 10, 0, tzinfo=ZoneInfo("Africa/Casablanca"))
STEPS = {
    "fr": {"language": "Français", "programme": "ateliers", "day": "dimanche 13 décembre",
           "register": "S'inscrire", "search": "argan"},
    "ar": {"language": "العربية", "programme": "الورشات", "day": "الأحد 13 دجنبر",
           "register": "التسجيل", "search": "أركان"},
}


def _converse(base: str, language: str, folder: Path) -> dict[str, Any]:
    """Hold the conversation in a browser speaking `language`; what each step showed, the
    page's direction and its widest content."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    steps = STEPS[language]
    shown: dict[str, Any] = {}
    with chromium(language) as driver:
        wait = WebDriverWait(driver, 60, poll_frequency=POLL)

        bubbles = partial(bot_bubbles, driver)

        waited = partial(answered, driver)

        def after(name: str, before: int) -> None:
            wait.until(waited(before))
            shown[name] = "\n".join(bubble.text for bubble in bubbles()[before:])
            shown[f"{name} buttons"] = [button.text for button in driver.find_elements(
                By.CSS_SELECTOR, ".choices button")]
            shown[f"{name} width"] = driver.execute_script(
                "return document.documentElement.scrollWidth")
            driver.save_screenshot(str(folder / f"language-{language}-{name}.png"))

        def say(name: str, text: str) -> None:
            before = len(bubbles())
            box = driver.find_element(By.ID, "text")
            box.send_keys(text)
            box.send_keys(Keys.ENTER)
            after(name, before)

        def tap(name: str, label: str) -> None:
            before = len(bubbles())
            buttons = driver.find_elements(By.CSS_SELECTOR, ".choices button")
            next(item for item in reversed(buttons) if label in item.text).click()
            after(name, before)

        driver.get(base + "/")
        wait.until(waited(0))
        tap("menu", steps["language"])
        say("programme", steps["programme"])
        tap("day", steps["day"])
        # Where the day's first time range's two ends are drawn: "10:00–12:00" reads left to
        # right inside Arabic too (not "12:00–10:00").
        shown["range"] = driver.execute_script("""
            function left(text) {
              var bubbles = document.querySelectorAll('.msg.bot');
              var walk = document.createTreeWalker(bubbles[bubbles.length - 1],
                                                   NodeFilter.SHOW_TEXT), node;
              while ((node = walk.nextNode())) {
                var at = node.data.indexOf(text);
                if (at >= 0) {
                  var range = document.createRange();
                  range.setStart(node, at); range.setEnd(node, at + text.length);
                  return range.getBoundingClientRect().left;
                }
              }
              return null;
            }
            return [left('10:00'), left('12:00')];""")
        say("card", "/start ws_marketing-1")
        tap("registered", steps["register"])
        say("search", steps["search"])
        shown["dir"] = driver.execute_script("return document.documentElement.dir")
    return shown


@pytest.mark.parametrize("language", ["fr", "ar"])
async def test_a_conversation_reads_right_on_a_phone(make_chat: ChatFactory,
                                                     language: str) -> None:
    chat = await make_chat()
    chat.app.engine.clock = lambda: NOW
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    base = f"http://{chat.client.host}:{chat.client.port}"
    shown = await asyncio.to_thread(_converse, base, language, SCREENSHOTS)
    print(f"screenshots in {SCREENSHOTS}")

    assert all(shown[f"{step} width"] <= 390 for step in
               ("menu", "programme", "day", "card", "registered", "search")), shown
    start, end = shown["range"]
    assert start is not None and end is not None and start < end, shown["range"]
    if language == "fr":
        assert shown["dir"] != "rtl"
        assert "Ateliers du dimanche 13 décembre\u202f:" in shown["day"]
        assert "Places restantes\u202f:" in shown["card"] and "Animé par" in shown["card"]
        assert "Inscription confirmée\u202f: «\u202fTechniques de marketing\u202f»" in (
            shown["registered"])
        assert "Coopérative" in shown["search"]
    else:
        assert shown["dir"] == "rtl"
        assert "ورشات يوم الأحد 13 دجنبر:" in shown["day"]
        assert "اللغة: العربية والفرنسية" in shown["card"]
        assert "تم تسجيلك في ورشة «تقنيات التسويق»" in shown["registered"]
        assert "تعاونية" in shown["search"]
        assert "الرواق ب" not in shown["search"] and "الرواق أ" not in shown["search"]
