"""Database engine, sessions and migrations (SQLite embedded, PostgreSQL in production)."""

from __future__ import annotations

import ast
import asyncio
import logging
import re
import sqlite3
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

# aiosqlite's DEBUG lines write out every statement with its values (phone numbers, names,
# messages): they stay off whatever level the root logger is given, as SQLAlchemy does for its
# own statements, unless someone asks for them by name.
if logging.getLogger("aiosqlite").level == logging.NOTSET:
    logging.getLogger("aiosqlite").setLevel(logging.INFO)

DATABASE_ERRORS = (SQLAlchemyError, OSError, TimeoutError)
"""What a database outage looks like to the code that calls it."""

MIGRATIONS = Path(__file__).with_name("migrations")
# `revision = "0012"` and `down_revision = "0011"` (or None, or a tuple), as Alembic writes them.
_REVISION_LINE = re.compile(r"^(revision|down_revision)\b[^=\n]*=\s*(.+?)\s*$", re.MULTILINE)


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine tuned for the backend: WAL, foreign keys and a busy timeout on SQLite.
    Its errors never quote a statement's values (a phone number, a message): they are logged."""
    if url.startswith("sqlite"):
        # One connection: SQLite has one writer anyway, and queueing for the connection in
        # asyncio is far cheaper than SQLite's busy-wait sleeps when writers collide.
        engine = create_async_engine(url, connect_args={"timeout": 30}, pool_size=1,
                                     max_overflow=0, pool_timeout=60, hide_parameters=True)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            _use_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800,
        hide_parameters=True,
    )


def _use_wal(cursor: Any) -> None:
    """Switch the file to WAL, retrying while another connection switches a new file too."""
    for attempt in range(100):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            # Two first connections to a new file both need its exclusive lock for the switch;
            # SQLite answers "locked" at once there (no busy wait) to avoid a deadlock.
            if attempt == 99:
                raise
            time.sleep(0.01)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration pointing at our migrations, without an alembic.ini file."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest migration's revision, read from the text of the migration files: Alembic's
    machinery (with Mako and Pygments under it, about 11 MB) is imported only when there is
    something to migrate. None when the files do not name a single head plainly."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        fields = dict(_REVISION_LINE.findall(path.read_text(encoding="utf-8")))
        try:
            revision = ast.literal_eval(fields["revision"])
            parent = ast.literal_eval(fields.get("down_revision", "None"))
        except (KeyError, ValueError, SyntaxError):
            return None
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        parents.update((parent,) if isinstance(parent, str) else parent or ())
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


async def _stored_revisions(engine: AsyncEngine) -> set[str] | None:
    """The revisions the database says it is at; None before its first migration."""
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT version_num FROM alembic_version"))
            return set(rows.scalars())
    except SQLAlchemyError:  # no such table: a new database (any other trouble shows below)
        return None


async def is_current(engine: AsyncEngine) -> bool:
    """True when the database is at the head revision (one query; Alembic is not imported)."""
    head = head_revision()
    return head is not None and await _stored_revisions(engine) == {head}


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply pending migrations (idempotent; safe to call at every start)."""
    if revision == "head" and await is_current(engine):
        return

    def _run(connection: Connection) -> None:
        from alembic import command

        command.upgrade(alembic_config(connection), revision)

    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # Two processes starting together must not both migrate.
            await connection.execute(text("SELECT pg_advisory_xact_lock(7207461)"))
        elif engine.dialect.name == "sqlite":
            # pysqlite opens no transaction before DDL: take the write lock now, so the
            # migration is atomic and a second process waits for it instead of racing.
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
        await connection.run_sync(_run)


async def ping(engine: AsyncEngine) -> bool:
    """True when the database answers a trivial query within two seconds."""
    try:
        async with asyncio.timeout(2), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:  # any failure means "not healthy"; the cause is logged
        log.warning("database ping failed", exc_info=True)
        return False
    return True


async def _upgrade_url(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    # `python -m storage.database`, the URL on standard input (not in the process list): the
    # migrations of a serving process, applied in a process of their own (bot/cli/serve.py).
    asyncio.run(_upgrade_url(sys.stdin.read().strip()))
