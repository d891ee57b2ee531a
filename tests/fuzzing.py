"""Fuzzing shared by tests/test_fuzz.py and bench/fuzz.py: Hypothesis strategies of what the
outside world may send (Telegram updates, WhatsApp webhook bodies, web chat requests, catalogue
files), the targets they are sent to (a running app behind the fake platforms), and the checks
made after each case: no 5xx, no error logged, every message sent accepted by the platform, and
the invariants of the records (seats, ratings, opt-outs)."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import functools
import io
import itertools
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp.test_utils import TestServer
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from bot.app import App
from bot.catalogue import SHEET_COLUMNS, import_catalogue, load_catalogue_file
from bot.channels.telegram import SECRET_HEADER, TelegramChannel
from bot.channels.whatsapp import WhatsAppChannel
from bot.errors import CatalogueError
from bot.http import make_web_app
from bot.worker import OutboxWorker
from storage.models import Contact, Feedback, Registration, RegistrationStatus, Workshop
from storage.outbox import Outbox
from storage.repositories import Sessions
from tests.fakes.telegram import FakeTelegram
from tests.fakes.whatsapp import FakeWhatsApp
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "bot" / "data" / "sample-fair.yaml"
SAMPLE_DATA: dict[str, Any] = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
WORKSHOP_IDS = [item["id"] for item in SAMPLE_DATA["workshops"]]
OPEN_WORKSHOP_IDS = [item["id"] for item in SAMPLE_DATA["workshops"]
                     if item.get("audience", "all") == "all"]
STAND_NUMBERS = [item["number"] for item in SAMPLE_DATA["stands"]]
# Small seats, so that a few fuzzed people fill workshops, wait, get offers and cancel.
FUZZ_CAPACITY = 2
AppFactory = Callable[..., Awaitable[App]]

# ---- text ------------------------------------------------------------------------------------

PHRASES = [
    "/start", "/menu", "/lang", "/workshops", "/stands", "/my", "/feedback", "/stop", "/help",
    "/broadcast", "/stats", "/start feedback", "/start stand_A12", "/start stand_Z99",
    "/start coop_ABC123", "/start ws_", "/start@tadamon_test_bot", "/START", "/start  ",
    "bonjour", "Bonjour, où est le stand A12 ?", "السلام عليكم", "salam", "slm cv",
    "menu", "القائمة", "stop", "arrêt", "توقف", "STOP", "start", "avis", "رأيي", "aide",
    "help", "A12", "a 12", "A١٢", "STAND A12", "stand b7", "ateliers", "الورشات",
    "inscription", "je veux m'inscrire à l'atelier", "bghit ntsajel f atelier",
    "wach kayn atelier had sba7", "فين التواليت؟", "où sont les toilettes", "parking",
    "merci", "شكرا", "miel", "zarbia", "l3sel", "huile d'argan", "زيت أركان", "mes ateliers",
    "annuler", "oui", "non", "نعم", "لا", "1", "5", "★★★★★", "English", "العربية", "Français",
    "I want to register for a workshop", "where is the prayer room?", "effacer mes données",
    "privacy", "demain", "aujourd'hui", "غدا", "samedi", "13 décembre", "coopérative",
]
EMOJI = ["😀", "👍🏽", "🇲🇦", "❤️", "👨‍👩‍👧", "🫶", "⭐", "🙏", "\u200f", "\u202e", "\ufeff"]
# Letters of the scripts people write in, marks, digits of both kinds, and the troublesome
# rest: controls, bidi controls, lone surrogates, the private use area, non-characters.
ALPHABET = st.one_of(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),
    st.characters(min_codepoint=0x0600, max_codepoint=0x06FF),
    st.characters(min_codepoint=0xC0, max_codepoint=0x17F),
    st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF),
    st.sampled_from(list("\x00\x07\x1b\r\n\t\x85\u2028\u2066\u2069\u200d\ufffd\uffff\ud800")),
    st.characters(),
)
RANDOM_TEXT = st.text(ALPHABET, max_size=60)


def _huge(n: int) -> str:
    return ("ورشة A12 " * (n // 9 + 1))[:n]


TEXTS = st.one_of(
    st.sampled_from(PHRASES),
    st.sampled_from(WORKSHOP_IDS).map(lambda key: f"/start ws_{key}"),
    st.sampled_from(STAND_NUMBERS).map(lambda number: f"/start stand_{number}"),
    st.sampled_from(STAND_NUMBERS),
    st.tuples(st.sampled_from(PHRASES), st.sampled_from(EMOJI), RANDOM_TEXT).map(" ".join),
    RANDOM_TEXT,
    st.just(""),
    st.just(" "),
    st.integers(1000, 9000).map(_huge),
    st.text(ALPHABET, min_size=200, max_size=2500),
)

JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), RANDOM_TEXT,
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(RANDOM_TEXT, inner, max_size=4)),
    max_leaves=12,
)
BUTTON_PREFIXES = [
    "m", "lang", "resume", "menu", "zone", "fv", "st", "nb", "map", "mapw", "more", "sv",
    "unsv", "regx", "ics", "reg", "unreg", "offer", "offer:yes", "offer:no", "wsd", "ws",
    "wst", "wsl", "fbs", "rate", "fb:skip", "fbw", "svy", "svy:s", "pl", "plw", "why", "stats",
    "bc:cancel", "bc:aud", "bc:wss", "bc:ws", "bc:now", "bc:confirm", "wa:more", "xyz",
]
FIELD = st.one_of(
    st.integers(-5, 10**25).map(str), st.sampled_from(WORKSHOP_IDS), st.sampled_from(
        STAND_NUMBERS), st.sampled_from(["", "²", "١٢", "yes", "no", "fr", "ar", "zz", "0",
                                         "-1", "1e3", "nan", " ", "\n"]),
    st.text(ALPHABET, max_size=8),
)
FORGED_CHOICES = st.one_of(
    st.tuples(st.sampled_from(BUTTON_PREFIXES), st.lists(FIELD, max_size=4)).map(
        lambda parts: ":".join([parts[0], *parts[1]])),
    st.text(ALPHABET, max_size=70),
)
LANGUAGE_CODES = st.one_of(st.none(), st.sampled_from(["fr", "ar", "en", "ar-MA", "fr-FR", "zz",
                                                       "", "EN", "x" * 40]), RANDOM_TEXT)

# ---- mutations of well-formed bodies ---------------------------------------------------------


@dataclass(frozen=True)
class Mutation:
    """One change to a JSON document, resolved against its paths when applied."""

    op: str  # delete | replace | wrap | extra
    where: int
    value: Any = None


MUTATIONS = st.lists(st.builds(Mutation, st.sampled_from(["delete", "replace", "wrap", "extra"]),
                               st.integers(0, 10_000), JSON_VALUES), max_size=3)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(node, dict):
        for key in node:
            found.extend(_paths(node[key], (*path, key)))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found.extend(_paths(item, (*path, index)))
    return found


def _renamed(node: Any, old: str, new: str) -> Any:
    """Every text equal to `old` (or ending with `:old`, as `workshop:ID`) made `new`: an id
    renamed with its references."""
    if isinstance(node, dict):
        return {key: _renamed(value, old, new) for key, value in node.items()}
    if isinstance(node, list):
        return [_renamed(item, old, new) for item in node]
    if node == old:
        return new
    if isinstance(node, str) and node.endswith(f":{old}"):
        return node[:-len(old)] + new
    return node


def mutate(document: Any, mutations: Sequence[Mutation]) -> Any:
    """The document with each mutation applied to one of its places (a copy)."""
    document = json.loads(json.dumps(document))
    for mutation in mutations:
        paths = _paths(document)
        if not paths:
            return document
        path = paths[mutation.where % len(paths)]
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        if mutation.op == "delete":
            del parent[last]
        elif mutation.op == "replace":
            parent[last] = mutation.value
        elif mutation.op == "wrap":
            parent[last] = [parent[last]]
        elif mutation.op == "rename":
            if isinstance(parent[last], str) and isinstance(mutation.value, str):
                document = _renamed(document, parent[last], mutation.value)
        elif isinstance(parent, dict):
            parent[f"x_{mutation.where}"] = mutation.value
        else:
            parent.append(mutation.value)
    return document


# ---- what a case is made of -------------------------------------------------------------------


@dataclass(frozen=True)
class Say:
    """A person writes a text."""

    user: int
    text: str
    language: str | None = "fr"


@dataclass(frozen=True)
class Tap:
    """A person taps one of the buttons the bot last showed them: the first whose id begins
    with `prefix`, if any, else the one at `index` (modulo)."""

    user: int
    index: int
    prefix: str = ""

    def pick(self, choices: Sequence[str], default: str) -> str:
        if self.prefix:
            for choice in choices:
                if choice.startswith(self.prefix):
                    return choice
        return choices[self.index % len(choices)] if choices else default


@dataclass(frozen=True)
class Rush:
    """People open the same workshop's card, then tap the same kind of button at once."""

    users: tuple[int, ...]
    workshop: str
    prefix: str


