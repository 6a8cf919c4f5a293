"""Storage roles of the user-facing flows, each a narrow Protocol with a written contract (RFC 6749
§4.1.2 and §10.5 single-use codes; RFC 9700 §4.14.2 refresh rotation; RFC 8628 §3.5 polling).

The shared rules of `authgate.server.storage.protocols` apply: times are whole seconds since the
epoch, records are immutable values, "create" raises `AlreadyExistsError` on a taken key and changes
nothing, secrets are only ever stored as the keyed hashes the caller passes in. Every contract
holds across processes sharing one database: several `authgate serve` processes run against one
PostgreSQL with no other coordination, so atomicity comes from the database (conditional updates,
row locks, unique constraints), never from memory.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from authgate.server.flows.codes import AuthorizationCode, CodeRedemption
from authgate.server.flows.consent import ConsentGrant
from authgate.server.flows.device_codes import DeviceAuthorization
from authgate.server.flows.refresh_tokens import RefreshFamily
from authgate.server.flows.sessions import Session
from authgate.server.flows.throttle import ThrottleState

__all__ = [
    "AuthorizationCodeStore",
    "ConsentStore",
    "DeviceAuthorizationStore",
    "GrantRevoker",
    "LockedFamily",
    "RefreshTokenStore",
    "SessionStore",
    "ThrottleStore",
]


class AuthorizationCodeStore(Protocol):
    """Authorization codes by keyed hash; each may be consumed once."""

    async def save_code(self, code: AuthorizationCode) -> None:
        """Store a newly issued code (`AlreadyExistsError` on a taken hash)."""

    async def consume_code(self, code_hash: str, now: int) -> CodeRedemption | None:
        """Mark the code used and return it; None when no such code is stored.

        Exactly one of several concurrent callers, in any process, gets `first_use=True`; every
        other call, then or later, gets the same record with `first_use=False`, so that the caller
        can revoke the tokens issued from it (fosite's rule: a used code returns an error *and*
        the original request). Expired codes are returned too (the caller refuses them); a used
        or expired code is kept at least until `expires_at` plus one hour so that replays within
        that time are recognised. SQL: `UPDATE … SET used_at = :now WHERE code_hash = :h AND
        used_at IS NULL` decides `first_use` by its row count, then the row is read.
        """


class GrantRevoker(Protocol):
    """Revocation of everything issued from one authorization grant."""

    async def revoke_grant(self, grant_id: str, now: int) -> None:
        """Revoke every access token (JWT `jti`s into the revocation list, opaque tokens marked)
        and every refresh-token family issued under `grant_id`. Idempotent."""


class LockedFamily(Protocol):
    """A refresh-token family while its row is locked (see `RefreshTokenStore.lock_family`)."""

    @property
    def family(self) -> RefreshFamily:
        """The family as committed before the lock was taken."""

    @property
    def generation(self) -> int:
        """The generation of the presented token within the family."""

    async def save(self, family: RefreshFamily) -> None:
        """Replace the family; when its `generation` grew, also record `current_hash` as the
        token of that generation. Written when the lock is released without an exception."""


class RefreshTokenStore(Protocol):
    """Refresh-token families, and the hash of every token ever issued in each."""

    async def create_family(self, family: RefreshFamily) -> None:
        """Store a new family with its first token (`current_hash`, generation 0)."""

    def lock_family(self, token_hash: str) -> AbstractAsyncContextManager[LockedFamily | None]:
        """Find the family of the token with this hash and hold its lock; None if unknown.

        While one caller holds a family, every other caller for the same family (any process)
        waits; it then sees the committed result, so of many concurrent refreshes with one token
        exactly one rotates and the others see a token one generation old within the grace window
        (a replay, not an alarm). Changes are committed when the block exits normally and rolled
        back on an exception: decide, save, leave the block, and only then raise the OAuth error.
        PostgreSQL: one transaction, `SELECT … FROM refresh_families WHERE family_id = :id FOR
        UPDATE` after looking the token up; SQLite: `BEGIN IMMEDIATE`. Waiting is bounded by the
        configured database timeouts (generous enough for load, not for a stalled database):
        past them the store raises and commits nothing, and the server answers 503.
        """

    async def find_family(self, token_hash: str) -> RefreshFamily | None:
        """The family of the token with this hash, whatever its generation (for introspection);
        None if unknown. Changes always go through `lock_family`."""


class DeviceAuthorizationStore(Protocol):
    """Device authorizations, by keyed hash of the device code and of the user code."""

    async def create_device_authorization(self, record: DeviceAuthorization) -> None:
        """Store a new record; `AlreadyExistsError` when either hash is taken by a live record (the
        caller then draws a new user code). Expired records may be purged."""

    async def get_device_authorization(self, device_code_hash: str) -> DeviceAuthorization | None:
        """The record for this device code, or None."""

    async def find_device_authorization(self, user_code_hash: str) -> DeviceAuthorization | None:
        """The record for this user code, or None."""

    async def replace_device_authorization(
        self, old: DeviceAuthorization, new: DeviceAuthorization
    ) -> bool:
        """Store `new` if the stored record's `version` still equals `old.version`; return whether
        it did (compare-and-set: `UPDATE … WHERE device_code_hash = :h AND version = :v`)."""


class ConsentStore(Protocol):
    """Remembered consent per (user, client); revocable by `authgate consent revoke`."""

    async def get_consent(self, user_id: str, client_id: str) -> ConsentGrant | None:
        """The grant of this user to this client, or None."""

    async def save_consent(self, grant: ConsentGrant) -> None:
        """Insert or replace the grant of (grant.user_id, grant.client_id)."""

    async def list_consents(self, user_id: str | None = None) -> list[ConsentGrant]:
        """All grants, or one user's, ordered by user then client."""

    async def revoke_consent(self, user_id: str, client_id: str) -> bool:
        """Delete the grant; False if there was none."""


class SessionStore(Protocol):
    """Browser sessions by keyed hash of the cookie value."""

    async def get_session(self, session_hash: str) -> Session | None:
        """The session, or None (expired sessions may be returned; the caller checks)."""

    async def save_session(self, session: Session) -> None:
        """Insert or replace the session."""

    async def delete_session(self, session_hash: str) -> None:
        """Logout: delete the session (idempotent)."""

    async def delete_user_sessions(self, user_id: str) -> int:
        """Delete every session of the user (password change, user deletion); the count."""


class ThrottleStore(Protocol):
    """Throttle counters by key, updated atomically."""

    async def update_throttle(
        self,
        key: str,
        change: Callable[[ThrottleState | None], tuple[int | None, ThrottleState | None]],
    ) -> int | None:
        """Apply `change` to the key's state atomically (no update lost to a concurrent caller in
        any process), store its new state (None: delete) and return its result. `change` is pure
        and fast. SQL: `SELECT … FOR UPDATE` (or an upsert loop) in one transaction."""

    async def clear_throttle(self, key: str) -> None:
        """Forget the key (after a success)."""
