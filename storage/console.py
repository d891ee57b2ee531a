"""The organizer console's records: accounts, signed-in sessions, the audit log, and the
counting of failed sign-ins. Passwords arrive here already hashed (argon2, in bot/console)."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import logging
import math
import secrets
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import delete, select

from storage import keys
from storage.cooperatives import GIVE_BACK_ATTEMPT, TAKE_ATTEMPT
from storage.models import AuditEntry, ConsoleAccount, ConsoleSession, utcnow
from storage.repositories import Sessions

log = logging.getLogger(__name__)

SESSION_LIFETIME = dt.timedelta(hours=12)
TOKEN_BYTES = 32
EMAIL_MAX = 254
# Who did something from the command line (`tadamon admin add`), in the audit log.
COMMAND_LINE = "command line"


class ConsoleRole(enum.StrEnum):
    """A viewer sees; an organizer also imports, broadcasts, cancels and exports."""

    VIEWER = "viewer"
    ORGANIZER = "organizer"


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    email: str
    role: ConsoleRole
    created_at: dt.datetime
    last_login_at: dt.datetime | None

    @property
    def organizer(self) -> bool:
        return self.role == ConsoleRole.ORGANIZER


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A console session recognised from its cookie: who, and the session's own token hash."""

    account: Account
    token_hash: str


@dataclass(frozen=True, slots=True)
class Audit:
    id: int
    at: dt.datetime
    actor: str
    action: str
    subject: str
    detail: str


def normalize_email(email: str) -> str:
    """Emails compare without case or surrounding spaces."""
    return email.strip().lower()


def token_hash(token: str) -> str:
    return hashlib.sha256(b"tadamon console session\0" + token.encode()).hexdigest()


def _account(row: ConsoleAccount) -> Account:
    return Account(row.id, row.email, ConsoleRole(row.role), row.created_at, row.last_login_at)


class ConsoleAccounts:
    """Accounts of the organizer console and their sessions."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def add(self, email: str, role: ConsoleRole, password_hash: str) -> bool:
        """Create the account, or give an existing one this role and password (and sign it out
        everywhere); True when it was created."""
        email = normalize_email(email)
        async with self.sessions() as session, session.begin():
            row = (await session.scalars(
                select(ConsoleAccount).where(ConsoleAccount.email == email))).first()
            if row is None:
                session.add(ConsoleAccount(email=email, role=role.value,
                                           password_hash=password_hash, created_at=utcnow()))
                return True
            row.role, row.password_hash = role.value, password_hash
            await session.execute(delete(ConsoleSession)
                                  .where(ConsoleSession.account_id == row.id))
            return False

    async def remove(self, email: str) -> bool:
        """Delete the account and its sessions; False when there was none."""
        async with self.sessions() as session, session.begin():
            row = (await session.scalars(select(ConsoleAccount).where(
                ConsoleAccount.email == normalize_email(email)))).first()
            if row is None:
                return False
            await session.execute(delete(ConsoleSession)
                                  .where(ConsoleSession.account_id == row.id))
            await session.delete(row)
            return True

    async def all(self) -> list[Account]:
        async with self.sessions() as session:
            rows = await session.scalars(select(ConsoleAccount).order_by(ConsoleAccount.email))
            return [_account(row) for row in rows]

    async def credentials(self, email: str) -> tuple[Account, str] | None:
        """The account of an email and its password hash, to check a sign-in."""
        async with self.sessions() as session:
            row = (await session.scalars(select(ConsoleAccount).where(
                ConsoleAccount.email == normalize_email(email)))).first()
            return None if row is None else (_account(row), row.password_hash)

    async def rehash(self, account_id: int, password_hash: str) -> None:
        """Store a password's new hash (argon2's parameters were raised since)."""
        async with self.sessions() as session, session.begin():
            row = await session.get(ConsoleAccount, account_id)
            if row is not None:
                row.password_hash = password_hash

    async def open_session(self, account_id: int,
                           lifetime: dt.timedelta = SESSION_LIFETIME) -> str:
        """A new session for a signed-in account; its token goes in the cookie, only its hash
        is kept. Expired sessions of anyone are cleared on the way."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = utcnow()
        async with self.sessions() as session, session.begin():
            await session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
            session.add(ConsoleSession(token_hash=token_hash(token), account_id=account_id,
                                       created_at=now, expires_at=now + lifetime))
            row = await session.get(ConsoleAccount, account_id)
            if row is not None:
                row.last_login_at = now
        return token

    async def signed_in(self, token: str) -> SignedIn | None:
        """Who a cookie's token belongs to, while its session lasts."""
        if not token or len(token) > 100:
            return None
        hashed = token_hash(token)
        async with self.sessions() as session:
            row = (await session.execute(
                select(ConsoleAccount).join(ConsoleSession,
                                            ConsoleSession.account_id == ConsoleAccount.id)
                .where(ConsoleSession.token_hash == hashed,
                       ConsoleSession.expires_at > utcnow()))).scalars().first()
            return None if row is None else SignedIn(_account(row), hashed)

    async def close_session(self, hashed: str) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(delete(ConsoleSession)
                                  .where(ConsoleSession.token_hash == hashed))


