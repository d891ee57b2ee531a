"""The `tadamon` command line (CONTRACT.md), one module per command group: `serve` (run,
worker), `catalogue` (import, db upgrade), `organizers`, `broadcasts`, `exports` (export,
report, coop-codes, posters), `privacy` (forget) and `admin` (console accounts), joined here
in the order `tadamon --help` lists them.

A serving process (`tadamon run`, `tadamon worker`) builds a command line of those two alone:
it lives for days, and the other groups' code (about 1.5 MB) would stay in its memory unused."""

from __future__ import annotations

import sys

import typer

SERVING = ("run", "worker")


def _typer() -> typer.Typer:
    return typer.Typer(
        name="tadamon",
        help="Tadamon: the chatbot of social and solidarity economy fairs.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )


def serving_cli() -> typer.Typer:
    """`tadamon run` and `tadamon worker` only."""
    from bot.cli import serve

    cli = _typer()
    cli.command()(serve.run)
    cli.command()(serve.worker)
    return cli


def full_cli() -> typer.Typer:
    """Every command, in the order `tadamon --help` lists them."""
    from bot.cli import admin, broadcasts, catalogue, exports, organizers, privacy, serve

    cli = _typer()
    cli.command()(serve.run)
    cli.command("import")(catalogue.import_)
    cli.command()(serve.worker)
    cli.command("coop-codes")(exports.coop_codes)
    cli.command()(exports.posters)
    cli.command()(exports.report)
    cli.add_typer(catalogue.db_cli, name="db")
    cli.add_typer(organizers.organizer_cli, name="organizer")
    cli.add_typer(broadcasts.broadcast_cli, name="broadcast")
    cli.add_typer(exports.export_cli, name="export")
    cli.command()(privacy.forget)
    cli.add_typer(admin.admin_cli, name="admin")
    return cli


def main() -> None:
    """Console script entry point."""
    serving = len(sys.argv) > 1 and sys.argv[1] in SERVING
    (serving_cli() if serving else full_cli())()
