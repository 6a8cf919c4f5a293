"""The server's secret key, the purpose-bound keys derived from it, and the random values stored
only under its keyed hash.

`AUTHGATE_SECRET_KEY` (or the key file) never encrypts or authenticates anything directly: HKDF
(RFC 5869) derives one independent key per purpose, so that the key that hashes client secrets can
never decrypt a signing key. Sealing is AES-256-GCM (`Sealer`) with a key per purpose: signing
keys (the key id and algorithm bound as associated data so a sealed key cannot be moved to another
row) and the token responses kept for refresh replays (bound to the refresh token's hash).

Opaque tokens, refresh tokens, codes, session ids and client secrets are 256 random bits
(`generate_token`), so a keyed hash (HMAC-SHA256 under a derived key) is enough to store them
and fast to check (RFC 6749 §10.10: at most 2^-128 guessing probability).
"""

from __future__ import annotations

import base64
import errno
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "SealError",
    "Sealer",
    "ServerSecret",
    "derive_key",
    "generate_token",
    "load_or_create_secret_key",
    "random_token",
]

_log = logging.getLogger("authgate.server")
_NONCE = 12
_TOKEN_BYTES = 32  # 256 bits: RFC 6749 §10.10 asks for at most 2^-128 guessing probability


class SealError(Exception):
    """A sealed value could not be opened: another secret key sealed it, or it was altered."""


def load_or_create_secret_key(path: Path) -> bytes:
    """Read the key file, or create it (mode 0600, 256 random bits) when it does not exist.

    Creation uses O_EXCL so that several processes starting at once agree on one key.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise OSError(
            exc.errno or errno.EIO,
            f"cannot create secret key file {path}: {exc.strerror or 'failed'}",
        ) from None
    else:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii") + "\n")
        _log.info("created a new secret key file at %s", path)
    if path.stat().st_mode & 0o077:
        _log.warning("secret key file %s is readable by other users; chmod 600 it", path)
    # A file being written by another process is briefly empty: wait for its content.
    for _ in range(50):
        content = path.read_text(encoding="ascii").strip()
        if content:
            return content.encode("ascii")
        os.sched_yield()
    raise OSError(errno.EIO, f"secret key file {path} is empty")


class Sealer:
    """AES-256-GCM under one purpose's key: a random 96-bit nonce per value, prefixed to it."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, associated: bytes) -> bytes:
        """Encrypt `plaintext`, authenticating `associated` with it."""
        nonce = secrets.token_bytes(_NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, associated)

    def open(self, sealed: bytes, associated: bytes) -> bytes:
        """Decrypt what `seal` produced; raise `SealError` on any mismatch."""
        try:
            return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], associated)
        except (InvalidTag, ValueError):
            raise SealError("sealed value cannot be opened with this secret key") from None


class ServerSecret:
    """Keys derived from the server's secret key, one per purpose."""

    __slots__ = (
        "_client_secret_key",
        "_registration_key",
        "_signing_keys",
        "_token_key",
        "check_value",
        "csrf_key",
        "refresh_replays",
        "ticket_key",
    )

    def __init__(self, secret_key: bytes) -> None:
        self._client_secret_key = derive_key(secret_key, b"authgate client secret hash v1")
        self._token_key = derive_key(secret_key, b"authgate opaque token hash v1")
        # Initial and registration access tokens (RFC 7591 §3, RFC 7592 §3).
        self._registration_key = derive_key(secret_key, b"authgate registration token hash v1")
        self._signing_keys = Sealer(derive_key(secret_key, b"authgate signing key seal v1"))
        # The token response a refresh keeps for its grace-window replay, sealed so the stored copy
        # is useless to someone who reads the database; the caller binds it (associated data) to
        # the hash of the refresh token that obtained it, so only that token is ever answered.
        self.refresh_replays = Sealer(derive_key(secret_key, b"authgate refresh replay seal v1"))
        # The key of the sign-in pages' CSRF tokens (`flows.sessions.CsrfTokens`).
        self.csrf_key = derive_key(secret_key, b"authgate csrf token v1")
        # The key of the tickets that carry a waiting request through a page
        # (`flows.pending_requests.PendingRequests`).
        self.ticket_key = derive_key(secret_key, b"authgate pending request v1")
        # Stored in the database so that a process started with another key fails at once.
        self.check_value = hmac.new(
            derive_key(secret_key, b"authgate key check v1"), b"authgate", hashlib.sha256
        ).hexdigest()

    def hash_client_secret(self, client_secret: str) -> str:
        """The keyed hash under which a client secret is stored (hex HMAC-SHA256)."""
        # `hmac.digest`: the same HMAC in one C call (the token endpoint hashes once per request).
        return hmac.digest(self._client_secret_key, client_secret.encode("utf-8"), "sha256").hex()

    def hash_token(self, token: str) -> str:
        """The keyed hash under which an opaque token is stored and looked up."""
        return hmac.new(self._token_key, token.encode("utf-8"), hashlib.sha256).hexdigest()

    def hash_registration_token(self, token: str) -> str:
        """The keyed hash under which an initial or registration access token is stored."""
        return hmac.new(self._registration_key, token.encode("utf-8"), hashlib.sha256).hexdigest()

    def seal(self, plaintext: bytes, associated: bytes) -> bytes:
        """Seal a signing key (`Sealer.seal` under the signing-key seal key)."""
        return self._signing_keys.seal(plaintext, associated)

    def open(self, sealed: bytes, associated: bytes) -> bytes:
        """Open a sealed signing key; raise `SealError` on any mismatch."""
        return self._signing_keys.open(sealed, associated)


def derive_key(secret_key: bytes, info: bytes) -> bytes:
    """The 256-bit key for the purpose named by `info` (HKDF-SHA256, RFC 5869); every process
    with the same secret key derives the same one, and no two purposes share one."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret_key)


def random_token(nbytes: int) -> str:
    """`nbytes` random bytes, base64url, never starting with `-`: an operator pastes these into a
    command line (`authgate token revoke TOKEN`), which would take a leading `-` for an option.
    Skipping one first character in 64 costs well under a bit."""
    while (value := secrets.token_urlsafe(nbytes)).startswith("-"):
        pass
    return value


def generate_token() -> str:
    """A new opaque token value (access or refresh token, code, session id, client secret):
    256 random bits, base64url."""
    return random_token(_TOKEN_BYTES)
