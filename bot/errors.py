"""The one exception root of Tadamon and its direct children."""

from __future__ import annotations


class TadamonError(Exception):
    """Root of every error Tadamon raises on purpose."""


class ConfigurationError(TadamonError):
    """A setting is missing or malformed; the message names the variable."""


class CatalogueError(TadamonError):
    """A catalogue file is broken; the one-line message names the file and the place."""

    def __init__(self, where: str, message: str | None = None) -> None:
        super().__init__(where if message is None else f"{where}: {message}")


class BadInput(TadamonError):
    """What a command was given is wrong (an unknown id, a time in the past): exit status 2,
    with the one-line message naming the option."""
