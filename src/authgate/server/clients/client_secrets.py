"""Client identifiers and client secrets (RFC 6749 §2.2, §2.3.1).

A client secret carries 256 random bits, so a keyed hash (HMAC-SHA256 under a key derived from the
server secret, `ServerSecret.hash_client_secret`) is enough to store it and fast to check; it is
compared in constant time (RFC 6749 §10.10, RFC 9700 §4.16).
"""

from __future__ import annotations

import hmac

from authgate.server.secret_key import ServerSecret, generate_token, random_token

__all__ = [
    "generate_client_id",
    "generate_client_secret",
    "hashed_secret_matches",
    "verify_client_secret",
]


def generate_client_id() -> str:
    """A new client identifier (about 128 random bits; not a secret), never starting with `-`."""
    return random_token(16)


def generate_client_secret() -> str:
    """A new client secret: 256 random bits, base64url (43 characters), like every token."""
    return generate_token()


def verify_client_secret(server: ServerSecret, presented: str, stored_hash: str | None) -> bool:
    """True when `presented` hashes to `stored_hash`; constant time, also for a missing hash."""
    return hashed_secret_matches(server.hash_client_secret(presented), stored_hash)


def hashed_secret_matches(presented_hash: str, stored_hash: str | None) -> bool:
    """True when a presented secret's hash (`ServerSecret.hash_client_secret`) is `stored_hash`;
    constant time, also for a missing hash (compared with a dummy of the same form)."""
    expected = stored_hash or "0" * 64
    matches = hmac.compare_digest(presented_hash, expected)
    return matches and stored_hash is not None
