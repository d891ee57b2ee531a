"""`tadamon admin add | remove | list`: accounts of the organizer console (/admin/)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from bot.cli import common

if TYPE_CHECKING:
    from storage.console import AuditLog, ConsoleAccounts

T = TypeVar("T")

admin_cli = typer.Typer(help="Accounts of the organizer console (/admin/).",
                        no_args_is_help=True)


def _email(value: str) -> str:
    from storage.console import EMAIL_MAX, normalize_email

    email = normalize_email(value)
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or len(email) > EMAIL_MAX or any(
            char.isspace() for char in email):
        raise common.bad_input(f"{value!r} is not an email address")
    return email


def _read_password() -> str:
    """The password from standard input: typed twice at a terminal, else its first line."""
    from bot.console.passwords import weak

    if sys.stdin.isatty():
        password = str(typer.prompt("password", hide_input=True, confirmation_prompt=True))
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    problem = weak(password)
    if problem is not None:
        raise common.bad_input(f"the password needs {problem} (read from standard input)")
    return password


def _with(work: Callable[[ConsoleAccounts, AuditLog], Coroutine[Any, Any, T]]) -> T:
    settings = common.settings()

    async def run() -> T:
        from storage.console import AuditLog, ConsoleAccounts

        async with common.open_database(settings) as sessions:
            return await work(ConsoleAccounts(sessions), AuditLog(sessions))

    return common.run(run)


@admin_cli.command("add")
def admin_add(
    email: Annotated[str, typer.Argument(help="The person's email: their sign-in name.")],
    role: Annotated[str, typer.Option(help="organizer (acts) or viewer (only looks).")],
) -> None:
    """Make a console account, or give an existing one a new role and password (it is then
    signed out everywhere). The password is read from standard input."""
    from bot.console.passwords import hash_password
    from storage.console import COMMAND_LINE, ConsoleRole

    address = _email(email)
    if role not in (ConsoleRole.ORGANIZER, ConsoleRole.VIEWER):
        raise common.bad_input(f"--role: {role!r} is not organizer or viewer")
    hashed = hash_password(_read_password())

    async def add(accounts: ConsoleAccounts, audit: AuditLog) -> bool:
        created = await accounts.add(address, ConsoleRole(role), hashed)
        await audit.write(COMMAND_LINE, "account added" if created else "account changed",
                          address, role)
        return created

    created = _with(add)
    typer.echo(f"{address} is a console {role}" + ("" if created else
                                                   " (password changed, signed out)"))


@admin_cli.command("remove")
def admin_remove(
    email: Annotated[str, typer.Argument(help="The account's email.")],
) -> None:
    """Delete a console account; it is signed out at once."""
    from storage.console import COMMAND_LINE, normalize_email

    address = normalize_email(email)

    async def remove(accounts: ConsoleAccounts, audit: AuditLog) -> bool:
        removed = await accounts.remove(address)
        if removed:
            await audit.write(COMMAND_LINE, "account removed", address)
        return removed

    if not _with(remove):
        raise common.bad_input(f"{address}: no such console account")
    typer.echo(f"{address} can no longer sign in")


@admin_cli.command("list")
def admin_list() -> None:
    """Every console account, its role and its last sign-in."""

    async def all_(accounts: ConsoleAccounts, audit: AuditLog) -> list[Any]:
        return await accounts.all()

    for account in _with(all_):
        last = account.last_login_at.isoformat(timespec="minutes") if account.last_login_at \
            else "never signed in"
        typer.echo(f"{account.email}\t{account.role}\t{last}")
