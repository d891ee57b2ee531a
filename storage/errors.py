"""The one exception root of Tadamon, and the errors the records raise. It lives in storage/,
the bottom layer, so every layer can raise and catch it without importing upwards."""

from __future__ import annotations


class TadamonError(Exception):
    """Root of every error Tadamon raises on purpose."""


class CatalogueError(TadamonError):
    """A catalogue file is broken; the one-line message names the file and the place."""

    def __init__(self, where: str, message: str | None = None) -> None:
        super().__init__(where if message is None else f"{where}: {message}")
