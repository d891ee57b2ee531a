"""The organizer console in a real Chromium, in French and in Arabic, against a served App whose
Telegram and WhatsApp channels talk to the fake platforms and whose outbox worker sends:
signing in, Today, the audit log, the language switch, a workshop's check-in (from its row and
by code), a broadcast composed, previewed, sent and followed to 100 % by server-sent events,
a catalogue checked (a bad sheet, then a good file) and applied, the exports, signing out.

Every page is photographed on a laptop (1280x800) and on a phone (390x844) into
build/screenshots/console/, and each time the page must not be wider than the phone, must be
right to left in Arabic, and the browser console must show no error (a Content-Security-Policy
violation is one). One browser per language; a step that fails is reported with the others at
the end, so one page's fault does not hide the next page's."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import traceback
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select, update

from bot.app import App
from bot.channels.telegram import TelegramChannel
from bot.channels.whatsapp import WhatsAppChannel
from bot.http import make_web_app
from bot.worker import OutboxWorker
from storage.models import Contact, Registration, RegistrationStatus, Workshop
from tests.browser import (
    DESKTOP,
    PHONE,
    POLL,
    SCREENSHOTS,
    chromium,
    console_errors,
    full_screenshot,
    needs_chromium,
    screen,
)
from tests.conftest import AppFactory
from tests.console import PASSWORD, add_account
from tests.fakes.telegram import FakeTelegram
from tests.fakes.whatsapp import FakeWhatsApp
from tests.platforms import TelegramChat, WhatsAppChat
from tests.servers import free_port

pytestmark = needs_chromium

SHOTS = SCREENSHOTS / "console"
SAMPLE = Path(__file__).resolve().parent.parent / "bot" / "data" / "sample-fair.yaml"
ORGANIZER = "org@fair.ma"
TEXTS = {"fr": "Le salon ferme à 18:00 ce soir. Merci de votre visite\u202f!",
         "ar": "يغلق المعرض على الساعة 18:00 هذا المساء. شكرا على زيارتكم!"}
# People who wrote to the bot, (channel, user id, language): the three on Telegram ask for a
# seat at the marketing workshop in the chat, which has two: the third waits.
AMINA, KARIM, HICHAM = 7001, 7002, 7003
FATIMA, YOUSSEF = "212600000101", "212600000102"
PEOPLE = [("telegram", str(AMINA), "fr"), ("telegram", str(KARIM), "ar"),
          ("telegram", str(HICHAM), "ar"), ("whatsapp", FATIMA, "fr"),
          ("whatsapp", YOUSSEF, "ar")]
WORKSHOP = "marketing-1"
SEATS = 2
EXPORTS = ("registrations", "feedback", "contacts", "deliveries", "intents", "questions")
WORDS = {  # what the pages say that the test reads, in the page's language
    "fr": {"signed in": "connexion"},
    "ar": {"signed in": "تسجيل الدخول"},
}
ARABIC_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩", "0123456789")


# ---------------------------------------------------------------------------- the served fair


@dataclass
class Fair:
    """The App served on 127.0.0.1 with both platforms faked; its worker starts on demand
    (`start_worker`, from the browser's thread through `call`)."""

    app: App
    base: str
    loop: asyncio.AbstractEventLoop
    telegram: TelegramChat
    whatsapp: WhatsAppChat
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    worker: asyncio.Task[None] | None = None

    def call(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        """Run `coroutine` on the server's event loop from the browser's thread."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def start_worker(self) -> None:
        if self.worker is None:
            self.worker = asyncio.create_task(OutboxWorker(self.app).run(self.stop))

    async def registrations(self, status: RegistrationStatus = RegistrationStatus.CONFIRMED
                            ) -> dict[str, tuple[int, str | None, bool]]:
        """The marketing workshop's registrations of a status: Telegram user id -> (id,
        check-in code, checked in)."""
        async with self.app.sessions() as session:
            rows = (await session.execute(
                select(Contact.user_id, Registration.id, Registration.checkin_code,
                       Registration.checked_in_at)
                .join(Contact, Contact.id == Registration.contact_id)
                .join(Workshop, Workshop.id == Registration.workshop_id)
                .where(Workshop.key == WORKSHOP, Registration.status == status))).all()
        return {user: (ident, code, at is not None) for user, ident, code, at in rows}

    async def languages(self) -> dict[tuple[str, str], str]:
        async with self.app.sessions() as session:
            rows = (await session.execute(
                select(Contact.channel, Contact.user_id, Contact.language))).all()
        return {(str(channel), user): language for channel, user, language in rows}

    async def capacity(self) -> int | None:
        async with self.app.sessions() as session:
            return await session.scalar(select(Workshop.capacity)
                                        .where(Workshop.key == WORKSHOP))


@pytest.fixture
async def fair(make_app: AppFactory) -> AsyncIterator[Fair]:
    """The sample fair served over HTTP with Telegram (polling) and WhatsApp (webhooks) on
    the fakes, an organizer account, and four people who wrote to the bot; two of them
    registered for the marketing workshop in the chat."""
    async with FakeTelegram() as telegram, FakeWhatsApp() as whatsapp:
        app = await make_app(
            telegram_token=telegram.token, telegram_api_base=telegram.base_url,
            telegram_rate=1000, whatsapp_token=whatsapp.token,
            whatsapp_phone_number_id=whatsapp.phone_number_id,
            whatsapp_app_secret=whatsapp.app_secret,
            whatsapp_verify_token=whatsapp.verify_token, whatsapp_api_base=whatsapp.base_url,
            whatsapp_rate=1000, quiet_hours=None, web_sessions_per_minute=100_000)
        server = TestServer(make_web_app(app), port=free_port())
        await server.start_server()
        await app.start_channels()
        channels = {type(channel): channel for channel in app.channels}
        tg_channel = channels[TelegramChannel]
        wa_channel = channels[WhatsAppChannel]
        assert isinstance(tg_channel, TelegramChannel)
        assert isinstance(wa_channel, WhatsAppChannel)
        await telegram.wait_for("getUpdates")
        base = f"http://127.0.0.1:{server.port}"
        served = Fair(app, base, asyncio.get_running_loop(),
                      TelegramChat(telegram, app, tg_channel, base),
                      WhatsAppChat(whatsapp, app, wa_channel, f"{base}/whatsapp/webhook"))
        try:
            await add_account(app, ORGANIZER)
            await people(served)
            yield served
        finally:
            served.stop.set()
            if served.worker is not None:
                await served.worker
            await app.stop_channels()
            await server.close()


async def people(fair: Fair) -> None:
    """Five people write to the bot, in French, Arabic and Darija; the three on Telegram ask
    for one of the marketing workshop's two seats."""
    tg, wa = fair.telegram, fair.whatsapp
    async with fair.app.sessions() as session, session.begin():
        await session.execute(update(Workshop).where(Workshop.key == WORKSHOP)
                              .values(capacity=SEATS))
    await fair.app.state.bump_catalogue_version()
    await tg.say(AMINA, "Bonjour, je voudrais m'inscrire à un atelier", language_code="fr")
    await tg.say(AMINA, f"/start ws_{WORKSHOP}", language_code="fr")
    assert "Inscription confirmée" in await tg.tap(AMINA, "S'inscrire")
    await tg.say(KARIM, "السلام عليكم، بغيت نتسجل فشي ورشة", language_code="ar")
    await tg.say(KARIM, f"/start ws_{WORKSHOP}", language_code="ar")
    assert "تم تسجيلك" in await tg.tap(KARIM, "التسجيل")
    await tg.say(HICHAM, "سلام، واش باقي بلاصة فورشة التسويق؟", language_code="ar")
    await tg.say(HICHAM, f"/start ws_{WORKSHOP}", language_code="ar")
    assert "لائحة الانتظار" in await tg.tap(HICHAM, "الانضمام إلى لائحة الانتظار")
    await wa.say(FATIMA, "Bonjour, où se trouve le stand A12 ?")
    await wa.say(YOUSSEF, "فين كاين الرواق A12؟")
    languages = await fair.languages()
    assert {(channel, user): languages.get((channel, user))
            for channel, user, _language in PEOPLE} == {
        (channel, user): language for channel, user, language in PEOPLE}


# ---------------------------------------------------------------------------- the browser


@dataclass
class Visit:
    """What one browser saw: the steps that failed, and the screenshots taken."""

    language: str
    failures: list[str] = field(default_factory=list)
    shots: list[Path] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)


