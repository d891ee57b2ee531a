"""The organizer console in tests: a served App, accounts, a browser-like client that signs in
and carries its cookies, and the CSRF token of the page it last read."""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import App
from bot.console.passwords import hash_password
from bot.http import make_web_app
from storage.console import ConsoleAccounts, ConsoleRole
from tests.conftest import AppFactory

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@dataclass
class ConsoleClient:
    """One browser on the console: `get` and `post` keep the cookies and the last page's CSRF
    token, which `post` sends unless told not to."""

    app: App
    client: TestClient[Any, Any]
    csrf: str = ""
    pages: list[str] = field(default_factory=list)

    async def get(self, path: str, **options: Any) -> tuple[int, str]:
        response = await self.client.get(path, allow_redirects=options.pop("follow", True),
                                         **options)
        text = await response.text()
        self._remember(text)
        return response.status, text

    async def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True,
                   follow: bool = True, **options: Any) -> tuple[int, str]:
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf", self.csrf)
        response = await self.client.post(path, data=form, allow_redirects=follow, **options)
        text = await response.text()
        self._remember(text)
        return response.status, text

    async def login(self, email: str, password: str = PASSWORD, **headers: str
                    ) -> tuple[int, str]:
        _status, page = await self.get("/admin/login")
        token = re.search(r'name="login_token" value="([^"]+)"', page)
        assert token is not None, page
        return await self.post("/admin/login", {"email": email, "password": password,
                                                "login_token": token.group(1)},
                               csrf=False, headers=headers)

    def _remember(self, text: str) -> None:
        self.pages.append(text)
        found = CSRF.search(text)
        if found:
            self.csrf = found.group(1)


ConsoleFactory = Callable[..., Awaitable[ConsoleClient]]


@functools.cache
def _hashed(password: str) -> str:
    """A password's argon2 hash, made once per test process (a tenth of a second each)."""
    return hash_password(password)


async def add_account(app: App, email: str, role: str = "organizer",
                      password: str = PASSWORD) -> None:
    await ConsoleAccounts(app.sessions).add(email, ConsoleRole(role), _hashed(password))


@pytest.fixture
async def make_console(make_app: AppFactory) -> AsyncIterator[ConsoleFactory]:
    """`await make_console(app=None, login="org@fair.ma", role="organizer", **make_app options)`:
    a console client, signed in as `login` (an account made with `role`) unless login is
    None. Pass `app` to open another browser on the same App."""
    clients: list[TestClient[Any, Any]] = []

    async def make(app: App | None = None, login: str | None = "org@fair.ma",
                   role: str = "organizer", **options: Any) -> ConsoleClient:
        if app is None:
            app = await make_app(**options)
        client: TestClient[Any, Any] = TestClient(TestServer(make_web_app(app)))
        await client.start_server()
        clients.append(client)
        console = ConsoleClient(app, client)
        if login is not None:
            if await ConsoleAccounts(app.sessions).credentials(login) is None:
                await add_account(app, login, role)
            status, page = await console.login(login)
            assert status == 200 and 'action="/admin/logout"' in page, page
        return console

    yield make
    for client in clients:
        await client.close()
