"""A deployment of several processes, as the README describes it for a large fair: real
PostgreSQL and Redis, 2 `tadamon run --no-worker` behind a round-robin proxy that the platform
webhooks reach, 2 `tadamon worker`, and the fake Bot API and Graph API servers in this process.

People are simulated at the fakes (`Visitors`): each writes one message at a time and reads the
answer before writing again, so every answer the fakes received is tied to the update it
answers. Used by tests/test_deployment.py, bench/deployment.py and bench/chaos.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import insert, select

from bot.app import App, sample_catalogue
from bot.catalogue import import_catalogue
from bot.settings import Settings
from storage import database
from storage.models import Contact, OutboxMessage, Registration, RegistrationStatus, Workshop
from storage.outbox import Outbox
from tests.fakes.telegram import FakeTelegram
from tests.fakes.whatsapp import FakeWhatsApp
from tests.servers import RunningServer, free_port, start_postgres, start_redis

ROOT = Path(__file__).resolve().parents[1]
TADAMON = [sys.executable, "-c", "from bot.cli import main; main()"]
"""`tadamon` as the console script runs it, with this tree's code first on the path."""
BROADCAST_MARK = "[B17]"
"""In every broadcast text: what tells a broadcast from an answer at the fakes."""
APOLOGIES = (
    "je réponds encore à votre message précédent", "ما زلت أجيب على رسالتك السابقة",
    "still answering your previous message",
    "momentanément indisponible", "الخدمة غير متاحة مؤقتًا", "briefly unavailable",
    "un problème est survenu de notre côté", "حدث خلل من جهتنا", "something went wrong",
)
"""What the bot says when it could not handle a message (busy, database away, a failure)."""
FLOOD_NOTICES = ("Vous envoyez des messages très vite", "أنت ترسل الرسائل بسرعة كبيرة",
                 "You are sending messages very fast")
"""The flood protection's notice (more than THROTTLE_LIMIT messages in THROTTLE_WINDOW seconds):
after it, the same person's messages are not answered until the window ends, by design."""
READING = 0.6
"""Seconds a visitor takes to read an answer before writing again. A person cannot write 15
messages in 10 s while reading each answer; a script that answers as soon as the bot did does,
when answers come fast (apologies during an outage), and meets the flood protection."""
SENT_TO_PEOPLE = ("sendMessage", "sendPhoto", "sendDocument", "sendLocation")
HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


