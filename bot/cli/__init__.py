"""The `tadamon` command line (CONTRACT.md), one module per command group: `serve` (run,
worker), `catalogue` (import, db upgrade), `organizers`, `broadcasts`, `exports` (export,
report, coop-codes, posters), `privacy` (forget) and `admin` (console accounts), joined here
in the order `tadamon --help` lists them."""

from __future__ import annotations

import typer

from bot.cli import admin, broadcasts, catalogue, exports, organizers, privacy, serve

cli = typer.Typer(
    name="tadamon",
    help="Tadamon: the chatbot of social and solidarity economy fairs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
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


def main() -> None:
    """Console script entry point."""
    cli()
