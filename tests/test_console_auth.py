"""The organizer console's door: accounts made on the command line, signing in and out, the
session cookie, CSRF on every form, failed sign-ins limited per account and per address, the
audit log, languages and security headers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from yarl import URL

from storage.console import AuditLog, ConsoleAccounts
from tests import commands
from tests.conftest import cli_env
from tests.console import PASSWORD, ConsoleFactory, add_account

pytestmark = pytest.mark.timeout(120)


async def test_the_signed_out_are_sent_to_the_sign_in_page(make_console: ConsoleFactory
                                                           ) -> None:
    console = await make_console(login=None)
    response = await console.client.get("/admin/audit?x=1", allow_redirects=False)
    assert response.status == 303
    location = URL(response.headers["Location"])
    assert location.path == "/admin/login" and location.query["next"] == "/admin/audit?x=1"
    response = await console.client.get("/admin", allow_redirects=False)
    assert response.headers["Location"] == "/admin/"
    status, page = await console.get("/admin/")
    assert status == 200 and 'name="password"' in page and 'lang="fr"' in page
    # An action without a session is refused, not run.
    status, page = await console.post("/admin/logout", csrf=False)
    assert status == 401 and "Votre session a pris fin" in page


async def test_sign_in_sets_a_strict_http_only_cookie_then_sign_out_ends_it(
        make_console: ConsoleFactory) -> None:
    console = await make_console(login=None)
    await add_account(console.app, "Amina@Fair.ma", "viewer")
    _status, page = await console.get("/admin/login")
    token = page.split('name="login_token" value="')[1].split('"')[0]
    response = await console.client.post("/admin/login", allow_redirects=False, data={
        "email": "  amina@fair.MA ", "password": PASSWORD, "login_token": token})
    assert response.status == 303
    cookie = next(line for line in response.headers.getall("Set-Cookie")
                  if line.startswith("tadamon_console="))
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "path"} <= attributes and "SameSite=Strict" in cookie
    assert "Path=/admin/" in cookie
    assert "secure" not in attributes  # plain HTTP here: a Secure cookie would never come back
    status, page = await console.get("/admin/")
    assert status == 200 and "amina@fair.ma" in page and "lecteur" in page
    status, page = await console.post("/admin/logout")
    assert status == 200 and 'name="password"' in page
    # The old cookie is worth nothing once signed out, even if a copy was kept.
    async with console.app.sessions() as session:
        from sqlalchemy import func, select

        from storage.models import ConsoleSession
        assert await session.scalar(select(func.count()).select_from(ConsoleSession)) == 0
    entries = [(entry.actor, entry.action) for entry in await AuditLog(console.app.sessions)
               .recent()]
    assert entries[:2] == [("amina@fair.ma", "logout"), ("amina@fair.ma", "login")]


async def test_the_cookie_is_secure_behind_https(make_console: ConsoleFactory) -> None:
    console = await make_console(login=None, public_url="https://salon.example")
    await add_account(console.app, "org@fair.ma")
    response = await console.client.get("/admin/login")
    page = await response.text()
    assert "Secure" in response.headers["Set-Cookie"]
    token = page.split('name="login_token" value="')[1].split('"')[0]
    # The client would not send a Secure cookie over plain HTTP: a browser behind HTTPS would.
    response = await console.client.post("/admin/login", allow_redirects=False, data={
        "email": "org@fair.ma", "password": PASSWORD, "login_token": token},
        headers={"Cookie": f"tadamon_console_login={token}"})
    assert response.status == 303
    assert "Secure" in response.headers["Set-Cookie"]


async def test_a_wrong_password_is_refused_and_logged(make_console: ConsoleFactory,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    console = await make_console(login=None)
    await add_account(console.app, "org@fair.ma")
    status, page = await console.login("org@fair.ma", "not the password")
    assert status == 401 and "Adresse e-mail ou mot de passe incorrect." in page
    status, page = await console.login("nobody@fair.ma", PASSWORD)
    assert status == 401 and "Adresse e-mail ou mot de passe incorrect." in page
    assert "not the password" not in caplog.text and "org@fair.ma" not in caplog.text
    actions = [(entry.actor, entry.action) for entry in
               await AuditLog(console.app.sessions).recent()]
    assert actions == [("nobody@fair.ma", "login failed"), ("org@fair.ma", "login failed")]
    # A sign-in form posted without its own token (from another site) checks nothing.
    status, page = await console.post("/admin/login", {"email": "org@fair.ma",
                                                       "password": PASSWORD}, csrf=False)
    assert status == 403 and "Ce formulaire a expiré" in page


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_failed_sign_ins_are_limited_per_account_then_per_address(
        make_console: ConsoleFactory, database: str) -> None:
    console = await make_console(login=None, database=database)
    await add_account(console.app, "org@fair.ma")
    await add_account(console.app, "other@fair.ma")
    for _attempt in range(5):
        status, _page = await console.login("org@fair.ma", "guess")
        assert status == 401
    # The limit is reached: not even the right password is checked now.
    status, page = await console.login("org@fair.ma", PASSWORD)
    assert status == 429 and "Trop de tentatives échouées. Réessayez dans 15\u00a0minutes." in page
    # Another account from the same address may still sign in...
    status, page = await console.login("other@fair.ma", PASSWORD)
    assert status == 200 and "other@fair.ma" in page
    await console.post("/admin/logout")
    # ...until the address itself has failed too often (20 in the window).
    for index in range(15):
        await console.login(f"someone{index}@fair.ma", "guess")
    status, page = await console.login("other@fair.ma", PASSWORD)
    assert status == 429
    # Another address is not held back by this one's failures.
    other = await make_console(app=console.app, login=None)
    status, _page = await other.login("other@fair.ma", PASSWORD,
                                      **{"X-Forwarded-For": "203.0.113.9"})
    assert status == 429  # no trusted proxy: the header is ignored, same address
    refused = [entry for entry in await AuditLog(console.app.sessions).recent()
               if entry.action == "login refused"]
    assert refused


async def test_every_form_needs_the_session_csrf_token(make_console: ConsoleFactory) -> None:
    console = await make_console()
    status, page = await console.post("/admin/logout", {"csrf": "0" * 64})
    assert status == 403 and "Ce formulaire a expiré" in page
    status, page = await console.post("/admin/logout", csrf=False)
    assert status == 403
    # Another session's token does not fit this one.
    second = await make_console(app=console.app, login="org@fair.ma")
    status, _page = await console.post("/admin/logout", {"csrf": second.csrf})
    assert status == 403
    status, page = await console.post("/admin/logout")
    assert status == 200 and 'name="password"' in page


async def test_after_sign_in_only_a_console_page_is_a_destination(
        make_console: ConsoleFactory) -> None:
    console = await make_console(login=None)
    await add_account(console.app, "org@fair.ma")
    _status, page = await console.get("/admin/login?next=//evil.example/x")
    assert 'name="next" value="/admin/"' in page
    for target, expected in (("https://evil.example/", "/admin/"), ("/admin/audit",
                                                                    "/admin/audit")):
        browser = await make_console(app=console.app, login=None)
        _status, page = await browser.get("/admin/login")
        token = page.split('name="login_token" value="')[1].split('"')[0]
        response = await browser.client.post("/admin/login", allow_redirects=False, data={
            "email": "org@fair.ma", "password": PASSWORD, "login_token": token,
            "next": target})
        assert response.headers["Location"] == expected


async def test_pages_carry_security_headers_and_both_directions(
        make_console: ConsoleFactory) -> None:
    console = await make_console()
    response = await console.client.get("/admin/audit")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    page = await response.text()
    assert "<script>" not in page and " style=" not in page and "http://" not in page
    response = await console.client.get("/admin/language/ar?next=/admin/audit",
                                        allow_redirects=False)
    assert response.headers["Location"] == "/admin/audit"
    status, page = await console.get("/admin/audit")
    assert status == 200 and 'lang="ar" dir="rtl"' in page and "سجل العمليات" in page
    # The account's own sign-in is there, in Arabic, its email isolated from the Arabic text.
    assert "تسجيل الدخول" in page and "<bdi>org@fair.ma</bdi>" in page
    status, _page = await console.get("/admin/language/de")
    assert status == 404
    response = await console.client.get("/admin/static/console.css")
    assert response.status == 200 and response.content_type == "text/css"
    response = await console.client.get("/admin/static/../settings.py")
    assert response.status == 404


async def test_accounts_are_made_listed_and_removed_on_the_command_line(
        make_console: ConsoleFactory, tmp_path: Path) -> None:
    console = await make_console(login=None)
    env = cli_env(TADAMON_DATABASE_URL=console.app.settings.database_url)

    def tadamon(*args: str, given: bytes = b"") -> commands.Done:
        return commands.run(*args, env=env, cwd=tmp_path, given=given)

    done = await asyncio.to_thread(tadamon, "admin", "add", "Karim@Fair.ma", "--role",
                                   "organizer", given=PASSWORD.encode() + b"\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().strip() == "karim@fair.ma is a console organizer"
    done = await asyncio.to_thread(tadamon, "admin", "add", "v@fair.ma", "--role", "boss",
                                   given=PASSWORD.encode() + b"\n")
    assert done.returncode == 2 and b"'boss' is not organizer or viewer" in done.stderr
    done = await asyncio.to_thread(tadamon, "admin", "add", "v@fair.ma", "--role", "viewer",
                                   given=b"short\n")
    assert done.returncode == 2 and b"at least 10 characters" in done.stderr
    done = await asyncio.to_thread(tadamon, "admin", "add", "not-an-email", "--role",
                                   "viewer", given=PASSWORD.encode() + b"\n")
    assert done.returncode == 2
    status, page = await console.login("karim@fair.ma")
    assert status == 200 and "organisateur" in page
    done = await asyncio.to_thread(tadamon, "admin", "list")
    line = done.stdout.decode().strip()
    assert line.startswith("karim@fair.ma\torganizer\t20"), line
    done = await asyncio.to_thread(tadamon, "admin", "remove", "karim@fair.ma")
    assert done.returncode == 0
    # Removing the account signed its browser out at once.
    status, page = await console.get("/admin/audit")
    assert 'name="password"' in page
    done = await asyncio.to_thread(tadamon, "admin", "remove", "karim@fair.ma")
    assert done.returncode == 2 and b"no such console account" in done.stderr
    assert await ConsoleAccounts(console.app.sessions).all() == []
    actions = [(entry.actor, entry.action, entry.subject) for entry in
               await AuditLog(console.app.sessions).recent()]
    assert ("command line", "account added", "karim@fair.ma") in actions
    assert ("command line", "account removed", "karim@fair.ma") in actions
