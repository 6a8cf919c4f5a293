"""API keys: static secrets sent in a configured header, known to the gate only by their SHA-256.

Configuration holds `sha256:<64 hex digits>` (see `hash_api_key`), never the key, so a leaked
configuration file does not leak keys. A fast hash is right here because API keys must be long
random strings (at least 128 bits of entropy; `new_api_key` makes 256): there is nothing to
brute-force. The presented key's digest is compared with every configured digest in constant time
(`hmac.compare_digest`, no early exit), so timing reveals neither which key matched nor how much of
a digest did.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from types import MappingProxyType

from authgate.config import ConfigError
from authgate.verifier.config import ApiKeyConfig, ApiKeyEntry
from authgate.verifier.errors import Reason, TokenRejected
from authgate.verifier.principal import Principal

__all__ = ["ApiKeyVerifier", "hash_api_key", "new_api_key", "parse_key_hash"]

_PREFIX = "sha256:"
MAX_API_KEY_LENGTH = 512


def new_api_key() -> str:
    """A new random API key (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """The configuration form of `key`: `sha256:<hex>`."""
    return _PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_key_hash(text: str) -> bytes:
    """The 32-byte digest in a `sha256:<hex>` string; `ConfigError` if it is malformed."""
    if not isinstance(text, str) or not text.startswith(_PREFIX):
        raise ConfigError("an API key hash must look like 'sha256:<64 hex digits>'")
    hexdigits = text[len(_PREFIX) :]
    if len(hexdigits) != 64:
        raise ConfigError("an API key hash must look like 'sha256:<64 hex digits>'")
    try:
        return bytes.fromhex(hexdigits)
    except ValueError:
        raise ConfigError("an API key hash must look like 'sha256:<64 hex digits>'") from None


class ApiKeyVerifier:
    """Maps a presented API key to its configured principal."""

    __slots__ = ("_entries", "header")

    def __init__(self, config: ApiKeyConfig) -> None:
        self.header = config.header.lower()
        self._entries: tuple[tuple[ApiKeyEntry, Principal], ...] = tuple(
            (entry, _principal(entry)) for entry in config.keys
        )

    def verify(self, key: str) -> Principal:
        """The principal for `key`, or `TokenRejected` (reason `api_key`)."""
        if not key or len(key) > MAX_API_KEY_LENGTH or not key.isascii() or not key.isprintable():
            raise TokenRejected(Reason.API_KEY, debug="malformed API key")
        digest = hashlib.sha256(key.encode("ascii")).digest()
        found: Principal | None = None
        for entry, principal in self._entries:
            if hmac.compare_digest(digest, entry.digest):
                found = principal
        if found is None:
            raise TokenRejected(Reason.API_KEY, debug="unknown API key")
        return found


def _principal(entry: ApiKeyEntry) -> Principal:
    return Principal(
        subject=entry.subject,
        client_id=entry.client_id,
        scopes=entry.scopes,
        roles=entry.roles,
        issuer=None,
        claims=MappingProxyType({"sub": entry.subject}),
        method="api_key",
    )