class Process:
    """One `tadamon` process: started, killed (SIGKILL), stopped and started again."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], folder: Path,
                 port: int | None = None) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.port = port
        self.log_path = folder / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen([*TADAMON, *self.args], env=self.env, cwd=ROOT,
                                            stdin=subprocess.DEVNULL, stdout=log_file,
                                            stderr=subprocess.STDOUT)
        self.starts += 1

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """kill -9: no shutdown, nothing handed over."""
        if self.alive:
            assert self.process is not None
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    async def stop(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """SIGTERM, as an orchestrator stops a process; SIGKILL after `timeout`."""
        if not self.alive:
            return
        assert self.process is not None
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(self.process.wait, timeout)
        self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def problems(self) -> list[str]:
        """Log lines at ERROR or above, and tracebacks' last lines."""
        return [line for line in self.log().splitlines()
                if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")]


class Proxy:
    """A small round-robin reverse proxy (what a load balancer does): each request goes to the
    next bot process; one that does not answer is skipped for the next one."""

    def __init__(self, backends: list[Process]) -> None:
        self.backends = backends
        self.forwarded: dict[str, int] = {process.name: 0 for process in backends}
        self.refused = 0
        self._turn = itertools.count()
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._client is not None
        body = await request.read()
        headers = {key: value for key, value in request.headers.items()
                   if key.lower() not in HOP_HEADERS}
        first = next(self._turn)
        for step in range(len(self.backends)):
            backend = self.backends[(first + step) % len(self.backends)]
            url = f"http://127.0.0.1:{backend.port}{request.path_qs}"
            try:
                async with self._client.request(request.method, url, data=body,
                                                headers=headers) as answer:
                    payload = await answer.read()
                    self.forwarded[backend.name] += 1
                    return web.Response(status=answer.status, body=payload,
                                        content_type=answer.content_type)
            except (aiohttp.ClientConnectionError, TimeoutError):
                continue  # that process is down: the next one
        self.refused += 1
        return web.Response(status=502, text="no bot process answers")


@dataclass
class Update:
    """One message or tap a person sent, and what became of it."""

    channel: str
    person: str
    what: str
    key: str
    """The platform's id of it: Telegram update id, WhatsApp wamid."""
    first_try: float = 0.0
    accepted: float | None = None
    """When the proxy answered 200 (after retries, as the platforms retry)."""
    tries: int = 0
    answer: list[str] = field(default_factory=list)
    answered_at: float | None = None
    """When the first message of its answer reached the person."""


class Visitors:
    """People on Telegram and WhatsApp, writing through the proxy like the platforms do
    (delivery retried until 200, as Telegram and Meta retry), reading their answers."""

    def __init__(self, deployment: Deployment, answer_timeout: float = 120.0,
                 settle: float = 0.4) -> None:
        self.deployment = deployment
        self.telegram = deployment.telegram
        self.whatsapp = deployment.whatsapp
        self.answer_timeout = answer_timeout
        self.settle = settle
        self.updates: list[Update] = []
        self.retries_given_up = 0

    # ---- what reached each person -----------------------------------------------------------

    def received(self, channel: str, person: str) -> list[tuple[float, str]]:
        """(time, text) of every message the bot got through to the person, in order."""
        if channel == "telegram":
            return [(call.at, call.text or "") for call in self.telegram.calls
                    if call.method in SENT_TO_PEOPLE and call.status == 200
                    and call.params.get("chat_id") == int(person)]
        return [(call.at, call.text or "") for call in self.whatsapp.messages(person)
                if call.status == 200]

    def answers(self, channel: str, person: str) -> list[tuple[float, str]]:
        """What reached the person, broadcasts left out."""
        return [(at, text) for at, text in self.received(channel, person)
                if BROADCAST_MARK not in text]

    # ---- writing ----------------------------------------------------------------------------

    async def _deliver(self, update: Update, post: Any) -> None:
        """Post until accepted, waiting longer each time (the platforms retry for hours)."""
        update.first_try = time.monotonic()
        delay = 0.5
        deadline = update.first_try + 300
        while True:
            update.tries += 1
            status = await post()
            if status == 200:
                update.accepted = time.monotonic()
                return
            if time.monotonic() > deadline:
                self.retries_given_up += 1
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _converse(self, update: Update, post: Any) -> list[str]:
        """Send, then wait for the answer: the first reply, then until the replies stop."""
        before = len(self.answers(update.channel, update.person))
        self.updates.append(update)
        await self._deliver(update, post)
        deadline = time.monotonic() + self.answer_timeout
        count, quiet_since = before, time.monotonic()
        while time.monotonic() < deadline:
            now = len(self.answers(update.channel, update.person))
            if now != count:
                count, quiet_since = now, time.monotonic()
            elif count > before and time.monotonic() - quiet_since >= self.settle:
                break
            await asyncio.sleep(0.05)
        return [text for _at, text in self.answers(update.channel, update.person)[before:]]

    async def telegram_says(self, user_id: int, text: str, language: str = "fr") -> list[str]:
        raw = self.telegram.message(user_id, text, language_code=language,
                                    first_name=f"Visitor {user_id}")
        update = Update("telegram", str(user_id), text, str(raw["update_id"]))
        return await self._converse(update, lambda: self.telegram.push(raw))

    async def telegram_taps(self, user_id: int, data: str, language: str = "fr") -> list[str]:
        message_id = 1
        for call in reversed(self.telegram.calls_of("sendMessage", user_id)):
            if call.params.get("reply_markup") and call.result:
                message_id = int(call.result["message_id"])
                break
        raw = self.telegram.callback(user_id, data, message_id=message_id,
                                     language_code=language)
        update = Update("telegram", str(user_id), f"tap {data}", str(raw["update_id"]))
        return await self._converse(update, lambda: self.telegram.push(raw))

    async def whatsapp_says(self, wa_id: str, text: str) -> list[str]:
        envelope = self.whatsapp.text_message(wa_id, text, name=f"Visitor {wa_id[-4:]}")
        update = Update("whatsapp", wa_id, text, FakeWhatsApp.message_id_of(envelope))
        return await self._converse(update, lambda: self.whatsapp.post_webhook(
            self.deployment.whatsapp_webhook, envelope))

    async def whatsapp_taps(self, wa_id: str, button_id: str) -> list[str]:
        """A tap on a reply button, or a choice in a list, whichever offered `button_id` last."""
        rows = [row_id for call in self.whatsapp.messages(wa_id, "interactive")
                for row_id, _title, _description in call.rows]
        envelope = (self.whatsapp.list_reply(wa_id, button_id) if button_id in rows
                    else self.whatsapp.button_reply(wa_id, button_id))
        update = Update("whatsapp", wa_id, f"tap {button_id}", FakeWhatsApp.message_id_of(envelope))
        return await self._converse(update, lambda: self.whatsapp.post_webhook(
            self.deployment.whatsapp_webhook, envelope))

    async def button(self, channel: str, person: str, prefix: str,
                     within: float = 30.0) -> str | None:
        """The latest button starting with `prefix` sent to the person, waited for up to
        `within` seconds (None if it never came)."""
        deadline = time.monotonic() + within
        while True:
            found = (self.telegram_button(int(person), prefix) if channel == "telegram"
                     else self.whatsapp_button(person, prefix))
            if found is not None or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.05)

    def telegram_button(self, user_id: int, prefix: str) -> str | None:
        """The data of the latest button sent to the person whose data starts with `prefix`."""
        for call in reversed(self.telegram.calls_of("sendMessage", user_id)):
            for row in (call.params.get("reply_markup") or {}).get("inline_keyboard", []):
                for button in row:
                    if str(button.get("callback_data", "")).startswith(prefix):
                        return str(button["callback_data"])
        return None

    def whatsapp_button(self, wa_id: str, prefix: str) -> str | None:
        """The id of the latest reply button or list row sent to the person whose id starts
        with `prefix`."""
        for call in reversed(self.whatsapp.messages(wa_id, "interactive")):
            ids = [button_id for button_id, _title in call.buttons]
            ids += [row_id for row_id, _title, _description in call.rows]
            for choice_id in ids:
                if choice_id.startswith(prefix):
                    return choice_id
        return None

    def telegram_buttons(self, user_id: int) -> list[tuple[str, str]]:
        """(data, label) of the buttons of the last message with buttons."""
        for call in reversed(self.telegram.calls_of("sendMessage", user_id)):
            markup = call.params.get("reply_markup")
            if markup:
                return [(button["callback_data"], button["text"])
                        for row in markup["inline_keyboard"] for button in row]
        return []

    def whatsapp_buttons(self, wa_id: str) -> list[tuple[str, str]]:
        interactive = self.whatsapp.messages(wa_id, "interactive")
        return list(interactive[-1].buttons) if interactive else []

    # ---- the tally --------------------------------------------------------------------------

    def tally(self, since: float = 0.0, until: float | None = None) -> Tally:
        """Each update sent in [since, until): answered, answered twice, or not at all. An
        update's answer is what reached its person after it was sent and before their next."""
        tally = Tally()
        by_person: dict[tuple[str, str], list[Update]] = {}
        for update in self.updates:
            by_person.setdefault((update.channel, update.person), []).append(update)
        for (channel, person), updates in by_person.items():
            received = self.answers(channel, person)
            for index, update in enumerate(updates):
                following = updates[index + 1].first_try if index + 1 < len(updates) else None
                window = [(at, text) for at, text in received if at >= update.first_try
                          and (following is None or at < following)]
                update.answer = [text for _at, text in window]
                update.answered_at = window[0][0] if window else None
                if update.first_try < since or (until is not None and update.first_try >= until):
                    continue
                tally.count(update)
        return tally


