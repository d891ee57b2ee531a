"""A real browser for the page tests: Debian's headless Chromium with a phone's screen (390x844,
twice the pixels) and a profile of its own."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "build" / "screenshots"
POLL = 0.05
"""Seconds between two looks of a WebDriverWait (Selenium's default, half a second, is mostly
spent waiting for a page that answered long before)."""

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists() or not CHROMEDRIVER.exists(),
    reason="needs Debian's chromium and chromium-driver (tests/ensure-servers.sh installs them)")


@contextmanager
def chromium(language: str | None = None) -> Iterator[Any]:
    """A headless Chromium at a phone's size, its console kept; its user speaks `language`
    when given (the browser's language and its Accept-Language)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="tadamon-chromium-") as profile:
        options = Options()
        options.binary_location = str(CHROMIUM)
        for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update",
                         "--disable-sync", "--disable-dev-shm-usage",
                         f"--user-data-dir={profile}", "--window-size=390,844",
                         *((f"--lang={language}",) if language else ())):
            options.add_argument(argument)
        if language:
            options.add_experimental_option("prefs", {"intl.accept_languages": language})
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        try:
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
            if language:
                agent = driver.execute_script("return navigator.userAgent")
                driver.execute_cdp_cmd("Network.setUserAgentOverride", {
                    "userAgent": agent, "acceptLanguage": language})
            yield driver
        finally:
            driver.quit()


def bot_bubbles(driver: Any) -> list[Any]:
    """The bot's message bubbles on the web chat page, oldest first."""
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, ".msg.bot"))


def answered(driver: Any, before: int) -> Callable[[Any], bool]:
    """A wait condition: the bot said more than `before` bubbles and stopped typing."""
    from selenium.webdriver.common.by import By

    return lambda _driver: (len(bot_bubbles(driver)) > before and driver.find_element(
        By.ID, "typing").get_attribute("hidden") is not None)


PHONE = (390, 844)
DESKTOP = (1280, 800)
"""The two screens the organizer console is looked at on (CSS px): a phone and a laptop."""


def screen(driver: Any, size: tuple[int, int]) -> None:
    """Show the page on a screen of `size` (CSS px): a phone's (touch, twice the pixels) when
    narrower than 600 px, a laptop's otherwise. The page is laid out again, not reloaded."""
    width, height = size
    phone = width < 600
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 2 if phone else 1,
        "mobile": phone})
    # as on a phone or a touchpad: no scroll bar taking the page's width (headless draws it
    # black on a screenshot)
    driver.execute_cdp_cmd("Emulation.setScrollbarsHidden", {"hidden": True})


def full_screenshot(driver: Any, path: Path, tallest: int = 6000) -> None:
    """The whole page as a PNG at `path`, below the fold too (up to `tallest` CSS px)."""
    import base64

    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size, seen = metrics["cssContentSize"], metrics["cssVisualViewport"]
    if size["height"] <= seen["clientHeight"]:
        # what fits the screen is taken as it is (a clip beyond the screen of a right-to-left
        # page that fits comes out shifted sideways)
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    else:
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"],
                     "height": min(size["height"], tallest), "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))


def console_errors(driver: Any) -> list[str]:
    """The browser console's errors (SEVERE: a Content-Security-Policy violation, a script
    error, a failed load) since the last call; but the site's icon, which the browser asks for
    on its own, is not one."""
    return [str(entry.get("message", "")) for entry in driver.get_log("browser")
            if entry.get("level") == "SEVERE"
            and not str(entry.get("message", "")).split(" ", 1)[0].endswith("/favicon.ico")]
