"""Console passwords: argon2id (argon2-cffi's defaults, RFC 9106's low-memory profile). The
library is imported at the first password checked or made, not by every serving process."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from argon2 import PasswordHasher

PASSWORD_MIN = 10
PASSWORD_MAX = 256


@functools.cache
def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher

    return PasswordHasher()


@functools.cache
def _decoy() -> str:
    """Checked when an email is unknown, so that a wrong email takes as long as a wrong
    password."""
    return _hasher().hash("tadamon: no such account")


def weak(password: str) -> str | None:
    """Why a new password is refused (too short or too long), or None."""
    if len(password) < PASSWORD_MIN:
        return f"at least {PASSWORD_MIN} characters"
    if len(password) > PASSWORD_MAX:
        return f"at most {PASSWORD_MAX} characters"
    return None


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify(stored: str | None, password: str) -> bool:
    """Whether `password` is the one `stored` was made from (a decoy hash when there is no
    account, checked all the same)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _hasher().verify(stored or _decoy(), password[:PASSWORD_MAX]) and \
            stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher().check_needs_rehash(stored)