@dataclass
class Tally:
    """Updates in, answered once, answered more than once (the repeated ones), never answered."""

    sent: int = 0
    accepted: int = 0
    answered: int = 0
    duplicated: list[Update] = field(default_factory=list)
    lost: list[Update] = field(default_factory=list)
    apologized: list[Update] = field(default_factory=list)
    """Answered with an apology (busy, briefly unavailable) instead of what was asked."""
    throttled: list[Update] = field(default_factory=list)
    """Answered with the flood protection's notice: the person wrote faster than people do."""
    updates: list[Update] = field(default_factory=list)

    def count(self, update: Update) -> None:
        self.updates.append(update)
        self.sent += 1
        if update.accepted is not None:
            self.accepted += 1
        if not update.answer:
            self.lost.append(update)
            return
        self.answered += 1
        if repeated(update.answer):
            self.duplicated.append(update)
        if any(words in text for text in update.answer for words in APOLOGIES):
            self.apologized.append(update)
        if any(words in text for text in update.answer for words in FLOOD_NOTICES):
            self.throttled.append(update)

    def line(self) -> str:
        return (f"updates in {self.accepted} (sent {self.sent}), answered {self.answered} "
                f"({len(self.apologized)} with an apology), lost {len(self.lost)}, "
                f"duplicated {len(self.duplicated)}"
                + (f", flood notices {len(self.throttled)}" if self.throttled else ""))


