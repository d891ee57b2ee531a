"""The map on a phone-sized Chromium (390x844): a stand's map and a room's map shown in the
chat, in French and Arabic; tapping the picture enlarges it full screen at least to its own
size, under the page's Content-Security-Policy. Screenshots go to the printed folder."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from tests.browser import POLL, answered, bot_bubbles, chromium, needs_chromium
from tests.conftest import ChatFactory

pytestmark = needs_chromium


@dataclass
class Enlarged:
    """What the page showed of a picture, in the chat and enlarged (CSS px)."""

    in_chat: float
    shown: float
    natural: float
    viewport: float
    closed: bool


@dataclass
class Visit:
    texts: dict[str, str] = field(default_factory=dict)
    pictures: dict[str, Enlarged] = field(default_factory=dict)
    console: list[dict[str, Any]] = field(default_factory=list)


def _browse(base: str, shots: Path) -> Visit:
    """Ask for a stand's map and a room's map in French and Arabic, enlarge them, and keep
    screenshots (blocking: run in a thread while the server answers)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    visit = Visit()
    with chromium() as driver:
        wait = WebDriverWait(driver, 60, poll_frequency=POLL)

        bubbles = partial(bot_bubbles, driver)

        waited = partial(answered, driver)

        def said(action: Any) -> str:
            count = len(bubbles())
            action()
            wait.until(waited(count))
            return "\n".join(bubble.text for bubble in bubbles()[count:])

        def say(text: str) -> str:
            def type_it() -> None:
                box = driver.find_element(By.ID, "text")
                box.send_keys(text)
                box.send_keys(Keys.ENTER)
            return said(type_it)

        def tap(label: str) -> str:
            button = next(item for item in driver.find_elements(
                By.CSS_SELECTOR, ".choices button") if item.text.strip() == label)
            return said(button.click)

        def picture(name: str) -> None:
            """The last picture of the chat: seen, enlarged, closed; screenshots."""
            wait.until(lambda _driver: driver.execute_script(
                "var i = document.querySelectorAll('.msg figure img');"
                "i = i[i.length - 1]; return !!i && i.complete && i.naturalWidth > 0;"))
            opener = driver.find_elements(By.CSS_SELECTOR, ".msg .enlarge")[-1]
            driver.execute_script("arguments[0].scrollIntoView({block: 'end'})", opener)
            in_chat = float(driver.execute_script(
                "return arguments[0].getBoundingClientRect().width", opener))
            driver.save_screenshot(str(shots / f"{name}-chat.png"))
            opener.click()
            wait.until(lambda _driver: driver.execute_script(
                "var i = document.querySelector('.viewer img');"
                "return !!i && i.complete && i.naturalWidth > 0;"))
            shown, natural, viewport = driver.execute_script(
                "var i = document.querySelector('.viewer img');"
                "return [i.getBoundingClientRect().width, i.naturalWidth, innerWidth];")
            driver.save_screenshot(str(shots / f"{name}-enlarged.png"))
            driver.find_element(By.CSS_SELECTOR, ".viewer-close").click()
            closed = not driver.find_elements(By.CSS_SELECTOR, ".viewer")
            visit.pictures[name] = Enlarged(in_chat, float(shown), float(natural),
                                            float(viewport), closed)

        driver.get(f"{base}/")
        wait.until(waited(0))
        say("français")
        say("A12")
        visit.texts["fr-stand"] = tap("Plan")
        picture("fr-stand")
        visit.texts["fr-room"] = say("où est la salle 2 ?")
        picture("fr-room")
        say("العربية")
        say("A12")
        visit.texts["ar-stand"] = tap("الخريطة")
        picture("ar-stand")
        visit.texts["ar-room"] = say("أين القاعة 1؟")
        picture("ar-room")
        visit.console = list(driver.get_log("browser"))
    return visit


async def test_the_map_is_legible_and_enlarges_on_a_phone(make_chat: ChatFactory,
                                                         tmp_path: Path) -> None:
    chat = await make_chat()
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"screenshots: {shots}")
    visit = await asyncio.to_thread(_browse, f"http://{chat.client.host}:{chat.client.port}",
                                    shots)
    assert "Le stand A12 est en rouge" in visit.texts["fr-stand"]
    assert "Salle 2" in visit.texts["fr-room"]
    assert "الرواق \u2068A12\u2069 ملون بالأحمر" in visit.texts["ar-stand"]
    assert "القاعة 1" in visit.texts["ar-room"]
    assert set(visit.pictures) == {"fr-stand", "fr-room", "ar-stand", "ar-room"}
    for name, seen in visit.pictures.items():
        # In the chat the picture is narrower than the phone; enlarged, it is shown at its
        # own size at least (or fills the screen), and it closes.
        assert seen.in_chat < seen.viewport, (name, seen)
        assert seen.shown >= min(seen.natural, seen.viewport), (name, seen)
        assert seen.shown > seen.in_chat and seen.closed, (name, seen)
    for name in visit.pictures:
        assert (shots / f"{name}-chat.png").stat().st_size > 0
    violations = [entry["message"] for entry in visit.console
                  if "Content Security Policy" in entry["message"]
                  or "Refused to" in entry["message"]]
    assert violations == []
    errors = [entry["message"] for entry in visit.console if entry["level"] == "SEVERE"
              and "favicon.ico" not in entry["message"]]
    assert errors == []
