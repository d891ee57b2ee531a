"""A poster's code scanned on a phone without the apps, in a real browser (headless Chromium at
390x844): the stand's card comes in the browser's language with its own buttons, and again in
Arabic after tapping العربية under a French card. Screenshots of each step are written to
build/screenshots/ (not committed) and their folder printed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from bot.i18n import FSI, PDI
from tests.browser import POLL, SCREENSHOTS, answered, bot_bubbles, chromium, needs_chromium
from tests.conftest import ChatFactory

pytestmark = needs_chromium


@dataclass
class Shown:
    """One answer as the page shows it: each bot bubble's text with the buttons under it."""

    direction: str = ""
    bubbles: list[tuple[str, list[str]]] = field(default_factory=list)

    def buttons_under(self, text: str) -> list[str]:
        for bubble, buttons in self.bubbles:
            if text in bubble:
                return buttons
        raise AssertionError(f"no bubble with {text!r} in {self.bubbles}")


@contextmanager
def phone(language: str) -> Iterator[Any]:
    """A headless Chromium at a phone's size whose user speaks `language`."""
    with chromium(language) as driver:
        yield driver


def _shown(driver: Any, since: int) -> Shown:
    """The bot's bubbles after the first `since`, each with the buttons right under it."""
    found = driver.execute_script("""
        var out = [], seen = 0, nodes = document.getElementById('log').children;
        for (var i = 0; i < nodes.length; i++) {
          var n = nodes[i];
          if (n.classList.contains('msg') && n.classList.contains('bot')) {
            seen++;
            if (seen > arguments[0]) out.push([n.innerText, []]);
          } else if (n.classList.contains('choices') && out.length) {
            n.querySelectorAll('button').forEach(function (b) {
              out[out.length - 1][1].push(b.innerText); });
          }
        }
        return out;""", since)
    return Shown(driver.execute_script("return document.documentElement.dir"),
                 [(str(text), [str(label) for label in labels]) for text, labels in found])


def _visit(base: str, language: str, tap: str | None, folder: Path) -> list[Shown]:
    """Open `/?start=stand_A12` in a browser speaking `language`; screenshot; tap `tap`."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    steps: list[Shown] = []
    with phone(language) as driver:
        wait = WebDriverWait(driver, 60, poll_frequency=POLL)

        def count() -> int:
            return len(bot_bubbles(driver))

        waited = partial(answered, driver)

        driver.get(f"{base}/?start=stand_A12")
        wait.until(waited(0))
        steps.append(_shown(driver, 0))
        driver.save_screenshot(str(folder / f"first-contact-{language}.png"))
        if tap is not None:
            before = count()
            button = next(item for item in driver.find_elements(By.CSS_SELECTOR,
                                                                 ".choices button")
                          if item.text == tap)
            button.click()
            wait.until(waited(before))
            steps.append(_shown(driver, before))
            driver.save_screenshot(str(folder / f"first-contact-{language}-then-tapped.png"))
    return steps


async def test_a_poster_code_on_a_phone_shows_the_card_with_its_buttons_in_arabic(
        make_chat: ChatFactory) -> None:
    chat = await make_chat()
    base = f"http://{chat.client.host}:{chat.client.port}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {SCREENSHOTS}")

    [arabic] = await asyncio.to_thread(_visit, base, "ar", None, SCREENSHOTS)
    french, switched = await asyncio.to_thread(_visit, base, "fr", "العربية", SCREENSHOTS)

    card = f"الرواق {FSI}A12{PDI}"
    assert arabic.direction == "rtl"
    assert "أضف إلى قائمتي" in arabic.buttons_under(card)
    assert arabic.bubbles[-1][1] == ["العربية", "Français", "English"]

    assert french.direction == "ltr"
    assert "Ajouter à ma liste" in french.buttons_under("Stand A12")
    assert french.bubbles[-1][1] == ["العربية", "Français", "English"]

    assert switched.direction == "rtl"
    assert "تم اختيار اللغة: العربية." in switched.bubbles[0][0]
    assert "أضف إلى قائمتي" in switched.buttons_under(card)
