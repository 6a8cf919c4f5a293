"""Initial access tokens (RFC 7591 §3): what `[registration] mode = "token"` asks of a
registration request, as `Authorization: Bearer` (RFC 6750 §2.1).

An operator creates one with `authgate registration-token create [--expires 1h] [--max-uses N]`;
it is shown once and stored only as its keyed hash, under a short public id by which it is
listed and revoked. Each registration it authorizes counts one use.
"""

from __future__ import annotations

import secrets

from authgate.server import audit
from authgate.server.models import InitialAccessToken
from authgate.server.secret_key import ServerSecret, generate_token
from authgate.server.storage.protocols import Storage

__all__ = ["create_initial_access_token", "revoke_initial_access_token"]


async def create_initial_access_token(
    storage: Storage,
    secret: ServerSecret,
    *,
    expires_in: int | None = None,
    max_uses: int | None = None,
    now: int,
) -> tuple[InitialAccessToken, str]:
    """A new initial access token: its record and its value (shown once, never stored)."""
    if expires_in is not None and expires_in <= 0:
        raise ValueError("the lifetime must be positive")
    if max_uses is not None and max_uses <= 0:
        raise ValueError("max uses must be positive")
    value = generate_token()
    token = InitialAccessToken(
        token_id=secrets.token_hex(6),  # hex: never starts with "-" on a command line
        token_hash=secret.hash_registration_token(value),
        created_at=now,
        expires_at=now + expires_in if expires_in is not None else None,
        max_uses=max_uses,
    )
    await storage.create_initial_access_token(token)
    await audit.record(
        storage,
        "registration_token.created",
        token.token_id,
        now=now,
        expires_at=token.expires_at,
        max_uses=max_uses,
    )
    return token, value


async def revoke_initial_access_token(storage: Storage, token_id: str, *, now: int) -> bool:
    """Revoke the token (clients it registered stay); False when unknown or already revoked."""
    revoked = await storage.revoke_initial_access_token(token_id, now)
    if revoked:
        await audit.record(storage, "registration_token.revoked", token_id, now=now)
    return revoked
