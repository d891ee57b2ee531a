"""`tadamon import` and `tadamon db upgrade`: the catalogue and the schema."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli import common
from bot.settings import Settings

if TYPE_CHECKING:
    from storage.catalogue import ImportReport

log = logging.getLogger("tadamon")

db_cli = typer.Typer(help="Database maintenance.", no_args_is_help=True)


def import_(
    path: Annotated[Path, typer.Argument(help="A catalogue: .yaml, or .csv / .xlsx sheets.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only validate.")] = False,
) -> None:
    """Load a catalogue (idempotent: importing again updates in place)."""
    common.setup_logging()
    settings = common.settings()
    report = common.run(lambda: _import(settings, path, dry_run))
    typer.echo(("valid (dry run, nothing stored): " if dry_run else "imported: ")
               + report.summary())


async def _import(settings: Settings, path: Path, dry_run: bool) -> ImportReport:
    from bot.catalogue import import_catalogue, load_catalogue_file

    if dry_run:
        # Validate the file first: a broken file must not need a database.
        load_catalogue_file(path)
    async with common.open_database(settings) as sessions:
        with common.progress() as progress:
            report = await import_catalogue(sessions, path, dry_run=dry_run, progress=progress)
    if not dry_run:
        await _announce_catalogue(settings)
    return report


async def _announce_catalogue(settings: Settings) -> None:
    """Tell the running processes that the catalogue changed (they rebuild their caches): the
    one thing a command other than `run` and `worker` asks of Redis."""
    if settings.redis_url is None:
        return  # the in-process stand-in: no other process shares it
    from redis.exceptions import RedisError

    from storage.state import State, connect_redis

    redis = connect_redis(settings.redis_url)
    try:
        await State(redis).bump_catalogue_version()
    except RedisError:
        log.warning("redis unavailable: other processes learn of the catalogue later")
    finally:
        await redis.aclose(close_connection_pool=True)


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations."""
    common.setup_logging()
    settings = common.settings()

    async def upgrade() -> None:
        async with common.open_database(settings):
            pass

    common.run(upgrade)
    typer.echo("database is up to date")
