"""Database engine, sessions and migrations (SQLite embedded, PostgreSQL in production)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession

log = logging.getLogger(__name__)

DATABASE_ERRORS = (SQLAlchemyError, OSError, TimeoutError)
"""What a database outage looks like to the code that calls it."""

MIGRATIONS = Path(__file__).with_name("migrations")


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine tuned for the backend: WAL, foreign keys and a busy timeout on SQLite."""
    if url.startswith("sqlite"):
        # One connection: SQLite has one writer anyway, and queueing for the connection in
        # asyncio is far cheaper than SQLite's busy-wait sleeps when writers collide.
        engine = create_async_engine(url, connect_args={"timeout": 30}, pool_size=1,
                                     max_overflow=0, pool_timeout=60)

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
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800
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
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply pending migrations (idempotent; safe to call at every start)."""

    def _run(connection: Connection) -> None:
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
