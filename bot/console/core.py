"""What every page of the organizer console shares: who is signed in, their role, the CSRF
token of their forms, the page's language and direction, security headers, and rendering."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import web
from babel.dates import format_datetime
from babel.numbers import format_decimal, format_percent

from bot.channels.web import _address, _trusted, client_address
from bot.i18n import BABEL_LOCALES, isolate
from storage.console import (
    Account,
    AuditLog,
    ConsoleAccounts,
    ConsoleRole,
    LoginLimits,
    SignedIn,
)

if TYPE_CHECKING:
    import jinja2
    from babel.support import Translations

    from bot.app import App

log = logging.getLogger(__name__)

LANGUAGES = ("fr", "ar", "en")
COOKIE = "tadamon_console"
LANGUAGE_COOKIE = "tadamon_console_lang"
# The console's pages run only their own script and style, talk only to this server, are
# never framed and never cached (they show people's data).
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
          "connect-src 'self'; media-src 'self' blob:; form-action 'self'; "
          "frame-ancestors 'none'; base-uri 'none'")
HEADERS = {"Content-Security-Policy": POLICY, "X-Frame-Options": "DENY",
           "Referrer-Policy": "same-origin", "X-Content-Type-Options": "nosniff"}
CONSOLE_KEY: web.AppKey[Console] = web.AppKey("console")
# A moment as each language writes it: "2 déc. 2026 à 07:39", "2 دجنبر 2026، 07:39" (the
# Arabic comma), "2 Dec 2026, 07:39".
WHEN_PATTERNS = {"fr": "d MMM y 'à' HH:mm", "ar": "d MMM y، HH:mm", "en": "d MMM y, HH:mm"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _(message: str) -> str:
    """Marks a message for the catalogs; it is translated where it is shown (`page.gettext`)."""
    return message


def _n(singular: str, plural: str) -> tuple[str, str]:
    """Marks a message with its plural for the catalogs (`page.ngettext` translates it)."""
    return singular, plural


# Channels as organizers know them (the two apps' names are brands, the same in every language).
CHANNEL_NAMES = {"telegram": "Telegram", "whatsapp": "WhatsApp", "web": _("Web chat")}


class Console:
    """The console's shared parts, made once per process from the App."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.accounts = ConsoleAccounts(app.sessions)
        self.audit = AuditLog(app.sessions)
        self.limits = LoginLimits(app.redis)
        # The audit log's actions, as each page module names them (its ACTIONS).
        self.actions: dict[str, str] = {}
        self._environments: dict[str, jinja2.Environment] = {}

    def environment(self, language: str) -> jinja2.Environment:
        """The templates in `language`, made at the first page (Jinja2 is imported then: a
        process nobody opens the console of does not carry it)."""
        found = self._environments.get(language)
        if found is None:
            found = self._environments[language] = self._make_environment(
                self.app.renderer.translations[language])
        return found

    @staticmethod
    def _make_environment(translations: Translations) -> jinja2.Environment:
        import jinja2

        environment = jinja2.Environment(
            loader=jinja2.PackageLoader("bot.console", "templates"),
            autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
            extensions=["jinja2.ext.i18n"], undefined=jinja2.StrictUndefined,
            trim_blocks=True, lstrip_blocks=True)
        environment.install_gettext_translations(translations, newstyle=False)  # type: ignore[attr-defined]
        return environment

    # ------------------------------------------------------------------ who and which language

    def language(self, request: web.Request) -> str:
        """The page's language: the one chosen (cookie), else the browser's first of ours."""
        chosen = request.cookies.get(LANGUAGE_COOKIE, "")
        if chosen in LANGUAGES:
            return chosen
        for part in request.headers.get("Accept-Language", "").split(","):
            tag = part.split(";")[0].strip().lower()[:2]
            if tag in LANGUAGES:
                return tag
        return "fr"

    def secure(self, request: web.Request) -> bool:
        """Whether the browser reached us over HTTPS (directly, through a trusted proxy, or as
        the public address says): the cookie is then Secure."""
        if request.secure:
            return True
        peer = _address(request.remote)
        forwarded = request.headers.get("X-Forwarded-Proto", "")
        if forwarded and peer is not None and _trusted(peer, self.app.settings.trusted_proxies):
            return forwarded.split(",")[0].strip().lower() == "https"
        return (self.app.settings.public_url or "").startswith("https://")

    def client(self, request: web.Request) -> str:
        return client_address(request.remote, request.headers.getall("X-Forwarded-For", []),
                              self.app.settings.trusted_proxies)

    async def signed_in(self, request: web.Request) -> SignedIn | None:
        token = request.cookies.get(COOKIE)
        return None if not token else await self.accounts.signed_in(token)

    @staticmethod
    def csrf_token(who: SignedIn) -> str:
        """The token every form of this session carries: bound to the session, so a page of
        another site cannot know it."""
        return hmac.new(who.token_hash.encode(), b"tadamon console csrf",
                        hashlib.sha256).hexdigest()

    # ------------------------------------------------------------------ pages

    def page(self, request: web.Request, who: SignedIn | None = None) -> Page:
        return Page(self, request, self.language(request), who)


