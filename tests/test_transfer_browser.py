"""Continue on WhatsApp in a real browser (headless Chromium at 390x844): after registering, the
page offers the app; the link comes as a tappable wa.me address that fits the phone's width,
and the code it carries moves the registration to WhatsApp. Screenshots in French and Arabic
go to build/screenshots/ (the path is printed)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import unquote

from tests.browser import needs_chromium
from tests.conftest import ChatFactory
from tests.platforms import WhatsAppFactory
from tests.test_registration_conversation import NOW
from tests.test_transfer import holdings
from tests.test_webchat_inbox_browser import _severe, phone

WA_ID = "212600000088"

pytestmark = needs_chromium


def _link(page: Any) -> dict[str, Any]:
    """The app link of the last bubble: its address and its box on the screen."""
    from selenium.webdriver.common.by import By

    link = page.driver.find_elements(By.CSS_SELECTOR, ".msg.bot a.applink")[-1]
    return {"href": link.get_attribute("href"), "right": link.rect["x"] + link.rect["width"],
            "width": page.driver.execute_script("return document.documentElement.clientWidth")}


async def test_the_page_offers_whatsapp_after_registering_and_its_link_works(
        make_whatsapp: WhatsAppFactory, make_chat: ChatFactory) -> None:
    wa = await make_whatsapp()
    chat = await make_chat(app=wa.app)
    chat.app.engine.clock = lambda: NOW
    base = f"http://{chat.client.host}:{chat.client.port}"

    def browse() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        with phone() as fr, phone() as ar:
            fr.open(base + "/")
            fr.tap("Français")
            fr.say("/start ws_marketing-1")
            fr.tap("S'inscrire")
            seen["fr_buttons"] = fr.buttons()
            seen["fr_offer"] = fr.tap("Continuer sur WhatsApp")
            seen["fr_link"] = _link(fr)
            seen["fr_shot"] = fr.screenshot("transfer-whatsapp-fr.png")
            ar.open(base + "/")
            ar.tap("العربية")
            ar.say("القائمة")
            seen["ar_offer"] = ar.tap("المتابعة على واتساب")
            seen["ar_link"] = _link(ar)
            seen["ar_shot"] = ar.screenshot("transfer-whatsapp-ar.png")
            seen["console"] = fr.console() + ar.console()
        return seen

    seen = await asyncio.to_thread(browse)
    assert "Continuer sur WhatsApp" in seen["fr_buttons"]
    assert "Continuer sur WhatsApp" in seen["fr_offer"]
    assert "المتابعة على واتساب" in seen["ar_offer"]
    for name in ("fr_link", "ar_link"):
        link = seen[name]
        assert link["href"].startswith("https://wa.me/212500000000?text=LINK%20"), link
        assert link["right"] <= link["width"], link  # wrapped within the phone's width
    assert _severe(seen["console"]) == []
    assert seen["fr_shot"].exists() and seen["ar_shot"].exists()

    text = unquote(seen["fr_link"]["href"].partition("?text=")[2])
    answer = await wa.say(WA_ID, text)
    assert "1 atelier est maintenant ici." in answer
    assert await holdings(chat.app, "whatsapp", WA_ID) == ([("marketing-1", "confirmed")], [])
