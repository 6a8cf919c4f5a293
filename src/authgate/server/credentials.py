"""Generating and checking client secrets, opaque tokens and user passwords.

Client secrets and opaque tokens carry 256 random bits, so a keyed hash (HMAC-SHA256 under a key
derived from the server secret) is enough to store them and is fast to check; they are compared in
constant time (RFC 6749 §10.10, RFC 9700 §4.16). User passwords are low-entropy: argon2id
(RFC 9106) with argon2-cffi's current recommended parameters, rehashed when those change.
"""

from __future__ import annotations

import functools
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from authgate.server.secret_key import ServerSecret

__all__ = [
    "generate_client_id",
    "generate_client_secret",
    "generate_token",
    "hash_password",
    "password_needs_rehash",
    "verify_client_secret",
    "verify_password",
]

_TOKEN_BYTES = 32  # 256 bits: RFC 6749 §10.10 asks for at most 2^-128 guessing probability
_HASHER = PasswordHasher()  # argon2id, RFC 9106 "second recommended option" parameters


def generate_client_id() -> str:
    """A new client identifier (about 128 random bits; not a secret). It never starts with `-`,
    which a command line (`authgate client show ID`) would take for an option."""
    while (client_id := secrets.token_urlsafe(16)).startswith("-"):
        pass
    return client_id


def generate_client_secret() -> str:
    """A new client secret: 256 random bits, base64url (43 characters)."""
    return secrets.token_urlsafe(_TOKEN_BYTES)


def generate_token() -> str:
    """A new opaque token value: 256 random bits, base64url."""
    return secrets.token_urlsafe(_TOKEN_BYTES)


def verify_client_secret(server: ServerSecret, presented: str, stored_hash: str | None) -> bool:
    """True when `presented` hashes to `stored_hash`; constant time, also for a missing hash."""
    expected = stored_hash or "0" * 64
    matches = hmac.compare_digest(server.hash_client_secret(presented), expected)
    return matches and stored_hash is not None


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
