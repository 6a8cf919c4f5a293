"""Incident response on tokens (`authgate token revoke`, `client revoke-tokens`, `user
revoke-sessions`; RFC 7009 §2.1: revoking a refresh token ends its grant's access tokens too).

What can be revoked is what the server tracks: refresh-token families, opaque access tokens, and
the JWT access tokens issued under an authorization grant (their `jti`s go on the revocation
list until they expire). A JWT access token from `client_credentials` is tracked nowhere: it is
refused by introspection only once it is revoked by value (`token revoke`), and otherwise runs
out within its lifetime (or at once everywhere with `keys revoke`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from authgate.server import audit
from authgate.server.admin.registry import AdminError, known_client
from authgate.server.flows.refresh_tokens import revoke_refresh_token
from authgate.server.storage.protocols import Storage, TokensRevoked
from authgate.server.tokens.inspection import TokenInspector

__all__ = [
    "SessionsRevoked",
    "TokenRevocation",
    "revoke_client_tokens",
    "revoke_token",
    "revoke_user_sessions",
]


@dataclass(frozen=True, slots=True)
class TokenRevocation:
    """What `revoke_token` found and did (never the token itself)."""

    kind: Literal["access_token", "refresh_token"]
    client_id: str
    subject: str
    was_active: bool


@dataclass(frozen=True, slots=True)
class SessionsRevoked:
    """What `revoke_user_sessions` ended."""

    username: str
    sessions: int
    tokens: TokensRevoked


async def revoke_token(
    storage: Storage, inspector: TokenInspector, token: str, *, now: int
) -> TokenRevocation:
    """Revoke an access or refresh token of this server, whichever it is (idempotent); a refresh
    token takes its family and grant with it. `AdminError` when it is not one of ours."""
    info = await inspector.find(token)
    if info is None:
        raise AdminError("not a token of this server (unknown, malformed or signed by another key)")
    if info.kind == "refresh_token":
        if info.token_hash is None:  # pragma: no cover - refresh tokens are found by hash
            raise AdminError("not a token of this server")
        await revoke_refresh_token(
            storage, storage, info.token_hash, client_id=info.client_id, now=now
        )
    elif info.active:
        await inspector.revoke(info)
    # The token itself is never recorded: its kind, client and subject say which it was.
    await audit.record(
        storage, "token.revoked", info.client_id, now=now, token_kind=info.kind, sub=info.subject
    )
    return TokenRevocation(info.kind, info.client_id, info.subject, info.active)


async def revoke_client_tokens(storage: Storage, client_id: str, *, now: int) -> TokensRevoked:
    """Revoke every refresh-token family and tracked access token of a client: a registered one,
    or one named by the URL of its metadata document while live records name it."""
    if not await known_client(storage, client_id, now=now):
        raise AdminError(f"no client with id {client_id!r}")
    revoked = await storage.revoke_tokens_of(client_id=client_id, now=now)
    await audit.record(
        storage,
        "client.tokens_revoked",
        client_id,
        now=now,
        grants=revoked.grants,
        opaque_tokens=revoked.opaque_tokens,
    )
    return revoked


async def revoke_user_sessions(storage: Storage, username: str, *, now: int) -> SessionsRevoked:
    """End a user's browser sessions and revoke their refresh-token families and tracked access
    tokens, with every client."""
    user = await storage.get_user_by_username(username) if len(username) <= 255 else None
    if user is None:
        raise AdminError(f"no user named {username!r}")
    sessions = await storage.delete_user_sessions(user.user_id)
    tokens = await storage.revoke_tokens_of(user_id=user.user_id, now=now)
    await audit.record(
        storage,
        "user.sessions_revoked",
        user.user_id,
        now=now,
        sessions=sessions,
        grants=tokens.grants,
        opaque_tokens=tokens.opaque_tokens,
    )
    return SessionsRevoked(username, sessions, tokens)
