"""Administration of remembered consent (`authgate consent list|revoke`; RFC 6749 §10.2 and
OpenID Connect Core §3.1.2.4 on user approval; RFC 7009 §2.1 on ending a grant's tokens).

Revoking consent makes the next authorization request ask the user again and, unless told to keep
them, revokes the client's refresh tokens for that user together with the access tokens of their
grants: "remove this app's access" in one step. Access tokens issued without a refresh token are
not listed per user and run out on their own (minutes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from authgate.server import audit
from authgate.server.admin.registry import AdminError, known_client
from authgate.server.models import ConsentGrant
from authgate.server.storage.protocols import Storage

__all__ = ["ConsentRecord", "ConsentRevocation", "list_consents", "revoke_consent"]


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """A remembered consent with the names an administrator knows it by."""

    username: str
    client_name: str
    grant: ConsentGrant
    # The registered client's origin (`Client.origin`); None when no registered client has the
    # id (a client named by the URL of its metadata document, `client_name` then "").
    client_origin: str | None = None


@dataclass(frozen=True, slots=True)
class ConsentRevocation:
    """What `revoke_consent` did."""

    username: str
    client_id: str
    consent_removed: bool
    grants_revoked: int


async def list_consents(
    storage: Storage, *, username: str | None = None, client_id: str | None = None
) -> list[ConsentRecord]:
    """Remembered consents, all or one user's and/or one client's, ordered by user then client."""
    user_id = None
    if username is not None:
        user = await storage.get_user_by_username(username)
        if user is None:
            raise AdminError(f"no user named {username!r}")
        user_id = user.user_id
    if client_id is not None and not await known_client(storage, client_id, now=int(time.time())):
        raise AdminError(f"no client with id {client_id!r}")
    usernames = {u.user_id: u.username for u in await storage.list_users()}
    clients = {c.client_id: c for c in await storage.list_clients()}
    records = [
        ConsentRecord(
            usernames.get(g.user_id, g.user_id),
            client.name if client else "",
            g,
            client.origin if client else None,
        )
        for g in await storage.list_consents(user_id)
        for client in [clients.get(g.client_id)]
        if client_id is None or g.client_id == client_id
    ]
    return sorted(records, key=lambda r: (r.username, r.grant.client_id))


async def revoke_consent(
    storage: Storage, *, username: str, client_id: str, keep_tokens: bool = False, now: int
) -> ConsentRevocation:
    """Forget what `username` allowed `client_id` and, unless `keep_tokens`, revoke the client's
    refresh tokens for the user (and the access tokens of those grants)."""
    user = await storage.get_user_by_username(username)
    if user is None:
        raise AdminError(f"no user named {username!r}")
    if not await known_client(storage, client_id, now=now):
        raise AdminError(f"no client with id {client_id!r}")
    removed = await storage.revoke_consent(user.user_id, client_id)
    revoked = 0 if keep_tokens else await storage.revoke_user_grants(user.user_id, client_id, now)
    if removed:
        await audit.record(
            storage,
            "consent.revoked",
            username,
            now=now,
            client_id=client_id,
            grants_revoked=revoked,
        )
    return ConsentRevocation(username, client_id, removed, revoked)