def repeated(texts: list[str]) -> bool:
    """Whether an answer holds the same block of messages twice in a row (sent twice)."""
    for size in range(1, len(texts) // 2 + 1):
        for start in range(len(texts) - 2 * size + 1):
            if texts[start:start + size] == texts[start + size:start + 2 * size]:
                return True
    return False


class Deployment:
    """Servers, fakes, proxy and processes; `async with Deployment() as deployment:`."""

    def __init__(self, bots: int = 2, workers: int = 2, telegram_rate: float = 30.0,
                 whatsapp_rate: int = 80, extra_env: dict[str, str] | None = None) -> None:
        self.bot_count = bots
        self.worker_count = workers
        self.telegram_rate = telegram_rate
        self.whatsapp_rate = whatsapp_rate
        self.extra_env = extra_env or {}
        self.folder = Path(tempfile.mkdtemp(prefix="tadamon-deploy-"))
        self.redis: RunningServer | None = None
        self.postgres: RunningServer | None = None
        self.telegram = FakeTelegram()
        self.whatsapp = FakeWhatsApp()
        self.bots: list[Process] = []
        self.workers: list[Process] = []
        self.proxy = Proxy(self.bots)
        self.app: App | None = None

    @property
    def whatsapp_webhook(self) -> str:
        return f"{self.proxy.url}/whatsapp/webhook"

    @property
    def processes(self) -> list[Process]:
        return [*self.bots, *self.workers]

    def env(self, **more: str) -> dict[str, str]:
        """The processes' environment: only this deployment's TADAMON_ variables."""
        assert self.redis is not None and self.postgres is not None
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("TADAMON_")}
        env.update({
            "PYTHONPATH": str(ROOT),
            "TADAMON_DATABASE_URL": self.postgres.url,
            "TADAMON_REDIS_URL": self.redis.url,
            "TADAMON_TELEGRAM_TOKEN": self.telegram.token,
            "TADAMON_TELEGRAM_API_BASE": self.telegram.base_url,
            "TADAMON_TELEGRAM_WEBHOOK_URL": f"{self.proxy.url}/telegram/webhook",
            "TADAMON_TELEGRAM_RATE": repr(self.telegram_rate),
            "TADAMON_WHATSAPP_TOKEN": self.whatsapp.token,
            "TADAMON_WHATSAPP_PHONE_NUMBER_ID": self.whatsapp.phone_number_id,
            "TADAMON_WHATSAPP_APP_SECRET": self.whatsapp.app_secret,
            "TADAMON_WHATSAPP_VERIFY_TOKEN": self.whatsapp.verify_token,
            "TADAMON_WHATSAPP_API_BASE": self.whatsapp.base_url,
            "TADAMON_WHATSAPP_RATE": str(self.whatsapp_rate),
            "TADAMON_QUIET_HOURS": "off",
            **self.extra_env,
            **more,
        })
        return env

    async def __aenter__(self) -> Deployment:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Servers and fakes, the database migrated and loaded once, then the processes."""
        redis, postgres = await asyncio.gather(
            asyncio.to_thread(start_redis, self.folder, appendonly=True),
            asyncio.to_thread(start_postgres, self.folder))
        self.redis, self.postgres = redis, postgres
        await self.telegram.start()
        await self.whatsapp.start()
        await self.proxy.start()
        # The database is migrated and the sample fair loaded here, once, as an operator
        # would before starting the processes (`tadamon import`): they never race to do it.
        # (Not App.prepare: this process never reads a message, it needs no classifier.)
        self.app = App(Settings(_env_file=None, database_url=postgres.url,
                                redis_url=redis.url))
        await database.upgrade(self.app.db)
        await import_catalogue(self.app.sessions, sample_catalogue())
        for index in range(self.bot_count):
            port = free_port()
            self.bots.append(Process(f"bot{index + 1}", ["run", "--no-worker"],
                                     self.env(TADAMON_HTTP_PORT=str(port)), self.folder, port))
        self.proxy.forwarded.update({process.name: 0 for process in self.bots})
        for index in range(self.worker_count):
            self.workers.append(Process(f"worker{index + 1}", ["worker"],
                                        self.env(TADAMON_HTTP_PORT=str(free_port())),
                                        self.folder))
        for process in self.processes:
            process.start()
        await asyncio.gather(*(self.ready(process) for process in self.bots))
        await self.telegram.wait_for("setWebhook", count=self.bot_count, timeout=600)

    async def ready(self, process: Process, timeout: float = 600.0) -> None:  # noqa: ASYNC109
        """Wait until a bot process answers /healthz (and its webhook routes with it)."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as client:
            while time.monotonic() < deadline:
                if not process.alive:
                    raise RuntimeError(f"{process.name} exited:\n{process.log()[-3000:]}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with client.get(f"http://127.0.0.1:{process.port}/healthz") as answer:
                        if answer.status == 200:
                            return
                await asyncio.sleep(0.2)
        raise RuntimeError(f"{process.name} not ready in {timeout:.0f} s:\n"
                           f"{process.log()[-3000:]}")

    async def restart(self, process: Process) -> None:
        """Start a stopped or killed process again (and wait until it serves, for a bot)."""
        process.start()
        if process.port is not None and process in self.bots:
            await self.ready(process)

    async def close(self) -> None:
        await asyncio.gather(*(process.stop() for process in self.processes))
        if self.app is not None:
            await self.app.close()
        await self.proxy.close()
        await self.telegram.close()
        await self.whatsapp.close()
        for server in (self.redis, self.postgres):
            if server is not None:
                await asyncio.to_thread(server.stop)
        shutil.rmtree(self.folder, ignore_errors=True)

    # ---- what the operator does -------------------------------------------------------------

    async def add_contacts(self, telegram: Iterable[int], whatsapp: Iterable[str]) -> None:
        """People who wrote to the bot earlier today (WhatsApp: inside the 24-hour window)."""
        assert self.app is not None
        now = dt.datetime.now(dt.UTC)
        rows = [{"channel": "telegram", "user_id": str(user), "language": "fr",
                 "last_inbound_at": now} for user in telegram]
        rows += [{"channel": "whatsapp", "user_id": wa_id, "language": "ar",
                  "last_inbound_at": now} for wa_id in whatsapp]
        if rows:
            async with self.app.sessions() as session, session.begin():
                await session.execute(insert(Contact), rows)

    async def broadcast(self, text_fr: str, text_ar: str) -> int:
        """`tadamon broadcast --audience all ... --yes`: queued for every contact; its id."""
        process = await asyncio.create_subprocess_exec(
            *TADAMON, "broadcast", "--audience", "all", "--text-fr", f"{BROADCAST_MARK} {text_fr}",
            "--text-ar", f"{BROADCAST_MARK} {text_ar}", "--yes", "--urgent",
            env=self.env(), cwd=self.folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await process.communicate()
        found = re.search(r"\d+", out.decode())
        if process.returncode != 0 or found is None:
            raise RuntimeError(f"tadamon broadcast failed: {out.decode()}{err.decode()}")
        return int(found.group())

    async def broadcast_progress(self, broadcast_id: int) -> dict[str, int]:
        assert self.app is not None
        return await Outbox(self.app.sessions).progress(broadcast_id)

    async def broadcast_recipients(self, broadcast_id: int) -> list[tuple[str, str]]:
        """(channel, user id) of everyone the broadcast was queued for."""
        assert self.app is not None
        async with self.app.sessions() as session:
            rows = await session.execute(
                select(Contact.channel, Contact.user_id).join(
                    OutboxMessage, OutboxMessage.contact_id == Contact.id)
                .where(OutboxMessage.broadcast_id == broadcast_id))
            return [(channel, user_id) for channel, user_id in rows.all()]

    async def wait_broadcast(self, broadcast_id: int, timeout: float = 300.0) -> dict[str, int]:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while True:
            try:
                progress = await self.broadcast_progress(broadcast_id)
            except Exception:  # PostgreSQL restarting: ask again
                progress = {"pending": 1}
            if progress.get("pending", 0) + progress.get("sending", 0) == 0:
                return progress
            if time.monotonic() > deadline:
                return progress
            await asyncio.sleep(0.25)

    def broadcast_deliveries(self) -> dict[tuple[str, str], int]:
        """How many broadcast messages reached each person, at the fakes."""
        counts: dict[tuple[str, str], int] = {}
        for call in self.telegram.calls:
            if call.method in SENT_TO_PEOPLE and call.status == 200 \
                    and BROADCAST_MARK in (call.text or ""):
                key = ("telegram", str(call.params.get("chat_id")))
                counts[key] = counts.get(key, 0) + 1
        for wa_call in self.whatsapp.messages():
            if wa_call.status == 200 and BROADCAST_MARK in (wa_call.text or "") \
                    and wa_call.to is not None:
                key = ("whatsapp", wa_call.to)
                counts[key] = counts.get(key, 0) + 1
        return counts

    async def set_capacity(self, key: str, capacity: int) -> int:
        """The workshop `key` with room for `capacity` people; its id."""
        from sqlalchemy import update

        assert self.app is not None
        async with self.app.sessions() as session, session.begin():
            await session.execute(update(Workshop).where(Workshop.key == key)
                                  .values(capacity=capacity))
            workshop_id = await session.scalar(select(Workshop.id).where(Workshop.key == key))
        await self.app.catalogue_changed()
        assert workshop_id is not None
        return workshop_id

    async def registrations(self, workshop_id: int) -> dict[tuple[str, str], RegistrationStatus]:
        """(channel, user id) -> status of everyone registered for the workshop."""
        assert self.app is not None
        async with self.app.sessions() as session:
            rows = await session.execute(
                select(Contact.channel, Contact.user_id, Registration.status)
                .join(Contact, Contact.id == Registration.contact_id)
                .where(Registration.workshop_id == workshop_id))
            return {(channel, user_id): status for channel, user_id, status in rows.all()}

    def problems(self) -> dict[str, list[str]]:
        return {process.name: process.problems() for process in self.processes
                if process.problems()}


# ---- the scenario: people chatting, a broadcast, a registration race -------------------------

SENTENCES = (
    ("fr", "je voudrais voir le programme des ateliers"),
    ("ar", "fin kayn l3sel"),
    ("fr", "où sont les toilettes ?"),
    ("ar", "فين كاين العسل؟"),
    ("en", "where is the prayer room?"),
    ("ar", "أين يوجد موقف السيارات؟"),
    ("fr", "A12"),
    ("fr", "merci"),
)
"""What visitors write: French, Darija in Latin and Arabic letters, Arabic, English, a stand."""
RACE_SENTENCES = (
    "/start ws_{key}",
    "je voudrais m'inscrire à l'atelier Techniques de marketing de dimanche",
    "بغيت نتسجل فورشة تقنيات التسويق نهار الأحد",
)
CONFIRMED_WORDS = ("Inscription confirmée", "تم تسجيلك", "You are registered", "already registered",
                   "déjà inscrit", "مسجل")
WAITING_WORDS = ("attente", "الانتظار", "waiting list")
TELEGRAM_PEOPLE = 700_000_000
WHATSAPP_PEOPLE = 212_600_000_000


def telegram_person(group: int, index: int) -> int:
    return TELEGRAM_PEOPLE + group * 100_000 + index


def whatsapp_person(group: int, index: int) -> str:
    return str(WHATSAPP_PEOPLE + group * 100_000 + index)


async def chatter(visitors: Visitors, channel: str, person: int | str, rounds: int,
                  start: int = 0, stop: asyncio.Event | None = None) -> None:
    """One person writing `rounds` sentences one after the other (for ever until `stop`,
    if given), each once the previous one is answered and read (READING seconds)."""
    for turn in itertools.count():
        if (stop is None and turn >= rounds) or (stop is not None and stop.is_set()):
            return
        if turn:
            await asyncio.sleep(READING)
        language, text = SENTENCES[(start + turn) % len(SENTENCES)]
        if channel == "telegram":
            await visitors.telegram_says(int(person), text, language)
        else:
            await visitors.whatsapp_says(str(person), text)


def answer_kind(texts: list[str]) -> str:
    """What an answer to "register" says: confirmed, waiting, or something else."""
    joined = "\n".join(texts)
    if any(word in joined for word in WAITING_WORDS):
        return "waiting"
    if any(word in joined for word in CONFIRMED_WORDS):
        return "confirmed"
    return "other"


@dataclass
class Race:
    """A registration race: more people than seats tapping "register" at once."""

    capacity: int
    people: int
    confirmed: int = 0
    waiting: int = 0
    other_status: int = 0
    no_button: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    """People whose answer says otherwise than what is stored."""

    @property
    def exact(self) -> bool:
        return (self.confirmed <= self.capacity and self.confirmed + self.waiting == self.people
                and self.confirmed == min(self.capacity, self.people) and not self.mismatched
                and not self.no_button)

    def line(self) -> str:
        return (f"{self.people} people for {self.capacity} seats: {self.confirmed} confirmed, "
                f"{self.waiting} on the waiting list, {self.other_status} other, "
                f"{len(self.mismatched)} told otherwise than stored, "
                f"{len(self.no_button)} without a register button: "
                f"{'exact' if self.exact else 'NOT exact'}")


async def registration_race(deployment: Deployment, visitors: Visitors, telegram: int,
                            whatsapp: int, capacity: int, key: str = "marketing-1") -> Race:
    """People open the workshop's card in the chat (Telegram deep link, WhatsApp in French or
    Darija), then all tap its register button at once; their answers are checked against
    what is stored."""
    workshop_id = await deployment.set_capacity(key, capacity)
    people: list[tuple[str, str]] = [("telegram", str(telegram_person(1, i)))
                                     for i in range(telegram)]
    people += [("whatsapp", whatsapp_person(1, i)) for i in range(whatsapp)]
    race = Race(capacity, len(people))

    async def open_card(index: int, channel: str, person: str) -> str | None:
        if channel == "telegram":
            await visitors.telegram_says(int(person), RACE_SENTENCES[0].format(key=key))
        else:
            await visitors.whatsapp_says(person, RACE_SENTENCES[1 + index % 2])
        # The card's buttons come with its last message, which a loaded machine may send
        # later than the pause that ends an answer: a person taps once they see it.
        return await visitors.button(channel, person, f"reg:{workshop_id}")

    buttons = await asyncio.gather(*(open_card(index, channel, person)
                                     for index, (channel, person) in enumerate(people)))

    async def tap(channel: str, person: str, button: str | None) -> list[str]:
        if button is None:
            race.no_button.append(f"{channel}:{person}")
            return []
        if channel == "telegram":
            return await visitors.telegram_taps(int(person), button)
        return await visitors.whatsapp_taps(person, button)

    answers = await asyncio.gather(*(tap(channel, person, button)
                                     for (channel, person), button in zip(people, buttons,
                                                                          strict=True)))
    stored = await deployment.registrations(workshop_id)
    for (channel, person), answer in zip(people, answers, strict=True):
        status = stored.get((channel, person))
        if status is RegistrationStatus.CONFIRMED:
            race.confirmed += 1
            expected = "confirmed"
        elif status is RegistrationStatus.WAITLISTED:
            race.waiting += 1
            expected = "waiting"
        else:
            race.other_status += 1
            expected = "none"
        if answer and answer_kind(answer) != expected:
            race.mismatched.append(f"{channel}:{person} stored {expected}, told {answer!r}")
    return race


@dataclass
class BroadcastCheck:
    """Every recipient of a broadcast got it exactly once, at the fakes."""

    broadcast_id: int
    recipients: int
    progress: dict[str, int]
    missing: list[str] = field(default_factory=list)
    repeated: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return not self.missing and not self.repeated and self.recipients > 0

    def line(self) -> str:
        return (f"broadcast {self.broadcast_id} to {self.recipients} people in "
                f"{self.seconds:.1f} s: {self.recipients - len(self.missing)} got it, "
                f"{len(self.missing)} missing, {len(self.repeated)} got it more than once "
                f"(outbox: {self.progress})")


async def check_broadcast(deployment: Deployment, broadcast_id: int, queued_at: float,
                          timeout: float = 300.0) -> BroadcastCheck:  # noqa: ASYNC109
    """Wait for the broadcast to be sent, then count what reached each recipient."""
    progress = await deployment.wait_broadcast(broadcast_id, timeout)
    seconds = time.monotonic() - queued_at
    await asyncio.sleep(0.5)  # the last answers of the fakes are recorded
    recipients = await deployment.broadcast_recipients(broadcast_id)
    got = deployment.broadcast_deliveries()
    check = BroadcastCheck(broadcast_id, len(recipients), progress, seconds=seconds)
    for channel, person in recipients:
        count = got.get((channel, person), 0)
        if count == 0:
            check.missing.append(f"{channel}:{person}")
        elif count > 1:
            check.repeated.append(f"{channel}:{person} x{count}")
    return check


@dataclass
class Scenario:
    """What one run of the scenario found."""

    tally: Tally
    race: Race
    broadcast: BroadcastCheck
    seconds: float


async def scenario(deployment: Deployment, *, chatters: int, rounds: int, race_people: int,
                   capacity: int, broadcast_extra: int) -> Scenario:
    """People chatting on both platforms, while a broadcast to every contact goes out and
    more people than seats register for one workshop at once."""
    visitors = Visitors(deployment)
    await deployment.add_contacts(
        (telegram_person(2, i) for i in range(broadcast_extra)),
        (whatsapp_person(2, i) for i in range(broadcast_extra // 3)))
    started = time.monotonic()
    broadcast_id = await deployment.broadcast(
        "La remise des prix commence à 17 h sous le grand chapiteau.",
        "يبدأ حفل توزيع الجوائز على الساعة 17 تحت الخيمة الكبرى.")
    talk = [chatter(visitors, "telegram", telegram_person(0, i), rounds, start=i)
            for i in range(chatters)]
    talk += [chatter(visitors, "whatsapp", whatsapp_person(0, i), rounds, start=i + 3)
             for i in range(chatters)]
    racing = asyncio.create_task(registration_race(
        deployment, visitors, race_people - race_people // 2, race_people // 2, capacity))
    sending = asyncio.create_task(check_broadcast(deployment, broadcast_id, started))
    await asyncio.gather(*talk)
    race, broadcast = await racing, await sending
    return Scenario(visitors.tally(), race, broadcast, time.monotonic() - started)