def files(folder: Path) -> dict[str, Path]:
    """A catalogue sheet with an error on its second line, and the sample fair with one
    change (the marketing workshop seats 60)."""
    bad = folder / "workshops.csv"
    bad.write_text("id,title_fr,title_ar,room_fr,room_ar,starts,ends,capacity,language\n"
                   "ws-new,Atelier d'essai,ورشة تجريبية,Salle 1,القاعة 1,2026-12-13T10:00,"
                   "2026-12-13T12:00,beaucoup,fr\n", encoding="utf-8")
    good = folder / "fair.yaml"
    text = SAMPLE.read_text(encoding="utf-8")
    start = text.index(f"  - id: {WORKSHOP}\n")
    at = text.index("    capacity: 50\n", start)
    good.write_text(text[:at] + "    capacity: 60\n" + text[at + len("    capacity: 50\n"):],
                    encoding="utf-8")
    return {"bad": bad, "good": good}


def _browse(fair: Fair, language: str, upload: dict[str, Path]) -> Visit:
    """Go through every page of the console in a browser speaking `language` (blocking: run
    in a thread while the server answers)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webelement import WebElement
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import Select, WebDriverWait

    visit = Visit(language)
    base = fair.base
    rtl = language == "ar"

    with chromium(language) as driver:
        screen(driver, DESKTOP)
        wait = WebDriverWait(driver, 20, poll_frequency=POLL)

        def find(css: str) -> WebElement:
            return driver.find_element(By.CSS_SELECTOR, css)

        def all_of(css: str) -> list[WebElement]:
            return list(driver.find_elements(By.CSS_SELECTOR, css))

        def shown(css: str) -> WebElement:
            wait.until(lambda _driver: all_of(css))
            return find(css)

        def shoot(name: str) -> None:
            """Photograph the page on both screens; check its width, direction and console."""
            for size in (DESKTOP, PHONE):
                screen(driver, size)
                path = SHOTS / f"{language}-{name}-{size[0]}x{size[1]}.png"
                full_screenshot(driver, path)
                visit.shots.append(path)
                direction = driver.execute_script("return document.documentElement.dir")
                if (direction == "rtl") != rtl:
                    visit.failures.append(f"{name}: dir={direction!r} in {language}")
                if size == PHONE:
                    wide, inner = driver.execute_script(
                        "return [document.documentElement.scrollWidth, window.innerWidth]")
                    if wide > min(inner, PHONE[0]) + 1:
                        visit.failures.append(
                            f"{name}: {wide} px wide on a {PHONE[0]} px phone ({path.name})")
            screen(driver, DESKTOP)
            # The page's own status (400 for a sheet with an error) is the server's answer,
            # shown to the organizer; a failure of anything it loads, or a refusal, is not.
            answer = f"{driver.current_url} - Failed to load resource: "
            errors = [error for error in console_errors(driver) if not error.startswith(answer)]
            if errors:
                visit.failures.append(f"{name}: browser console errors: {errors}")

        def fetched(url: str) -> tuple[int, str]:
            """What the browser gets from `url` with its cookies (a download, read as text)."""
            status, text = driver.execute_async_script(
                "var done = arguments[1];"
                "fetch(arguments[0]).then(function (r) { return r.text().then("
                "function (t) { done([r.status, t]); }); })"
                ".catch(function (e) { done([0, String(e)]); });", url)
            return int(status), str(text)

        def submit(button: WebElement) -> None:
            """Press a form's button; when the form asks first (data-confirm, by the console's
            script), the question is the form's and the answer yes."""
            question = driver.execute_script(
                "return arguments[0].form ? arguments[0].form.dataset.confirm || '' : ''", button)
            button.click()
            if question:
                wait.until(expected_conditions.alert_is_present())
                alert = driver.switch_to.alert
                assert alert.text == question, (alert.text, question)
                alert.accept()

        def step(name: str, action: Callable[[], None]) -> bool:
            began = time.monotonic()
            try:
                action()
            except Exception as exc:  # every failure is reported at the end
                said = str(getattr(exc, "msg", None) or exc).strip().splitlines()
                lines = [f"line {frame.lineno}: {frame.line}" for frame
                         in traceback.extract_tb(exc.__traceback__)
                         if frame.filename == __file__][-1:]
                visit.failures.append(f"{name}: {type(exc).__name__}: "
                                      f"{said[0] if said else ''} ({', '.join(lines)})")
                with contextlib.suppress(Exception):  # this step's console, not the next's
                    visit.failures.extend(f"{name}: browser console: {error}"
                                          for error in console_errors(driver))
                with contextlib.suppress(Exception):  # the failure is already written
                    path = SHOTS / f"{language}-FAILED-{name}.png"
                    full_screenshot(driver, path)
                    visit.failures.append(f"{name}: the page then: {driver.current_url} "
                                          f"({path.name})")
                return False
            visit.passed.append(f"{name} {time.monotonic() - began:.1f} s")
            return True

        # ------------------------------------------------------------------ signing in
        def sign_in() -> None:
            driver.get(base + "/admin/")
            form = find("form#login")
            # The watch on the console sees what the page's policy refuses: an inline script.
            driver.execute_script("var s = document.createElement('script');"
                                  "s.textContent = 'document.title = 1';"
                                  "document.body.appendChild(s);")
            refused = console_errors(driver)
            assert any("Content Security Policy" in error for error in refused), refused
            shoot("sign-in")
            form.find_element(By.CSS_SELECTOR, "input[name=email]").send_keys(ORGANIZER)
            form.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys(PASSWORD)
            form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
            shown('form[action="/admin/logout"]')
            assert driver.current_url == base + "/admin/", driver.current_url

        def today() -> None:
            driver.get(base + "/admin/")
            for section in ("contacts", "traffic", "intents", "questions", "fill", "ratings"):
                part = find(f"section#{section}")
                assert part.get_attribute("data-refreshable") is not None, section
            assert find("body").get_attribute("data-refresh") == "15"
            shoot("today")

        def audit_login() -> None:
            driver.get(base + "/admin/audit")
            table = find("main table")
            assert ORGANIZER in table.text and WORDS[language]["signed in"] in table.text, (
                table.text)

        def switch_language() -> None:
            """From the audit page to Arabic and back: the same page, right to left."""
            other = "fr" if rtl else "ar"
            find(f'a[hreflang="{other}"]').click()
            wait.until(lambda _driver: driver.execute_script(
                "return document.documentElement.lang") == other)
            assert driver.current_url == base + "/admin/audit"
            assert driver.execute_script("return document.documentElement.dir") == (
                "ltr" if rtl else "rtl")
            find(f'a[hreflang="{language}"]').click()
            wait.until(lambda _driver: driver.execute_script(
                "return document.documentElement.lang") == language)
            assert driver.execute_script("return document.documentElement.dir") == (
                "rtl" if rtl else "ltr")

        # ------------------------------------------------------------------ workshops
        def workshops() -> None:
            registered = fair.call(fair.registrations())
            amina = registered[str(AMINA)][0]
            driver.get(base + "/admin/workshops")
            find("table#workshops")
            links = [link for link in all_of("table#workshops a.workshop")
                     if (link.get_attribute("href") or "").endswith(f"/admin/workshops/{WORKSHOP}")]
            assert links, [link.get_attribute("href") for link in all_of("a.workshop")]
            shoot("workshops")
            links[0].click()
            shown("table#registrants")
            rows = all_of("table#registrants tr[data-registration]")
            assert {row.get_attribute("data-registration") for row in rows} == {
                str(ident) for ident, _code, _in in registered.values()}
            waiting = fair.call(fair.registrations(RegistrationStatus.WAITLISTED))
            assert len(all_of("table#waiting-list tbody tr")) == len(waiting) == 1
            assert all_of("form#cancel-workshop[data-confirm]")
            status, text = fetched(find("a#registrants-csv").get_attribute("href"))
            assert status == 200 and str(AMINA) in text and str(KARIM) in text, (status, text)
            row = f'table#registrants tr[data-registration="{amina}"]'
            assert not all_of(f"{row} span.present")
            submit(find(f"{row} form.checkin button"))
            shown(f"{row} span.present")
            assert fair.call(fair.registrations())[str(AMINA)][2]
            shoot("workshop")

        def checkin_by_code() -> None:
            karim, code, present = fair.call(fair.registrations())[str(KARIM)]
            assert code and not present, (code, present)
            driver.get(base + "/admin/checkin")
            form = find("form#checkin-code")
            form.find_element(By.CSS_SELECTOR, "input[name=code]").send_keys(code)
            submit(form.find_element(By.CSS_SELECTOR, "button"))
            shown("p#checkin-result")
            shoot("checkin")
            assert fair.call(fair.registrations())[str(KARIM)][2]
            driver.get(base + f"/admin/workshops/{WORKSHOP}")
            shown(f'table#registrants tr[data-registration="{karim}"] span.present')

        # ------------------------------------------------------------------ broadcasts
        def broadcast() -> None:
            driver.get(base + "/admin/broadcasts")
            find("a#new-broadcast").click()
            form = shown("form#broadcast-compose")
            form.find_element(By.CSS_SELECTOR, "textarea[name=text_fr]").send_keys(TEXTS["fr"])
            form.find_element(By.CSS_SELECTOR, "textarea[name=text_ar]").send_keys(TEXTS["ar"])
            Select(form.find_element(By.CSS_SELECTOR, "select[name=audience]")
                   ).select_by_value("all")
            for css in ("input[name=at]", "input[name=urgent][type=checkbox]"):
                assert form.find_elements(By.CSS_SELECTOR, css), css
            shoot("broadcast-compose")
            form.find_element(By.CSS_SELECTOR, "button#broadcast-preview-button").click()
            preview = shown("section#broadcast-preview")
            channels = {item.get_attribute("data-channel")
                        for item in all_of("section#broadcast-preview .preview[data-channel]")}
            assert channels == {"telegram", "whatsapp", "web"}, channels
            assert TEXTS["fr"].split()[0] in preview.text or TEXTS["ar"].split()[0] in (
                preview.text), preview.text
            shown("table#audience-counts")
            shoot("broadcast-preview")
            submit(find("form#broadcast-send button#broadcast-send-button"))
            shown("progress#broadcast-progress")
            assert re.search(r"/admin/broadcasts/\d+$", driver.current_url), driver.current_url
            assert all_of("form#broadcast-cancel")
            # Nothing is sent yet (no worker): the page waits, then follows the sending
            # without reloading (a mark left on the window stays).
            assert find("section#broadcast-status").get_attribute("data-done") != "1"
            shoot("broadcast-progress")
            driver.execute_script("window.tadamonSamePage = 1;")
            fair.call(fair.start_worker())
            wait.until(lambda _driver: all_of('section#broadcast-status[data-done="1"]'))
            bar = find("progress#broadcast-progress")
            assert bar.get_attribute("value") == bar.get_attribute("max"), (
                bar.get_attribute("value"), bar.get_attribute("max"))
            percent = find("span#broadcast-percent").text.translate(ARABIC_DIGITS)
            assert "100" in percent, percent
            assert driver.execute_script("return window.tadamonSamePage") == 1, "reloaded"
            shoot("broadcast-sent")

        # ------------------------------------------------------------------ catalogue
        def catalogue() -> None:
            driver.get(base + "/admin/catalogue")
            find("form#catalogue-upload")
            shoot("catalogue")
            find("form#catalogue-upload input[type=file][name=file]").send_keys(
                str(upload["bad"]))
            find("button#catalogue-check").click()
            error = shown("p#import-error.error")
            assert "workshops.csv" in error.text and "2" in error.text.translate(
                ARABIC_DIGITS), error.text
            assert not all_of("form#catalogue-apply")
            shoot("catalogue-error")
            find("form#catalogue-upload input[type=file][name=file]").send_keys(
                str(upload["good"]))
            find("button#catalogue-check").click()
            shown("section#import-result")
            assert fair.call(fair.capacity()) == SEATS  # a dry run changes nothing
            shoot("catalogue-dry-run")
            submit(find("form#catalogue-apply button#catalogue-apply-button"))
            shown("p#import-done.notice")
            assert fair.call(fair.capacity()) == 60
            shoot("catalogue-applied")

        # ------------------------------------------------------------------ exports
        def exports() -> None:
            driver.get(base + "/admin/exports")
            report = find("section#report")
            for kind in EXPORTS:
                status, text = fetched(find(f"a[data-export={kind}]").get_attribute("href"))
                assert status == 200 and "," in text.splitlines()[0], (kind, status, text[:200])
            assert report.find_elements(By.CSS_SELECTOR, "a[data-chart]")
            wait.until(lambda _driver: driver.execute_script(
                "var images = document.querySelectorAll('section#report img');"
                "return images.length > 0 && Array.prototype.every.call(images,"
                " function (i) { return i.complete && i.naturalWidth > 0; });"))
            shoot("exports")

        # ------------------------------------------------------------------ personal data
        def privacy() -> None:
            """Look up a person and see what is kept (nothing is erased: the other language's
            run reads the same fair)."""
            driver.get(base + "/admin/privacy")
            find("form#privacy-form input#who").send_keys(f"whatsapp:{FATIMA}")
            shoot("privacy")
            submit(find("form#privacy-form button"))
            kept = shown("section#privacy-kept")
            assert FATIMA[-4:] in kept.text and FATIMA not in kept.text, kept.text
            assert all_of("button#privacy-erase")
            shoot("privacy-kept")

        # ------------------------------------------------------------------ audit, sign out
        def audit() -> None:
            driver.get(base + "/admin/audit")
            rows = all_of("main table tbody tr")
            # signed in, two check-ins, a broadcast, a catalogue applied (at least)
            assert len(rows) >= 5, [row.text for row in rows]
            shoot("audit")

        def sign_out() -> None:
            find('form[action="/admin/logout"] button').click()
            shown("form#login")
            driver.get(base + "/admin/audit")
            shown("form#login")

        if not step("sign-in", sign_in):
            return visit
        step("today", today)
        step("audit-login", audit_login)
        step("language-switch", switch_language)
        step("workshops", workshops)
        step("checkin-by-code", checkin_by_code)
        step("broadcast", broadcast)
        step("catalogue", catalogue)
        step("exports", exports)
        step("privacy", privacy)
        step("audit", audit)
        step("sign-out", sign_out)
        errors = console_errors(driver)
        if errors:
            visit.failures.append(f"end: browser console errors: {errors}")
    return visit


@pytest.mark.timeout(240)
@pytest.mark.parametrize("language", ["fr", "ar"])
async def test_the_console_in_a_browser(fair: Fair, language: str, tmp_path: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob(f"{language}-*.png"):  # the other language may be running alongside
        old.unlink()
    visit = await asyncio.to_thread(_browse, fair, language, files(tmp_path))
    print(f"screenshots in {SHOTS}; passed: {', '.join(visit.passed)}")

    failures = list(visit.failures)
    failures.extend(f"{path.name}: no picture" for path in visit.shots
                    if not path.exists() or path.stat().st_size < 1000)
    if any(step.startswith("broadcast ") for step in visit.passed):
        # Each person got the broadcast once, in their own language, on their own platform.
        for channel, user, spoken in PEOPLE:
            if channel == "telegram":
                texts = fair.telegram.fake.texts(int(user))
            else:
                texts = fair.whatsapp.fake.texts(user)
            got = [text for text in texts if TEXTS["fr"] in text or TEXTS["ar"] in text]
            if len(got) != 1 or TEXTS[spoken] not in got[0]:
                failures.append(f"broadcast to {channel}:{user} ({spoken}): {got}")
    assert not failures, "\n".join(failures)