class Page:
    """One answer's context: its language, its signed-in account, and the helpers templates
    use (dates, numbers, isolated tokens in Arabic)."""

    def __init__(self, console: Console, request: web.Request, language: str,
                 who: SignedIn | None) -> None:
        self.console = console
        self.request = request
        self.language = language
        self.who = who
        self.environment = console.environment(language)
        self.zone = console.app.settings.zone

    @property
    def account(self) -> Account | None:
        return None if self.who is None else self.who.account

    @property
    def actor(self) -> str:
        return "" if self.who is None else self.who.account.email

    def gettext(self, message: str, **values: Any) -> str:
        text: str = self.environment.globals["gettext"](message)  # type: ignore[operator]
        return text.format(**values) if values else text

    def ngettext(self, forms: tuple[str, str], n: int, **values: Any) -> str:
        text: str = self.environment.globals["ngettext"](  # type: ignore[operator]
            forms[0], forms[1], n)
        return text.format(n=n, **values)

    def when(self, moment: dt.datetime | None, zone: str | ZoneInfo | None = None) -> str:
        """A date and time in the page's language and the fair's time zone, Latin digits."""
        if moment is None:
            return ""
        tz = ZoneInfo(zone) if isinstance(zone, str) else zone or self.zone
        text = format_datetime(moment.astimezone(tz), WHEN_PATTERNS[self.language],
                               locale=BABEL_LOCALES[self.language])
        return self.iso(text)

    def channel(self, channel: str) -> str:
        """A channel's name in the page's language."""
        name = CHANNEL_NAMES.get(channel)
        return channel if name is None else self.gettext(name)

    def person(self, channel: str, user_id: str) -> str:
        """Someone as the console shows them: their channel and the last 4 characters of
        their id (`WhatsApp ···1234`), never the whole number or id."""
        return f"{self.channel(channel)} ···{user_id[-4:]}"

    def number(self, value: float) -> str:
        return format_decimal(value, locale=BABEL_LOCALES[self.language], numbering_system="latn")

    def percent(self, value: float) -> str:
        return self.iso(format_percent(value, locale=BABEL_LOCALES[self.language],
                                       numbering_system="latn"))

    def iso(self, text: str) -> str:
        """A Latin or numeric token kept whole inside Arabic text."""
        return isolate(text) if self.language == "ar" else text

    def render(self, template: str, status: int = 200, **context: Any) -> web.Response:
        values = {"page": self, "lang": self.language,
                  "dir": "rtl" if self.language == "ar" else "ltr",
                  "account": self.account,
                  "organizer": self.account is not None and self.account.organizer,
                  "csrf": "" if self.who is None else Console.csrf_token(self.who),
                  "path": self.request.path, "languages": LANGUAGES, **context}
        body = self.environment.get_template(template).render(values)
        return web.Response(text=body, status=status, content_type="text/html",
                            headers={"Cache-Control": "no-store"})

    def error(self, status: int, message: str) -> web.Response:
        return self.render("error.html", status=status, status_code=status,
                           message=self.gettext(message))

    async def audit(self, action: str, subject: str = "", detail: str = "") -> None:
        await self.console.audit.write(self.actor, action, subject, detail)


def console_of(request: web.Request) -> Console:
    return request.app[CONSOLE_KEY]


PageHandler = Callable[[web.Request, Page], Awaitable[web.StreamResponse]]


def requires(role: ConsoleRole) -> Callable[[PageHandler], Handler]:
    """A page for signed-in accounts of `role` (a viewer's pages are an organizer's too). The
    signed-out go to the sign-in page (GET) or get 401; a viewer asking for an organizer's page
    gets 403; every POST must carry the session's CSRF token (form field `csrf` or header
    `X-CSRF-Token`)."""

    def decorate(handler: PageHandler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            console = console_of(request)
            who = await console.signed_in(request)
            page = console.page(request, who)
            if who is None:
                if request.method in ("GET", "HEAD"):
                    target = request.path_qs if request.path.startswith("/admin/") else "/admin/"
                    raise web.HTTPSeeOther("/admin/login?next=" + quote(target, safe=""))
                return page.error(401, _("Your session has ended: sign in again."))
            if request.method not in ("GET", "HEAD") and not await _csrf_ok(request, who):
                log.warning("console: %s %s refused, no valid CSRF token", request.method,
                            request.path)
                return page.error(403, _("This form has expired: go back, reload the page "
                                         "and try again."))
            if role == ConsoleRole.ORGANIZER and not who.account.organizer:
                return page.error(403, _("Only organizers may do this; your account can "
                                         "only look."))
            return await handler(request, page)

        return wrapper

    return decorate


async def _csrf_ok(request: web.Request, who: SignedIn) -> bool:
    expected = Console.csrf_token(who)
    given = request.headers.get("X-CSRF-Token", "")
    if not given and request.content_type in ("application/x-www-form-urlencoded",
                                              "multipart/form-data"):
        if request.content_type == "multipart/form-data":
            # Multipart bodies (uploads) carry the token in the query string, so the body is
            # read only once, by the page.
            given = request.query.get("csrf", "")
        else:
            given = str((await request.post()).get("csrf", ""))
    return hmac.compare_digest(given.encode(), expected.encode())


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response
