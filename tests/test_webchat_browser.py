"""The web chat page in a real browser (headless Chromium, phone-sized): it gets its session
from the server, works under its Content-Security-Policy, and gets a new session when the
server no longer knows its own."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from storage.websessions import public_id
from tests.browser import POLL, answered, bot_bubbles, chromium, needs_chromium
from tests.conftest import ChatFactory

SCREENSHOT = Path("/tmp/webchat.png")

pytestmark = needs_chromium


@dataclass
class Visit:
    """What the browser showed and logged."""

    first: str = ""
    reply: str = ""
    after_401: str = ""
    tokens: list[str] = field(default_factory=list)
    console: list[dict[str, Any]] = field(default_factory=list)


def _browse(base: str) -> Visit:
    """Open the page at phone size, write to the bot, then come back with a session the
    server does not know (blocking: run in a thread while the server answers)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    visit = Visit()
    with chromium("fr") as driver:
        wait = WebDriverWait(driver, 60, poll_frequency=POLL)

        bubbles = partial(bot_bubbles, driver)

        waited = partial(answered, driver)

        def say(text: str) -> str:
            count = len(bubbles())
            box = driver.find_element(By.ID, "text")
            box.send_keys(text)
            box.send_keys(Keys.ENTER)
            wait.until(waited(count))
            return "\n".join(bubble.text for bubble in bubbles()[count:])

        def token() -> str:
            return str(driver.execute_script(
                "return localStorage.getItem('tadamon.session')"))

        driver.get(f"{base}/?start=stand_A12")
        wait.until(waited(0))
        visit.first = "\n".join(bubble.text for bubble in bubbles())
        visit.tokens.append(token())
        visit.reply = say("bonjour")
        driver.save_screenshot(str(SCREENSHOT))
        # The server no longer knows the kept session: the page gets a new one, resends.
        driver.execute_script("localStorage.setItem('tadamon.session', 'A'.repeat(43))")
        driver.refresh()
        wait.until(lambda _driver: len(bubbles()) >= 2)
        visit.after_401 = say("menu")
        visit.tokens.append(token())
        visit.console = list(driver.get_log("browser"))
    return visit


async def test_the_page_works_in_a_browser_under_its_policy(make_chat: ChatFactory) -> None:
    chat = await make_chat()
    visit = await asyncio.to_thread(_browse, f"http://{chat.client.host}:{chat.client.port}")
    assert "Stand A12" in visit.first
    assert "Bienvenue" in visit.reply or "Bonjour" in visit.reply, visit.reply
    # a new session is a new person to the server: welcomed, then shown the menu
    assert "Bienvenue" in visit.after_401 and "Que souhaitez-vous faire" in visit.after_401
    first, second = visit.tokens
    assert len(first) == 43 and len(second) == 43 and first != second
    for token in (first, second):
        assert await chat.app.engine.contacts.get("web", public_id(token)) is not None
    violations = [entry["message"] for entry in visit.console
                  if "Content Security Policy" in entry["message"]
                  or "Refused to" in entry["message"]]
    assert violations == []
    errors = [entry["message"] for entry in visit.console if entry["level"] == "SEVERE"
              and "favicon.ico" not in entry["message"]
              and "401" not in entry["message"]]  # the stale session, answered as planned
    assert errors == []
