"""Signing in and out of the organizer console."""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets

from aiohttp import web

from bot.console import passwords
from bot.console.core import (
    COOKIE,
    LANGUAGE_COOKIE,
    LANGUAGES,
    Page,
    _,
    _n,
    console_of,
    requires,
)
from storage.console import EMAIL_MAX, SESSION_LIFETIME, ConsoleRole

log = logging.getLogger(__name__)

# The sign-in form's own CSRF token, before there is a session: a random cookie the form
# repeats (another site can neither read the cookie nor set it).
LOGIN_COOKIE = "tadamon_console_login"


def _next(target: str) -> str:
    """Where to go after signing in: a page of the console, never another site."""
    if target.startswith("/admin/") and not target.startswith("/admin//") and "\\" not in target:
        return target
    return "/admin/"


async def login_page(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    if await console.signed_in(request) is not None:
        raise web.HTTPSeeOther(_next(request.query.get("next", "/admin/")))
    return _form(request, console.page(request), "", "")


def _form(request: web.Request, page: Page, email: str, error: str,
          status: int = 200) -> web.Response:
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    response = page.render("login.html", status=status, email=email, error=error,
                           login_token=token, next=_next(request.query.get("next", "/admin/")))
    response.set_cookie(LOGIN_COOKIE, token, path="/admin/", httponly=True, samesite="Strict",
                        secure=page.console.secure(request))
    return response


async def login(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    page = console.page(request)
    form = await request.post()
    email = str(form.get("email", "")).strip()[:EMAIL_MAX]
    password = str(form.get("password", ""))
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(),
                                             str(form.get("login_token", "")).encode()):
        return _form(request, page, email,
                     page.gettext(_("This form has expired: go back, reload the page and try "
                                    "again.")), 403)
    if not email or not password:
        return _form(request, page, email, page.gettext(_("Give your email and password.")), 400)
    attempt = await console.limits.take(email, console.client(request))
    if attempt.unavailable:
        return _form(request, page, email, page.gettext(
            _("Signing in is unavailable for a moment. Try again in a minute.")), 503)
    if not attempt.allowed:
        await console.audit.write(email, "login refused", "",
                                  f"too many failed attempts, {attempt.retry_minutes} min")
        return _form(request, page, email, page.ngettext(
            _n("Too many failed attempts. Try again in {n} minute.",
               "Too many failed attempts. Try again in {n} minutes."), attempt.retry_minutes),
            429)
    found = await console.accounts.credentials(email)
    stored = None if found is None else found[1]
    right = await asyncio.to_thread(passwords.verify, stored, password)
    if found is None or not right:
        log.info("console: failed sign-in")  # never the email or the password
        await console.audit.write(email, "login failed")
        return _form(request, page, email,
                     page.gettext(_("Wrong email or password.")), 401)
    account, stored_hash = found
    await console.limits.give_back(attempt)
    if passwords.needs_rehash(stored_hash):
        await console.accounts.rehash(account.id,
                                      await asyncio.to_thread(passwords.hash_password, password))
    token = await console.accounts.open_session(account.id)
    await console.audit.write(account.email, "login")
    response = web.HTTPSeeOther(_next(str(form.get("next", "/admin/"))))
    response.set_cookie(COOKIE, token, path="/admin/", httponly=True, samesite="Strict",
                        secure=console.secure(request),
                        max_age=int(SESSION_LIFETIME.total_seconds()))
    response.del_cookie(LOGIN_COOKIE, path="/admin/")
    raise response


@requires(ConsoleRole.VIEWER)
async def logout(request: web.Request, page: Page) -> web.StreamResponse:
    assert page.who is not None
    await page.console.accounts.close_session(page.who.token_hash)
    await page.audit("logout")
    response = web.HTTPSeeOther("/admin/login")
    response.del_cookie(COOKIE, path="/admin/")
    raise response


async def language(request: web.Request) -> web.StreamResponse:
    """Choose the console's language (a link on every page); back to the page it was chosen
    on."""
    chosen = request.match_info["language"]
    if chosen not in LANGUAGES:
        raise web.HTTPNotFound()
    response = web.HTTPSeeOther(_next(request.query.get("next", "/admin/")))
    response.set_cookie(LANGUAGE_COOKIE, chosen, path="/admin/", samesite="Lax",
                        max_age=365 * 24 * 3600, secure=console_of(request).secure(request))
    raise response


def routes() -> list[web.RouteDef]:
    return [web.get("/login", login_page), web.post("/login", login),
            web.post("/logout", logout), web.get("/language/{language}", language)]
