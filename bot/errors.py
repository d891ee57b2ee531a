"""The errors of the process (settings, commands); the root and the catalogue's error live in
storage/errors.py, the bottom layer, and are named here too for bot/'s own use."""

from __future__ import annotations

from storage.errors import CatalogueError, TadamonError

__all__ = ["BadInput", "CatalogueError", "ConfigurationError", "TadamonError"]


class ConfigurationError(TadamonError):
    """A setting is missing or malformed; the message names the variable."""


class BadInput(TadamonError):
    """What a command was given is wrong (an unknown id, a time in the past): exit status 2,
    with the one-line message naming the option."""