class AuditLog:
    """Who did what, when: written for every action of the console and of `tadamon admin`."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def write(self, actor: str, action: str, subject: str = "", detail: str = "") -> None:
        async with self.sessions() as session, session.begin():
            session.add(AuditEntry(at=utcnow(), actor=actor[:EMAIL_MAX], action=action[:40],
                                   subject=subject[:200], detail=detail[:4000]))

    async def recent(self, limit: int = 100, before: int | None = None) -> list[Audit]:
        """The latest entries, newest first."""
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if before is not None:
            query = query.where(AuditEntry.id < before)
        async with self.sessions() as session:
            return [Audit(row.id, row.at, row.actor, row.action, row.subject, row.detail)
                    for row in await session.scalars(query)]


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """Whether a password may be checked now; when not, the minutes before it may, or Redis
    did not answer (`unavailable`): nothing can be counted, so nothing is checked."""

    allowed: bool
    counters: tuple[str, ...] = ()
    retry_minutes: int = 0
    unavailable: bool = False


def _hashed(kind: bytes, value: str) -> str:
    return hashlib.sha256(b"tadamon console " + kind + b"\0" + value.encode()).hexdigest()[:32]


class LoginLimits:
    """Failed sign-ins counted per account and per client address (keys.CONSOLE_LOGIN_*):
    every attempt is counted before its password is checked and given back when it was right,
    so no more than the limit of wrong passwords is ever checked in a window."""

    def __init__(self, redis: Redis) -> None:
        self._take = redis.register_script(TAKE_ATTEMPT)
        self._give_back = redis.register_script(GIVE_BACK_ATTEMPT)

    async def take(self, email: str, client: str) -> LoginAttempt:
        counters = [keys.console_login_failures_of_account(_hashed(b"account",
                                                                   normalize_email(email))),
                    keys.console_login_failures_of_client(_hashed(b"client", client))]
        try:
            hit, left, refused = await self._take(
                keys=counters, args=[keys.CONSOLE_LOGIN_WINDOW * 1000,
                                     keys.CONSOLE_LOGIN_ACCOUNT_LIMIT,
                                     keys.CONSOLE_LOGIN_CLIENT_LIMIT])
        except RedisError:
            log.exception("redis unavailable: console sign-ins cannot be counted, none is "
                          "checked")
            return LoginAttempt(allowed=False, unavailable=True)
        if int(hit) == 0:
            return LoginAttempt(allowed=True, counters=tuple(counters))
        minutes = max(1, math.ceil(int(left) / 60_000))
        if int(refused) == 1:
            log.warning("too many failed console sign-ins for this %s: none is checked for "
                        "%d min", "account" if int(hit) == 1 else "address", minutes)
        return LoginAttempt(allowed=False, retry_minutes=minutes)

    async def give_back(self, attempt: LoginAttempt) -> None:
        """The password was right: the attempt does not count against anyone."""
        if not attempt.counters:
            return
        try:
            await self._give_back(keys=list(attempt.counters))
        except RedisError:
            log.warning("redis unavailable: a right sign-in stays counted")
