"""The web chat's inbox in a real browser (headless Chromium at 390x844): with the page open, a
reminder queued for the person, and a freed seat offered with its buttons, appear without a
reload, and the offer is accepted with a tap. Screenshots in French and Arabic go to
build/screenshots/ (the path is printed)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.worker import OutboxWorker
from tests.browser import POLL, SCREENSHOTS, answered, bot_bubbles, chromium, needs_chromium
from tests.conftest import Chat, ChatFactory
from tests.test_registration_conversation import small_workshop

CASABLANCA = ZoneInfo("Africa/Casablanca")
NOW = dt.datetime(2026, 12, 11, 10, 0, tzinfo=CASABLANCA)
EVENING = dt.datetime(2026, 12, 12, 18, 30, tzinfo=CASABLANCA)

pytestmark = needs_chromium


class Page:
    """One phone's browser on the web chat (blocking calls: run in a thread)."""

    def __init__(self, driver: Any) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.wait = WebDriverWait(driver, 60, poll_frequency=POLL)

    def bubbles(self) -> list[Any]:
        return bot_bubbles(self.driver)

    def texts(self) -> list[str]:
        return [bubble.text for bubble in self.bubbles()]

    def _answered(self, count: int) -> Callable[[Any], bool]:
        return answered(self.driver, count)

    def open(self, url: str) -> None:
        self.driver.get(url)
        self.wait.until(self._answered(0))

    def say(self, text: str) -> str:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        count = len(self.bubbles())
        box = self.driver.find_element(By.ID, "text")
        box.send_keys(text)
        box.send_keys(Keys.ENTER)
        self.wait.until(self._answered(count))
        return "\n".join(self.texts()[count:])

    def buttons(self) -> list[str]:
        from selenium.webdriver.common.by import By

        return [button.text for button in
                self.driver.find_elements(By.CSS_SELECTOR, ".choices button")]

    def tap(self, label: str) -> str:
        from selenium.webdriver.common.by import By

        count = len(self.bubbles())
        for button in self.driver.find_elements(By.CSS_SELECTOR, ".choices button"):
            if button.text == label:
                button.click()
                self.wait.until(self._answered(count))
                return "\n".join(self.texts()[count:])
        raise AssertionError(f"no button {label!r} in {self.buttons()}")

    def comes_in(self, words: str) -> str:
        """Wait, without reloading, until a bubble with `words` appears; its text."""
        self.wait.until(lambda _driver: any(words in text for text in self.texts()))
        return next(text for text in self.texts() if words in text)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / name
        self.driver.save_screenshot(str(path))
        print(f"screenshot: {path}")
        return path

    def console(self) -> list[dict[str, Any]]:
        return list(self.driver.get_log("browser"))


@contextmanager
def phone() -> Iterator[Page]:
    """A headless Chromium with a phone's screen and its own profile."""
    with chromium() as driver:
        yield Page(driver)


def _severe(console: list[dict[str, Any]]) -> list[str]:
    return [entry["message"] for entry in console
            if (entry["level"] == "SEVERE" and "favicon.ico" not in entry["message"])
            or "Content Security Policy" in entry["message"]]


async def test_a_reminder_and_an_offer_come_into_the_open_page(make_chat: ChatFactory) -> None:
    chat: Chat = await make_chat()
    chat.app.engine.clock = lambda: NOW
    await small_workshop(chat, capacity=1)
    base = f"http://{chat.client.host}:{chat.client.port}"
    loop = asyncio.get_running_loop()

    def send_due(at: dt.datetime) -> int:
        """The outbox worker's pass, run on the test's loop while the browsers wait."""
        worker = OutboxWorker(chat.app, clock=lambda: at.astimezone(dt.UTC))
        return asyncio.run_coroutine_threadsafe(worker.drain(), loop).result(60)

    def browse() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        with phone() as fr, phone() as ar:
            # Amina, in French, takes the only seat; Karim, in Arabic, waits.
            fr.open(base + "/")
            fr.tap("Français")
            fr.say("/start ws_marketing-1")
            seen["registered"] = fr.tap("S'inscrire")
            # The service worker that shows push notifications runs, for the whole page.
            seen["worker_scope"] = fr.driver.execute_async_script(
                "var done = arguments[0];"
                "navigator.serviceWorker.ready.then(function (r) { done(r.scope); });")
            ar.open(base + "/")
            ar.tap("العربية")
            ar.say("/start ws_marketing-1")
            seen["waiting"] = ar.tap("الانضمام إلى لائحة الانتظار")
            # The evening before, the reminder comes into Amina's open page.
            send_due(EVENING)
            seen["reminder"] = fr.comes_in("Rappel")
            seen["fr_shot"] = fr.screenshot("inbox-reminder-fr.png")
            # She gives her seat up: the offer comes into Karim's open page, with its buttons.
            fr.say("mes ateliers")
            fr.tap("Annuler\u202f: Techniques de marketing")
            send_due(NOW)
            seen["offer"] = ar.comes_in("مقعد")
            ar.wait.until(lambda _driver: "قبول المقعد" in ar.buttons())
            seen["buttons"] = ar.buttons()
            seen["ar_shot"] = ar.screenshot("inbox-offer-ar.png")
            seen["accepted"] = ar.tap("قبول المقعد")
            seen["console"] = fr.console() + ar.console()
        return seen

    seen = await asyncio.to_thread(browse)
    assert "ici, quand vous reviendrez sur cette page" in seen["registered"]
    assert "عند عودتك إلى هذه الصفحة" in seen["waiting"]
    assert "Techniques de marketing" in seen["reminder"]
    assert seen["worker_scope"] == base + "/"
    assert "تقنيات التسويق" in seen["offer"]
    assert "قبول المقعد" in seen["buttons"]
    assert "المقعد لك" in seen["accepted"]
    assert _severe(seen["console"]) == []
    assert seen["fr_shot"].exists() and seen["ar_shot"].exists()
