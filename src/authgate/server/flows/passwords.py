"""User passwords: low-entropy, so hashed with argon2id (RFC 9106) with argon2-cffi's current
recommended parameters, and rehashed when those change. An unknown user costs the same time as a
wrong password (OWASP Authentication Cheat Sheet), so the answer's timing tells nothing."""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["hash_password", "password_needs_rehash", "verify_password"]

_HASHER = PasswordHasher()  # argon2id, RFC 9106 "second recommended option" parameters


def hash_password(password: str) -> str:
    """An argon2id PHC string for `password`."""
    return _HASHER.hash(password)


def verify_password(password: str, stored_hash: str | None) -> bool:
    """True when `password` matches; a missing user costs the same time as a wrong password."""
    try:
        return _HASHER.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash() -> str:
    # Verified when the user does not exist, so the answer takes as long as for a wrong password.
    return _HASHER.hash(secrets.token_urlsafe(16))


def password_needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with parameters weaker than the current ones."""
    return _HASHER.check_needs_rehash(stored_hash)