@dataclass(frozen=True)
class Forged:
    """A person sends a button id the bot never showed."""

    user: int
    choice: str


@dataclass(frozen=True)
class Other:
    """Anything else a platform may send, built from `kind` and `detail` when sent."""

    user: int
    kind: str
    detail: Any = None
    mutations: tuple[Mutation, ...] = ()


@dataclass(frozen=True)
class Raw:
    """A body posted as it is (bytes), with `auth` saying how it is signed or authorized."""

    body: bytes
    auth: str = "good"


@dataclass(frozen=True)
class Huge:
    """A JSON body of `size` bytes, past every route's limit."""

    size: int
    auth: str = "good"

    @property
    def body(self) -> io.BytesIO:
        # A stream: aiohttp warns (an error in the tests) about large bytes sent at once.
        return io.BytesIO(b"{" + b" " * (self.size - 2) + b"}")


USERS = st.integers(0, 5)


def _actions(other: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    action = st.one_of(
        st.builds(Say, USERS, TEXTS, LANGUAGE_CODES),
        st.builds(Say, USERS, st.one_of(
            st.sampled_from(WORKSHOP_IDS).map(lambda key: f"/start ws_{key}"),
            st.sampled_from(["avis", "/feedback", "stop", "/start", "/my", "ateliers"]))),
        st.builds(Tap, USERS, st.integers(0, 40)),
        st.builds(Tap, USERS, st.integers(0, 40)),
        st.builds(Forged, USERS, FORGED_CHOICES),
        st.builds(Rush, st.lists(USERS, min_size=2, max_size=6, unique=True).map(tuple),
                  st.sampled_from(OPEN_WORKSHOP_IDS[:3]), st.sampled_from(["reg:", "unreg:",
                                                                       "offer:", "regx:"])),
        other,
    )
    return st.lists(action, min_size=1, max_size=8)


RAW_BODIES = st.one_of(
    st.binary(max_size=200),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    st.sampled_from([b"", b"{", b"null", b"[]", b"{}", b'{"update_id": 1}', b"\xff\xfe",
                     b"[" * 100_000, b'{"a":' * 5000, b'"\\ud800"', b"NaN", b"1e999999"]),
)

TELEGRAM_OTHER = st.one_of(
    st.builds(Other, USERS, st.sampled_from([
        "edited", "member_kicked", "member_back", "reaction", "future_kind", "channel_post",
        "group", "supergroup", "sticker", "voice", "location", "contact", "photo", "no_from",
        "entities", "reply", "inline_tap", "empty_tap", "poll", "migrate"]),
        st.one_of(TEXTS, JSON_VALUES, st.floats()), MUTATIONS.map(tuple)),
    st.builds(Raw, RAW_BODIES, st.sampled_from(["good", "good", "none", "wrong"])),
    st.builds(Huge, st.just(1024 * 1024 + 10)),
    st.builds(Other, USERS, st.just("update"), st.just(None), MUTATIONS.map(tuple)),
)
TELEGRAM_CASES = _actions(TELEGRAM_OTHER)

WHATSAPP_OTHER = st.one_of(
    st.builds(Other, USERS, st.sampled_from([
        "location", "image", "audio", "voice", "video", "document", "sticker", "reaction",
        "edit", "revoke", "unsupported", "system", "status", "status_failed", "error",
        "button", "list_forged", "group", "bsuid", "no_sender", "other_number", "contacts",
        "order", "many"]),
        st.one_of(TEXTS, JSON_VALUES, st.floats()), MUTATIONS.map(tuple)),
    st.builds(Other, USERS, st.just("text"), TEXTS, MUTATIONS.map(tuple)),
    # A message whose own part (its text, location...) is any JSON value.
    st.builds(Other, USERS, st.sampled_from([
        "shape_text", "shape_interactive", "shape_location", "shape_button", "shape_system",
        "shape_unsupported", "shape_image", "shape_reaction"]), JSON_VALUES),
    st.builds(Raw, RAW_BODIES, st.sampled_from(["good", "none", "wrong", "sha1", "garbage",
                                                "empty"])),
    st.builds(Huge, st.just(3 * 1024 * 1024 + 10)),
)
WHATSAPP_CASES = _actions(WHATSAPP_OTHER)

WEB_OTHER = st.one_of(
    st.builds(Other, USERS, st.sampled_from(["start", "choice_any", "text_any", "extra",
                                             "no_session", "bad_session", "lang", "id",
                                             "id_again", "inbox", "both"]),
              st.one_of(TEXTS, JSON_VALUES)),
    st.builds(Raw, RAW_BODIES, st.sampled_from(["json", "json", "text/plain", "foreign"])),
    st.builds(Huge, st.just(20_000), st.just("json")),
)
WEB_CASES = _actions(WEB_OTHER)

# ---- what was found ----------------------------------------------------------------------------


@dataclass
class Findings:
    """What the cases of one target gave: statuses, and every problem seen."""

    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    exceptions: int = 0
    violations: int = 0

    def fail(self, message: str) -> None:
        self.problems.append(message)


class ErrorLog(logging.Handler):
    """Keeps the records at ERROR and above (a logged traceback is a failure)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def take(self) -> list[str]:
        found = [f"{record.name}: {record.getMessage()}"
                 + (f" [{record.exc_info[0].__name__}: {record.exc_info[1]}]"
                    if record.exc_info and record.exc_info[0] else "")
                 for record in self.records]
        self.records.clear()
        return found


async def invariants(app: App) -> list[str]:
    """The records' invariants: seats within capacity, one rating per person, target and day."""
    broken: list[str] = []
    async with app.sessions() as session:
        confirmed = (select(Registration.workshop_id, func.count().label("n"))
                     .where(Registration.status == RegistrationStatus.CONFIRMED)
                     .group_by(Registration.workshop_id).subquery())
        for key, capacity, count in await session.execute(
                select(Workshop.key, Workshop.capacity, confirmed.c.n)
                .join(confirmed, confirmed.c.workshop_id == Workshop.id)
                .where(confirmed.c.n > Workshop.capacity)):
            broken.append(f"workshop {key}: {count} confirmed for {capacity} seats")
        for contact, kind, key, day, count in await session.execute(
                select(Feedback.contact_id, Feedback.target_kind, Feedback.target_key,
                       Feedback.day, func.count())
                .where(Feedback.rating.is_not(None))
                .group_by(Feedback.contact_id, Feedback.target_kind, Feedback.target_key,
                          Feedback.day)
                .having(func.count() > 1)):
            broken.append(f"contact {contact}: {count} ratings of {kind} {key} on {day}")
    return broken


async def small_workshops(app: App) -> None:
    """Every workshop gets FUZZ_CAPACITY seats, so that fuzzed people fill them."""
    async with app.sessions() as session, session.begin():
        await session.execute(update(Workshop).values(capacity=FUZZ_CAPACITY))
    await app.state.bump_catalogue_version()


async def opted_out(app: App, channel: str) -> set[str]:
    async with app.sessions() as session:
        return set(await session.scalars(select(Contact.user_id).where(
            Contact.channel == channel, Contact.opted_out.is_(True))))


async def broadcast(app: App, text: str) -> None:
    """A broadcast to everyone, due now, sent by a worker to its end."""
    fair = await app.engine.catalogue.fair()
    assert fair is not None
    now = dt.datetime.now(dt.UTC)
    await Outbox(app.sessions).queue_broadcast(fair.id, "all", {"fr": text, "ar": text}, now)
    await OutboxWorker(app, clock=lambda: now + dt.timedelta(minutes=1)).drain()


_markers = itertools.count(1)


def next_marker() -> str:
    """A text no one writes: the one of the broadcast being checked."""
    return f"Fuzz broadcast {next(_markers)} 7Q"


def app_settings(**extra: Any) -> dict[str, Any]:
    """Settings every fuzzed app gets: no quiet hours (the final broadcast goes at once)."""
    return {"quiet_hours": "off", "web_sessions_per_minute": 1_000_000,
            "telegram_rate": 100_000, "whatsapp_rate": 100_000,
            "organizers": "telegram:1000,whatsapp:212600000100", **extra}


# ---- Telegram ------------------------------------------------------------------------------------

TELEGRAM_STATUSES = {200, 400, 401, 413}


class TelegramTarget:
    """The app's Telegram channel in webhook mode, fed through the fake Bot API."""

    def __init__(self, fake: FakeTelegram, app: App, channel: TelegramChannel,
                 server: TestServer, url: str) -> None:
        self.fake, self.app, self.channel, self.server, self.url = fake, app, channel, server, url
        self.http = aiohttp.ClientSession()
        self.seen_calls = 0

    @classmethod
    async def start(cls, make_app: AppFactory, **options: Any) -> TelegramTarget:
        fake = FakeTelegram()
        await fake.start()
        port = free_port()
        url = f"http://127.0.0.1:{port}/telegram/webhook"
        app = await make_app(**app_settings(telegram_token=fake.token,
                                            telegram_api_base=fake.base_url,
                                            telegram_webhook_url=url, **options))
        server = TestServer(make_web_app(app), port=port)
        await server.start_server()
        await app.start_channels()
        channel = app.channels[0]
        assert isinstance(channel, TelegramChannel)
        await fake.wait_for("setWebhook")
        await small_workshops(app)
        return cls(fake, app, channel, server, url)

    async def close(self) -> None:
        await self.http.close()
        await self.app.stop_channels()
        await self.server.close()
        await self.fake.close()

    @staticmethod
    def user_id(user: int) -> int:
        return 1000 + user

    def buttons(self, chat: int) -> tuple[int, list[str]]:
        for call in reversed(self.fake.calls_of("sendMessage", chat)):
            markup = call.params.get("reply_markup")
            if markup and call.result:
                return int(call.result["message_id"]), [
                    button["callback_data"] for row in markup["inline_keyboard"] for button in row]
        return 1, []

    def build(self, action: Other) -> dict[str, Any]:
        fake, user = self.fake, self.user_id(action.user)
        text = action.detail if isinstance(action.detail, str) else "bonjour"
        kind = action.kind
        bot = fake.bot_user
        if kind == "edited":
            update = fake.message(user, text)
            update["edited_message"] = {**update.pop("message"), "edit_date": 1}
        elif kind in ("member_kicked", "member_back"):
            status = "kicked" if kind == "member_kicked" else "member"
            update = {"update_id": fake.next_update_id(), "my_chat_member": {
                "chat": {"id": user, "type": "private", "first_name": "Amina"},
                "from": fake._user(user, "Amina", "fr"), "date": 1,
                "old_chat_member": {"status": "member", "user": bot},
                "new_chat_member": ({"status": status, "user": bot, "until_date": 0}
                                    if status == "kicked" else {"status": status,
                                                                "user": bot})}}
        elif kind == "reaction":
            update = {"update_id": fake.next_update_id(), "message_reaction": {
                "chat": {"id": user, "type": "private"}, "message_id": 1, "date": 1,
                "user": fake._user(user, "Amina", "fr"), "old_reaction": [],
                "new_reaction": [{"type": "emoji", "emoji": "👍"}]}}
        elif kind == "future_kind":
            update = {"update_id": fake.next_update_id(), "guest_message": action.detail}
        elif kind == "channel_post":
            update = {"update_id": fake.next_update_id(), "channel_post": {
                "message_id": 5, "date": 1, "text": text,
                "chat": {"id": -1001234, "type": "channel", "title": "ESS"}}}
        elif kind in ("group", "supergroup"):
            update = fake.message(user, text, chat_type=kind)
        elif kind == "sticker":
            update = fake.message(user, None, sticker={
                "file_id": "s1", "file_unique_id": "u1", "type": "regular", "width": 512,
                "height": 512, "is_animated": False, "is_video": False})
        elif kind == "voice":
            update = fake.message(user, None, voice={"file_id": "v", "file_unique_id": "v",
                                                     "duration": 3})
        elif kind == "location":
            numbers = action.detail if isinstance(action.detail, float) else 33.0
            update = fake.message(user, None, location={"latitude": numbers,
                                                        "longitude": -numbers})
        elif kind == "contact":
            update = fake.message(user, None, contact={"phone_number": "+212600000000",
                                                       "first_name": text or "x"})
        elif kind == "photo":
            update = fake.message(user, None, caption=text, photo=[{
                "file_id": "p", "file_unique_id": "p", "width": 90, "height": 90}])
        elif kind == "poll":
            update = fake.message(user, None, dice={"emoji": "🎲", "value": 3})
        elif kind == "no_from":
            update = fake.message(user, text)
            del update["message"]["from"]
        elif kind == "entities":
            update = fake.message(user, text, entities=[
                {"type": "bot_command", "offset": 0, "length": 10_000},
                {"type": "text_link", "offset": 2, "length": 3, "url": "javascript:alert(1)"},
                {"type": "custom_emoji", "offset": -4, "length": 1, "custom_emoji_id": "1"}])
        elif kind == "reply":
            update = fake.message(user, text, reply_to_message={
                "message_id": 1, "date": 1, "chat": {"id": user, "type": "private"},
                "text": "…"}, forward_origin={"type": "hidden_user", "date": 1,
                                              "sender_user_name": "x"})
        elif kind == "inline_tap":
            update = fake.callback(user, text[:64] or "m:menu", inline_message_id="AAE")
        elif kind == "empty_tap":
            update = fake.callback(user, "")
            del update["callback_query"]["data"]
        elif kind == "migrate":
            update = fake.message(user, None, chat_type="group", migrate_to_chat_id=-1009)
        else:
            update = fake.message(user, text)
        return mutate(update, action.mutations) if action.mutations else update

    async def post(self, raw: bytes | io.BytesIO, auth: str) -> int:
        headers = {"Content-Type": "application/json"}
        if auth == "good":
            headers[SECRET_HEADER] = self.app.settings.telegram_webhook_secret.get_secret_value()
        elif auth == "wrong":
            headers[SECRET_HEADER] = "wrong-secret"
        async with self.http.post(self.url, data=raw, headers=headers) as response:
            await response.read()
            return response.status

    async def step(self, action: Any) -> tuple[int, set[int]]:
        """Send one action; (the HTTP status of the webhook's answer, the statuses allowed)."""
        fake = self.fake
        if isinstance(action, Say):
            user = self.user_id(action.user)
            return await fake.push(fake.message(user, action.text,
                                                language_code=action.language)), {200}
        if isinstance(action, Tap):
            user = self.user_id(action.user)
            message_id, data = self.buttons(user)
            choice = action.pick(data, "m:menu")
            return await fake.push(fake.callback(user, choice, message_id=message_id)), {200}
        if isinstance(action, Forged):
            return await fake.push(fake.callback(self.user_id(action.user),
                                                 action.choice)), {200, 400}
        if isinstance(action, Huge):
            return await refused_early(self.post(action.body, action.auth))
        if isinstance(action, Raw):
            allowed = {401} if action.auth != "good" else {200, 400, 413}
            return await self.post(action.body, action.auth), allowed
        update = self.build(action)
        return await self.post(json.dumps(update).encode(), "good"), (
            {200, 400} if action.mutations else {200})

    async def run(self, actions: Sequence[Any], findings: Findings, errors: ErrorLog) -> None:
        """Send the actions, each answered before the next; record what went wrong."""
        await run_case(self, actions, findings, errors)

    def refused(self) -> list[str]:
        """The bot's calls the fake Bot API refused since last asked (a bug of ours)."""
        calls = self.fake.calls[self.seen_calls:]
        self.seen_calls = len(self.fake.calls)
        return [f"Bot API refused {call.summary()}" for call in calls
                if call.status >= 400 and call.method != "answerCallbackQuery"]

    async def idle(self) -> None:
        await self.channel.idle()

    async def opted_out_reached(self) -> list[str]:
        """A broadcast to all: none of it may reach someone who opted out."""
        marker = next_marker()
        before = len(self.fake.calls)
        await broadcast(self.app, marker)
        out = await opted_out(self.app, "telegram")
        reached = {str(call.chat_id) for call in self.fake.calls[before:]
                   if marker in (call.text or "")}
        return [f"broadcast sent to telegram:{user}, who opted out" for user in reached & out]


async def refused_early(request: Awaitable[int]) -> tuple[int, set[int]]:
    """The status of a body past the limit: 413, or 0 when the server answered 413 and closed
    the connection before the client finished sending (as aiohttp does)."""
    try:
        return await request, {413, 0}
    except aiohttp.ClientError:
        return 0, {413, 0}


async def run_case(target: Any, actions: Sequence[Any], findings: Findings,
                   errors: ErrorLog) -> None:
    """One case against a target: every action sent and answered, then the checks."""
    findings.cases += 1
    for action in actions:
        if isinstance(action, Rush):
            await rush(target, action, findings)
            continue
        try:
            status, allowed = await target.step(action)
        except Exception as exc:  # the fuzzer's own request failed: the server went away
            findings.exceptions += 1
            findings.fail(f"request failed: {type(exc).__name__}: {exc} <- {_short(action)}")
            continue
        findings.statuses[status] += 1
        await target.idle()
        if status not in allowed:
            findings.fail(f"HTTP {status}, expected one of {sorted(allowed)} <- {_short(action)}")
    logged = errors.take()
    findings.exceptions += len(logged)
    findings.problems.extend(f"logged {line} <- {_short(actions)}" for line in logged)
    refused = target.refused()
    findings.problems.extend(f"{line} <- {_short(actions)}" for line in refused)
    broken = await invariants(target.app)
    findings.violations += len(broken)
    findings.problems.extend(broken)


async def rush(target: Any, action: Rush, findings: Findings) -> None:
    """Everyone opens the card (twice: a newcomer is welcomed first), one after the other;
    then they all tap at once."""
    steps = [Say(user, f"/start ws_{action.workshop}") for user in action.users for _ in "12"]
    taps = [Tap(user, 0, action.prefix) for user in action.users]
    for step in steps:
        findings.statuses[(await target.step(step))[0]] += 1
        await target.idle()
    answers = await asyncio.gather(*(target.step(tap) for tap in taps), return_exceptions=True)
    await target.idle()
    for tap, answer in zip(taps, answers, strict=True):
        if isinstance(answer, BaseException):
            findings.exceptions += 1
            findings.fail(f"request failed: {type(answer).__name__}: {answer} <- {tap!r}")
        else:
            findings.statuses[answer[0]] += 1
            if answer[0] not in answer[1]:
                findings.fail(f"HTTP {answer[0]}, expected one of {sorted(answer[1])} <- {tap!r}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 600 else text[:600] + "…"


# ---- WhatsApp ------------------------------------------------------------------------------------


class WhatsAppTarget:
    """The app's WhatsApp channel, fed signed (or forged) webhooks like Meta's."""

    def __init__(self, fake: FakeWhatsApp, app: App, channel: WhatsAppChannel,
                 server: TestServer, url: str) -> None:
        self.fake, self.app, self.channel, self.server, self.url = fake, app, channel, server, url
        self.seen_calls = 0

    @classmethod
    async def start(cls, make_app: AppFactory, **options: Any) -> WhatsAppTarget:
        fake = FakeWhatsApp()
        await fake.start()
        app = await make_app(**app_settings(
            whatsapp_token=fake.token, whatsapp_phone_number_id=fake.phone_number_id,
            whatsapp_app_secret=fake.app_secret, whatsapp_verify_token=fake.verify_token,
            whatsapp_api_base=fake.base_url, **options))
        server = TestServer(make_web_app(app), port=free_port())
        await server.start_server()
        await app.start_channels()
        channel = app.channels[0]
        assert isinstance(channel, WhatsAppChannel)
        await small_workshops(app)
        return cls(fake, app, channel, server, str(server.make_url("/whatsapp/webhook")))

    async def close(self) -> None:
        await self.app.stop_channels()
        await self.server.close()
        await self.fake.close()

    @staticmethod
    def wa_id(user: int) -> str:
        return f"2126000001{user:02d}"

    def options(self, wa_id: str) -> tuple[str, list[str]]:
        interactive = self.fake.messages(wa_id, "interactive")
        if not interactive:
            return "button", []
        last = interactive[-1]
        kind = (last.interactive or {}).get("type") or "button"
        return kind, [key for key, _title in last.buttons] or [row[0] for row in last.rows]

    def build(self, action: Other) -> dict[str, Any]:
        fake, wa_id, kind = self.fake, self.wa_id(action.user), action.kind
        text = action.detail if isinstance(action.detail, str) else "bonjour"
        number = action.detail if isinstance(action.detail, float) else 32.88
        if kind == "text":
            envelope = fake.text_message(wa_id, text)
        elif kind.startswith("shape_"):
            envelope = fake.text_message(wa_id, "x")
            message = fake.value_of(envelope)["messages"][0]
            del message["text"]
            message["type"] = kind.removeprefix("shape_")
            message[message["type"]] = action.detail
        elif kind == "location":
            envelope = fake.location_message(wa_id, number, -number, place=text)
        elif kind in ("image", "audio", "voice", "video", "document", "sticker"):
            envelope = fake.media_message(wa_id, kind, caption=text, content=b"x")
        elif kind == "reaction":
            envelope = fake.reaction(wa_id, fake.wamid(wa_id, outbound=True), text[:2])
        elif kind == "edit":
            envelope = fake.edit(wa_id, fake.wamid(wa_id), text)
        elif kind == "revoke":
            envelope = fake.revoke(wa_id, fake.wamid(wa_id))
        elif kind == "unsupported":
            envelope = fake.unsupported(wa_id, text[:20] or None)
        elif kind == "system":
            envelope = fake.system_message(wa_id, new_wa_id="212600000999")
        elif kind in ("status", "status_failed"):
            sent = [call.message_id for call in fake.messages(wa_id) if call.message_id]
            wamid = sent[-1] if sent else fake.wamid(wa_id, outbound=True)
            envelope = fake.status(wamid, "failed" if kind == "status_failed" else
                                   (text if text in ("sent", "delivered", "read") else "read"),
                                   wa_id)
        elif kind == "error":
            envelope = fake.envelope(errors=[fake.webhook_error(130429)])
        elif kind == "button":
            envelope = fake.text_message(wa_id, text)
            message = fake.value_of(envelope)["messages"][0]
            message["type"] = "button"
            message["button"] = {"text": text, "payload": text}
        elif kind == "list_forged":
            envelope = fake.list_reply(wa_id, text[:200] or "wa:more:1")
        elif kind == "group":
            envelope = fake.text_message(wa_id, text, group_id="120363000000000001")
        elif kind == "bsuid":
            envelope = fake.text_message(None, text, user_id=f"MA.{action.user}ABCDEF")
        elif kind == "no_sender":
            envelope = fake.text_message(wa_id, text)
            del fake.value_of(envelope)["messages"][0]["from"]
        elif kind == "other_number":
            envelope = fake.text_message(wa_id, text, phone_number_id="999999")
        elif kind == "contacts":
            envelope = fake.text_message(wa_id, text)
            message = fake.value_of(envelope)["messages"][0]
            message["type"] = "contacts"
            message["contacts"] = [{"name": {"formatted_name": text}}]
        elif kind == "order":
            envelope = fake.text_message(wa_id, text)
            message = fake.value_of(envelope)["messages"][0]
            message["type"] = "order"
            message["order"] = {"catalog_id": "1", "product_items": [action.detail]}
        else:  # many messages of several people in one body
            envelope = fake.text_message(wa_id, text)
            value = fake.value_of(envelope)
            for other in range(3):
                more = fake.value_of(fake.text_message(self.wa_id(other), "salam"))
                value["messages"].extend(more["messages"])
                value["contacts"].extend(more["contacts"])
        return mutate(envelope, action.mutations) if action.mutations else envelope

    async def step(self, action: Any) -> tuple[int, set[int]]:
        fake = self.fake
        if isinstance(action, Say):
            wa_id = self.wa_id(action.user)
            return await fake.post_webhook(self.url, fake.text_message(wa_id, action.text)), {200}
        if isinstance(action, Tap):
            wa_id = self.wa_id(action.user)
            kind, options = self.options(wa_id)
            choice = action.pick(options, "menu")
            envelope = (fake.button_reply(wa_id, choice) if kind == "button"
                        else fake.list_reply(wa_id, choice))
            return await fake.post_webhook(self.url, envelope), {200}
        if isinstance(action, Forged):
            envelope = fake.button_reply(self.wa_id(action.user), action.choice)
            return await fake.post_webhook(self.url, envelope), {200}
        if isinstance(action, Huge):
            return await refused_early(self.post_huge(action))
        if isinstance(action, Raw):
            return await self.post_raw(action)
        envelope = self.build(action)
        return await fake.post_webhook(self.url, envelope), (
            {200, 400} if action.mutations else {200})

    async def post_huge(self, action: Huge) -> int:
        raw = action.body.getvalue()
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": self.fake.sign(raw)}
        async with aiohttp.ClientSession() as http, http.post(
                self.url, data=io.BytesIO(raw), headers=headers) as response:
            return response.status

    async def post_raw(self, action: Raw) -> tuple[int, set[int]]:
        signature: Any
        if action.auth == "good":
            return await self.fake.post_webhook(self.url, {}, raw=action.body), {200, 400, 413}
        signature = {"none": None, "wrong": "wrong", "sha1": self.fake.sign_sha1(action.body),
                     "garbage": "sha256=" + "zz" * 32, "empty": ""}[action.auth]
        status = await self.fake.post_webhook(self.url, {}, raw=action.body, signature=signature)
        return status, {401, 403, 413}

    def refused(self) -> list[str]:
        calls = self.fake.calls[self.seen_calls:]
        self.seen_calls = len(self.fake.calls)
        return [f"Graph API refused {call.summary()}" for call in calls if call.status >= 400]

    async def idle(self) -> None:
        await self.channel.idle()

    async def opted_out_reached(self) -> list[str]:
        marker = next_marker()
        before = len(self.fake.calls)
        await broadcast(self.app, marker)
        out = await opted_out(self.app, "whatsapp")
        reached = {str(call.to) for call in self.fake.calls[before:]
                   if marker in (call.text or "")}
        return [f"broadcast sent to whatsapp:{user}, who opted out" for user in reached & out]


# ---- web chat -----------------------------------------------------------------------------------

WEB_STATUSES = {200, 400, 401, 403, 409, 413, 415}


class WebTarget:
    """The web chat's JSON API, driven as browsers (and others) would."""

    def __init__(self, app: App, server: TestServer) -> None:
        self.app, self.server = app, server
        self.http = aiohttp.ClientSession()
        self.tokens: dict[int, str] = {}
        self.last: dict[int, list[str]] = {}
        self.used_ids: dict[int, str] = {}

    @classmethod
    async def start(cls, make_app: AppFactory, **options: Any) -> WebTarget:
        app = await make_app(**app_settings(**options))
        server = TestServer(make_web_app(app), port=free_port())
        await server.start_server()
        await small_workshops(app)
        return cls(app, server)

    async def close(self) -> None:
        await self.http.close()
        await self.server.close()

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def session(self, user: int) -> str:
        if user not in self.tokens:
            async with self.http.post(self.url("/chat/api/sessions"), json={}) as response:
                self.tokens[user] = str((await response.json())["session"])
        return self.tokens[user]

    async def post(self, user: int | None, body: bytes | io.BytesIO,
                   content_type: str = "application/json",
                   headers: dict[str, str] | None = None) -> int:
        sent = {"Content-Type": content_type, **(headers or {})}
        async with self.http.post(self.url("/chat/api/messages"), data=body,
                                  headers=sent) as response:
            status = response.status
            answer = await response.json(content_type=None)
        if not isinstance(answer, dict):
            raise AssertionError(f"answer is not a JSON object: {answer!r}")
        if user is not None and status == 200:
            self.last[user] = [choice["id"] for reply in answer["replies"]
                               for choice in reply["choices"]]
        return status

    async def send(self, user: int, fields: dict[str, Any]) -> int:
        body = {"session": await self.session(user), **fields}
        return await self.post(user, json.dumps(body).encode())

    async def step(self, action: Any) -> tuple[int, set[int]]:
        if isinstance(action, Say):
            extra = {"lang": action.language} if action.language else {}
            return await self.send(action.user, {"text": action.text, **extra}), WEB_STATUSES
        if isinstance(action, Tap):
            choice = action.pick(self.last.get(action.user) or [], "menu")
            return await self.send(action.user, {"choice": choice}), {200}
        if isinstance(action, Forged):
            return await self.send(action.user, {"choice": action.choice}), {200, 400}
        if isinstance(action, Huge):
            return await refused_early(self.post(None, action.body))
        if isinstance(action, Raw):
            content_type = "application/json" if action.auth in ("json", "foreign") else \
                action.auth
            headers = {"Origin": "https://evil.example"} if action.auth == "foreign" else None
            return await self.post(None, action.body, content_type, headers), WEB_STATUSES
        return await self.other(action)

    async def other(self, action: Other) -> tuple[int, set[int]]:
        user, detail, kind = action.user, action.detail, action.kind
        if kind == "inbox":
            token = await self.session(user) if isinstance(detail, str) else str(detail)[:300]
            async with self.http.get(self.url("/chat/api/inbox"),
                                     params={"session": token}) as response:
                await response.read()
                return response.status, WEB_STATUSES
        fields: dict[str, Any] = {
            "start": {"start": detail}, "choice_any": {"choice": detail},
            "text_any": {"text": detail}, "extra": {"text": "menu", "x": detail},
            "lang": {"text": "bonjour", "lang": detail}, "id": {"text": "A12", "id": detail},
            "both": {"text": detail, "choice": "m:menu", "start": "stand_A12"},
        }.get(kind, {"text": "bonjour"})
        if kind == "id_again":
            fields = {"text": "A12", "id": self.used_ids.setdefault(user, f"m{user}")}
        if kind == "no_session":
            return await self.post(user, json.dumps({"text": detail}).encode()), WEB_STATUSES
        if kind == "bad_session":
            body = {"session": detail, "text": "bonjour"}
            return await self.post(user, json.dumps(body).encode()), WEB_STATUSES
        return await self.send(user, fields), WEB_STATUSES

    def refused(self) -> list[str]:
        return []

    async def idle(self) -> None:
        return None

    async def opted_out_reached(self) -> list[str]:
        """A broadcast to all: no opted-out web chat person finds it in their inbox."""
        marker = next_marker()
        await broadcast(self.app, marker)
        reached: list[str] = []
        for user, token in self.tokens.items():
            async with self.http.get(self.url("/chat/api/inbox"),
                                     params={"session": token}) as response:
                body = await response.json()
            if any(marker in reply["text"] for reply in body["replies"]):
                reached.append(user)  # type: ignore[arg-type]
        out = await opted_out(self.app, "web")
        from storage.websessions import public_id
        return [f"broadcast kept for web person {user}, who opted out" for user in reached
                if public_id(self.tokens[int(user)]) in out]


# ---- catalogue files ----------------------------------------------------------------------------

SECTIONS = ["fair", "categories", "stands", "exhibitors", "workshops", "places", "info",
            "reminders"]


@dataclass(frozen=True)
class CatalogueCase:
    """A catalogue file: the sample fair cut down and mutated, a sheet, or any text."""

    kind: str  # yaml | csv | text
    content: str
    suffix: str


@functools.cache
def _small_sample(keep: int) -> str:
    """The sample fair with `keep` items per section, as JSON text (copied for each case)."""
    data = dict(SAMPLE_DATA)
    for section in SECTIONS[1:]:
        if isinstance(data.get(section), list):
            data[section] = data[section][:keep]
    return json.dumps(data, default=str)


def _sample_yaml(keep_mutations: tuple[int, tuple[Mutation, ...]]) -> CatalogueCase:
    keep, mutations = keep_mutations
    data = mutate(json.loads(_small_sample(keep)), mutations)
    try:
        text = yaml.dump(data, Dumper=yaml.CSafeDumper, allow_unicode=True)
    except UnicodeEncodeError:
        # A lone surrogate, which the C emitter cannot write: the Python one writes it as a
        # "\uD9E9" escape, which YAML reads back as that surrogate (a file may say it so).
        text = yaml.dump(data, Dumper=yaml.SafeDumper, allow_unicode=True)
    return CatalogueCase("yaml", text, ".yaml")


CELLS = st.one_of(st.sampled_from(["", "A12", "Z9", "40", "-1", "4.5", "abc", "2026-12-13T10:00",
                                   "2026-12-13", "13/12/2026 10h", "oui", "نعم", "coop-x",
                                   "ar+fr", "all", "=1+1", "Salle 1", "١٢", "1e9"]),
                  RANDOM_TEXT)


@st.composite
def _sheet(draw: st.DrawFn) -> CatalogueCase:
    kind = draw(st.sampled_from(list(SHEET_COLUMNS)))
    columns = list(SHEET_COLUMNS[kind])
    columns = draw(st.one_of(st.just(columns), st.permutations(columns),
                             st.lists(st.sampled_from([*columns, "zz", "", "name_en"]),
                                      max_size=12)))
    rows = draw(st.lists(st.lists(CELLS, min_size=0, max_size=len(columns) + 2), max_size=6))
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(columns)
    writer.writerows(rows)
    return CatalogueCase("csv", out.getvalue(), f"{kind}.csv")


# Values at the edges of what the catalogue format allows, or just past them.
EDGES = st.sampled_from([
    "x" * 100, "x" * 101, "a" + "-" * 99, "A" + "9" * 99, "ABC9999", "ABCD1", "A 0012", "a١٢",
    "10:00" + " " * 40 + "-20:00", "10:00-20:00\n", "25:00-99:99", "00:00-00:00",
    "2026-02-30", "9999-12-31T23:59", "0001-01-01T00:00", "2026-12-13T10:00+14:00",
    "2026-12-13T10:00-12:00", "2026-12-13T10:00Z", "2026-W50", "Z" * 2001, " " * 3, "\u200f",
    "+212 600-000-000 00", "workshop:" + "w" * 90, "lang:en", "Etc/GMT+12", "UTC", "../etc",
    100_000, 100_001, -1, 0, 2**63, 1e308, 0.5, True, None, [], {}, {"fr": "x"},
    {"fr": "x", "ar": "س", "en": "y"}, {"fr": " ", "ar": "س"},
])
EDGE_MUTATIONS = st.lists(st.builds(
    Mutation, st.sampled_from(["replace", "rename", "replace", "extra"]), st.integers(0, 10_000),
    EDGES), min_size=1, max_size=4)

CATALOGUES = st.one_of(
    st.tuples(st.integers(1, 2), EDGE_MUTATIONS.map(tuple)).map(_sample_yaml),
    st.tuples(st.integers(1, 2), MUTATIONS.map(tuple)).map(_sample_yaml),
    st.tuples(st.integers(1, 2), st.lists(st.builds(
        Mutation, st.sampled_from(["delete", "replace", "wrap", "extra"]), st.integers(0, 10_000),
        st.one_of(JSON_VALUES, CELLS)), min_size=1, max_size=6).map(tuple)).map(_sample_yaml),
    _sheet(),
    st.builds(CatalogueCase, st.just("text"), st.text(ALPHABET, max_size=300),
              st.sampled_from([".yaml", ".yml", "workshops.csv", "stands.csv", ".csv"])),
    st.builds(CatalogueCase, st.just("text"), st.sampled_from([
        "fair: [", "- a\n- b", "a: !!python/object:os.system ls", "&a [*a]", "{", "\t- x",
        "fair: {id: x}\nfair: {id: y}", "\x00", "\ufeffnumber,zone_fr\nA1,x", "---\n...\n",
        "a: &x {b: *x}", "number;zone_fr;zone_ar;x;y\nA1;z;ز;1;1\nA1;z;ز;1;1",
        "id,title_fr,title_ar,room_fr,room_ar,starts,ends,capacity\n"
        "w,t,ت,r,ر,2026-12-13T10:00,2026-12-13T09:00,5"]),
        st.sampled_from([".yaml", ".csv", "workshops.csv", "stands.csv"])),
)


def write_case(case: CatalogueCase, folder: Path, number: int) -> Path:
    path = folder / f"c{number}{'-' if not case.suffix.startswith('.') else ''}{case.suffix}"
    path.write_bytes(case.content.encode("utf-8", "surrogatepass"))
    return path


def load_case(case: CatalogueCase, folder: Path, number: int) -> str:
    """Read a catalogue case: "loaded", or "refused" with CatalogueError; anything else raises."""
    path = write_case(case, folder, number)
    try:
        load_catalogue_file(path)
    except CatalogueError as exc:
        _clear(exc, path)
        return "refused"
    return "loaded"


async def import_case(sessions: Sessions, case: CatalogueCase, folder: Path,
                      number: int) -> str:
    """Import a catalogue case into a database as `tadamon import` does: "imported", or
    "refused" with CatalogueError; anything else raises."""
    path = write_case(case, folder, number)
    try:
        await import_catalogue(sessions, path)
    except CatalogueError as exc:
        _clear(exc, path)
        return "refused"
    return "imported"


def _clear(error: CatalogueError, path: Path) -> None:
    """A catalogue error must be one line naming the file (and the place)."""
    message = str(error)
    if not message.startswith(path.name) or "\n" in message:
        raise AssertionError(f"unclear catalogue error: {message!r}")

