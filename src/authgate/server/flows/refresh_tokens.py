"""Refresh tokens: issuance, rotation, reuse detection with a grace window, lifetimes and
revocation (RFC 6749 §1.5, §6, §10.4; RFC 9700 §2.2.2 and §4.14.2; RFC 7009 §2.1; OpenID Connect
Core §11 `offline_access`).

Every token belongs to a family (one per authorization grant). Each use rotates: the presented
token must be the family's newest, and the answer carries a new one. Presenting an older token is
reuse: somebody kept a copy, so the whole family is revoked, together with the access tokens of its
grant (`Reject.revoke_grant`). One exception: within `grace_period` seconds after a rotation, the
token just rotated away may be presented again (a client retrying after a lost response, two tabs
racing) and receives the very same response, sealed in the family at the rotation (`Replay`).

A refresh may narrow the access token's scope; the family keeps its scope (RFC 6749 §6). It may
name a `resource` only among the family's audiences, and the access token is then for it (RFC 8707
§2.2). A family dies `absolute_lifetime` after the sign-in that started it, and a token unused for
`idle_lifetime` expires. Decisions are pure functions over the family record; the store runs them
while holding the family's lock (see `storage.protocols.RefreshTokenStore`).

Time is read only once the lock is held, and a rotation is dated when its response is ready: a
refresh that waited (a stalled database, another refresh of the family) must not record its
rotation in the past, or its client's retry, queued behind it, would land outside the grace window
and revoke the family. A refresh whose client has gone away commits nothing (`ClientGone`): the
token it would have rotated away is the one the client still holds.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from authgate.oauth.errors import (
    InvalidGrant,
    InvalidScope,
    InvalidTarget,
    OAuthError,
    TemporarilyUnavailable,
)
from authgate.server import audit
from authgate.server.models import RefreshFamily
from authgate.server.secret_key import generate_token
from authgate.server.targets.identity_scopes import OFFLINE_ACCESS

if TYPE_CHECKING:
    from authgate.server.observability.counters import SecurityCounters
    from authgate.server.storage.protocols import AuditStore, GrantRevoker, RefreshTokenStore

__all__ = [
    "ClientGone",
    "RefreshDecision",
    "RefreshPolicy",
    "Reject",
    "Replay",
    "Rotate",
    "decide_refresh",
    "exchange_refresh_token",
    "new_family",
    "revoke_family",
    "revoke_refresh_token",
    "rotate_family",
    "should_issue_refresh_token",
]

DAY = 86400


class ClientGone(TemporarilyUnavailable):
    """The client closed the connection before the rotation was committed; nothing was stored
    (and nobody reads this answer)."""


@dataclass(frozen=True, slots=True)
class RefreshPolicy:
    """Lifetimes in seconds. `grace_period=0` turns the retry window off (every reuse alarms)."""

    idle_lifetime: int = 14 * DAY
    absolute_lifetime: int = 90 * DAY
    grace_period: int = 10

    def __post_init__(self) -> None:
        if not 0 < self.idle_lifetime <= self.absolute_lifetime:
            raise ValueError("refresh tokens: need 0 < idle_lifetime <= absolute_lifetime")
        if not 0 <= self.grace_period <= 60:
            raise ValueError("refresh tokens: grace_period must be 0-60 seconds")


@dataclass(frozen=True, slots=True)
class Rotate:
    """Issue a new pair: an access token with `access_scopes`, then `rotate_family`."""

    access_scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Replay:
    """Answer with the sealed response of the rotation that just happened (grace window)."""

    sealed_response: bytes


@dataclass(frozen=True, slots=True)
class Reject:
    """Refuse with `error`. `revoke_grant`: reuse was detected, the family is revoked (store the
    returned family) and every other token of `grant_id` must be revoked too."""

    error: OAuthError
    revoke_grant: bool = False


RefreshDecision = Rotate | Replay | Reject


def should_issue_refresh_token(
    grant_types: Iterable[str], scopes: Iterable[str], *, always: bool = False
) -> bool:
    """A refresh token is issued when the client may use the `refresh_token` grant and asked for
    `offline_access`, or its configuration says `always`."""
    return "refresh_token" in grant_types and (always or OFFLINE_ACCESS in scopes)


def new_family(
    *,
    hash_token: Callable[[str], str],
    grant_id: str,
    client_id: str,
    user_id: str,
    scopes: Iterable[str],
    audiences: Iterable[str],
    auth_time: int,
    amr: Iterable[str],
    now: int,
    jkt: str | None = None,
) -> tuple[str, RefreshFamily]:
    """The first refresh token of a grant: `(token, family)`; store the family, send the token.
    `jkt`: the DPoP key its tokens are bound to (a public client's, RFC 9449 §5)."""
    token = generate_token()
    family = RefreshFamily(
        family_id=secrets.token_urlsafe(16),
        grant_id=grant_id,
        client_id=client_id,
        user_id=user_id,
        scopes=tuple(scopes),
        audiences=tuple(audiences),
        auth_time=auth_time,
        amr=tuple(amr),
        created_at=now,
        generation=0,
        current_hash=hash_token(token),
        current_issued_at=now,
        jkt=jkt,
    )
    return token, family


def decide_refresh(
    family: RefreshFamily,
    generation: int,
    *,
    client_id: str,
    scopes: Sequence[str] | None,
    now: int,
    policy: RefreshPolicy,
    resource: str | None = None,
) -> tuple[RefreshDecision, RefreshFamily]:
    """Decide a refresh of the token of `generation` in `family`, presented by `client_id`
    (authenticated) asking for `scopes` (None: the family's) and `resource` (None: the family's
    audience). Returns the decision and the family to store (the same object when nothing
    changes)."""
    if family.revoked_at is not None:
        return Reject(InvalidGrant("the refresh token has been revoked")), family
    if family.client_id != client_id:
        # RFC 6749 §10.4: the token is bound to its client; in another client's hands it leaked.
        return _reuse(family, now, "the refresh token was issued to another client")
    if now >= family.ends_at(policy):
        return Reject(InvalidGrant("the refresh token has expired")), family
    access_scopes = family.scopes if scopes is None else tuple(dict.fromkeys(scopes))
    # RFC 8707 §2.2: the resource must be one the grant covers.
    foreign_target = resource is not None and resource not in family.audiences
    if generation == family.generation:
        if now >= family.expires_at(policy):
            return Reject(InvalidGrant("the refresh token has expired")), family
        if not set(access_scopes).issubset(family.scopes):
            # RFC 6749 §6: the scope may only narrow.
            return Reject(InvalidScope("scope exceeds what was granted")), family
        if foreign_target:
            return _foreign_target(), family
        return Rotate(access_scopes), family
    in_grace = (
        generation == family.generation - 1
        and family.rotated_at is not None
        and family.replay is not None
        and now < family.rotated_at + policy.grace_period
    )
    if in_grace and family.replay is not None:
        if foreign_target:  # a retry does not change its target: refused, no alarm
            return _foreign_target(), family
        if access_scopes != family.replay_scopes:
            return Reject(InvalidGrant("the refresh token was already used")), family
        return Replay(family.replay), family
    return _reuse(family, now, "the refresh token was already used")


def _foreign_target() -> Reject:
    return Reject(InvalidTarget("resource was not part of the original grant"))


def _reuse(family: RefreshFamily, now: int, why: str) -> tuple[RefreshDecision, RefreshFamily]:
    # RFC 9700 §4.14.2: a rotated token used again means it was copied: end the whole family.
    return Reject(InvalidGrant(why), revoke_grant=True), revoke_family(family, now)


def rotate_family(
    family: RefreshFamily,
    *,
    new_token_hash: str,
    sealed_response: bytes,
    access_scopes: Sequence[str],
    now: int,
) -> RefreshFamily:
    """The family after a `Rotate`: the new token (from `secret_key.generate_token`, stored under
    its keyed hash) is the newest; the response is kept, sealed, for replays."""
    return replace(
        family,
        generation=family.generation + 1,
        current_hash=new_token_hash,
        current_issued_at=now,
        rotated_at=now,
        replay=sealed_response,
        replay_scopes=tuple(access_scopes),
    )


def revoke_family(family: RefreshFamily, now: int) -> RefreshFamily:
    """The family revoked (RFC 7009 §2.1: revoking one token revokes the grant's refresh tokens)."""
    if family.revoked_at is not None:
        return family
    return replace(family, revoked_at=now, replay=None)


async def exchange_refresh_token(
    store: RefreshTokenStore,
    revoker: GrantRevoker,
    token_hash: str,
    *,
    client_id: str,
    scopes: Sequence[str] | None,
    clock: Callable[[], int],
    policy: RefreshPolicy,
    issue_pair: Callable[[RefreshFamily, tuple[str, ...]], Awaitable[tuple[str, bytes]]],
    resource: str | None = None,
    client_gone: Callable[[], Awaitable[bool]] | None = None,
    audit_store: AuditStore | None = None,
    counters: SecurityCounters | None = None,
    check_family: Callable[[RefreshFamily], None] | None = None,
) -> bytes:
    """Run one refresh under the family's lock; return the sealed token response to send.

    `issue_pair(family, access_scopes)` issues the new access token and refresh token (while the
    lock is held) and returns `(new_refresh_token_hash, sealed_response)`; a replay inside the grace
    window returns the sealed response of the rotation it repeats. Raises the `OAuthError` after
    the lock is released; on reuse, the family is stored revoked and `revoker` revokes the grant.
    `clock` is read under the lock; `client_gone`, asked just before a rotation is committed,
    turns it into `ClientGone` with nothing stored. A detected reuse is recorded in
    `audit_store` (`refresh_token.reused`) and counted in `counters`. `check_family` sees the
    family first when `client_id` owns it (and may raise, changing nothing): the DPoP binding.
    """
    rejected: Reject | None = None
    family: RefreshFamily | None = None
    sealed = b""
    async with store.lock_family(token_hash) as locked:
        now = clock()  # not before: the wait for the lock may have been long
        if locked is None:
            rejected = Reject(InvalidGrant("unknown refresh token"))
        else:
            family = locked.family
            if check_family is not None and family.client_id == client_id:
                check_family(family)
            decision, updated = decide_refresh(
                family,
                locked.generation,
                client_id=client_id,
                scopes=scopes,
                now=now,
                policy=policy,
                resource=resource,
            )
            if isinstance(decision, Rotate):
                new_hash, sealed = await issue_pair(family, decision.access_scopes)
                if client_gone is not None and await client_gone():
                    # Nobody will receive the new pair: rotating would strand the client with a
                    # token one generation old, which a later retry would present as reuse.
                    raise ClientGone("the client went away; nothing was changed")
                updated = rotate_family(
                    updated,
                    new_token_hash=new_hash,
                    sealed_response=sealed,
                    access_scopes=decision.access_scopes,
                    # The grace window starts when the response is ready, not when the
                    # refresh began: issuing may have waited on the database.
                    now=max(now, clock()),
                )
            elif isinstance(decision, Replay):
                sealed = decision.sealed_response
            else:
                rejected = decision
            if updated is not family:
                await locked.save(updated)
    if rejected is not None:
        if rejected.revoke_grant and family is not None:
            if counters is not None:
                counters.refresh_reuse += 1
                counters.families_revoked["reuse"] += 1
            await revoker.revoke_grant(family.grant_id, now)
            if audit_store is not None:
                await audit.record(
                    audit_store,
                    "refresh_token.reused",
                    family.user_id,
                    now=now,
                    actor=client_id,
                    client_id=family.client_id,
                    grant_id=family.grant_id,
                    reason=rejected.error.description or rejected.error.error,
                )
        raise rejected.error
    return sealed


async def revoke_refresh_token(
    store: RefreshTokenStore,
    revoker: GrantRevoker,
    token_hash: str,
    *,
    client_id: str,
    now: int,
    counters: SecurityCounters | None = None,
) -> bool:
    """RFC 7009 revocation of a refresh token (any generation) by the authenticated `client_id`:
    the family is revoked under its lock, then every token of its grant. False when the token is
    unknown or belongs to another client; the endpoint answers 200 either way (RFC 7009 §2.2).
    A family revoked by this call (not before) is counted in `counters`."""
    async with store.lock_family(token_hash) as locked:
        if locked is None or locked.family.client_id != client_id:
            return False
        family = locked.family
        revoked = revoke_family(family, now)
        if revoked is not family:
            await locked.save(revoked)
            if counters is not None:
                counters.families_revoked["revocation"] += 1
    await revoker.revoke_grant(family.grant_id, now)
    return True
