"""Storage roles of the authorization server, each a narrow Protocol with a written contract: the
registry (APIs, clients, users), signing keys, access tokens and single-use values, and the records
of the user-facing flows (RFC 6749 §4.1.2 and §10.5 single-use codes; RFC 9700 §4.14.2 refresh
rotation; RFC 8628 §3.5 polling).

Grants, flows and endpoints depend on the one role they use, never on a database. Every
implementation must honour these contracts across processes sharing one database: several
`authgate serve` processes run against one PostgreSQL with no other coordination, so atomicity
comes from the database (conditional updates, row locks, unique constraints, a database lock),
never from memory. `storage.sql` implements every role; `storage.memory` the flows' roles within
one process.

Shared rules: times are whole seconds since the epoch; records (`authgate.server.models`) are
immutable values; a method that "creates" raises `AlreadyExistsError` when the key is taken and
changes nothing; secrets are only ever stored as the keyed hashes the caller passes in, and methods
never log or return secrets beyond those hashes.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from authgate.server.models import (
    Api,
    AuditEvent,
    AuthorizationCode,
    Client,
    CodeRedemption,
    ConsentGrant,
    DeviceAuthorization,
    InitialAccessToken,
    OpaqueAccessToken,
    PushedRequest,
    RefreshFamily,
    Session,
    SigningKeyRecord,
    ThrottleState,
    User,
)

__all__ = [
    "AlreadyExistsError",
    "ApiLookup",
    "ApiStore",
    "AuditStore",
    "AuthorizationCodeStore",
    "ClientLookup",
    "ClientRecords",
    "ClientStore",
    "ConsentStore",
    "DeviceAuthorizationStore",
    "FlowStorage",
    "GrantRevoker",
    "GrantStore",
    "GrantTokenLog",
    "InitialAccessTokenStore",
    "KeyScheduleSession",
    "LockedFamily",
    "MaintenanceStore",
    "OpaqueTokenStore",
    "PushedRequestStore",
    "RefreshTokenStore",
    "RegistryReader",
    "ReplayStore",
    "RevocationStore",
    "SessionStore",
    "SettingsStore",
    "SigningKeyStore",
    "Storage",
    "ThrottleStore",
    "ThrottleUnavailable",
    "TokensRevoked",
    "UserLookup",
    "UserStore",
]


class AlreadyExistsError(Exception):
    """A record with this key already exists; nothing was changed."""


class ApiLookup(Protocol):
    """Finding one API (an `ApiStore`, or a cache in front of it)."""

    async def get_api(self, identifier: str) -> Api | None:
        """The API with exactly this identifier (no normalisation), or None."""


class ApiStore(ApiLookup, Protocol):
    """Resource servers, by identifier (the RFC 8707 resource and the tokens' `aud`)."""

    async def list_apis(self) -> list[Api]:
        """All APIs, ordered by identifier."""

    async def create_api(self, api: Api) -> None:
        """Store a new API; `AlreadyExistsError` if the identifier is taken."""

    async def delete_api(self, identifier: str) -> bool:
        """Delete the API and every client's access to it. False if it did not exist.

        Tokens already issued for it stay valid until they expire (JWTs cannot be recalled);
        opaque ones stop introspecting as active once no client may introspect them.
        """


class ClientLookup(Protocol):
    """Finding one client (a `ClientStore`, or a cache in front of it)."""

    async def get_client(self, client_id: str) -> Client | None:
        """The client with exactly this id, including its access list, or None."""


@dataclass(frozen=True, slots=True)
class ClientRecords:
    """What the store holds under a client id that no registered client has: a client named by
    the URL of its metadata document exists in the servers' memory only, but its consents, codes,
    refresh-token families and opaque access tokens are stored under that URL. Counts of live
    records (see `ClientStore.list_unregistered_clients`)."""

    client_id: str
    consents: int = 0
    refresh_families: int = 0
    opaque_access_tokens: int = 0
    authorization_codes: int = 0


class ClientStore(ClientLookup, Protocol):
    """Registered clients with their permissions (`Client.access`)."""

    async def list_clients(self) -> list[Client]:
        """All clients, ordered by name then id."""

    async def list_unregistered_clients(
        self, now: int, client_id: str | None = None
    ) -> list[ClientRecords]:
        """The client ids that live records name but no registered client has, each with its
        counts, ordered by id (only `client_id`'s, when given). Live at `now`: every consent (it
        does not expire), refresh-token families neither revoked nor past the retention's idle or
        absolute lifetime, opaque access tokens neither revoked nor expired, codes neither used
        nor expired. An id whose records are all dead is not listed."""

    async def create_client(self, client: Client) -> None:
        """Store a new client and its access list atomically; `AlreadyExistsError` on a taken id.

        Every `ApiAccess.api` must name an existing API, else `LookupError` and nothing stored.
        """

    async def delete_client(self, client_id: str) -> bool:
        """Delete the client with its access list, opaque tokens, authorization codes, refresh
        tokens, device authorizations and consents. False if absent."""

    async def delete_unregistered_client(self, client_id: str) -> bool:
        """Delete every record stored under a client id that no registered client has (a client
        named by the URL of its metadata document): its consents, codes, refresh-token families
        with their tokens and opaque access tokens, live or dead, as `delete_client` deletes a
        registered client's. False when a registered client has the id (nothing is deleted) or
        nothing was stored under it."""

    async def set_client_secret(
        self,
        client_id: str,
        secret_hash: str,
        previous_secret_hash: str | None,
        previous_secret_expires_at: int | None,
    ) -> bool:
        """Replace the stored secret hash (and the grace-period one). False if absent."""

    async def replace_client(self, client: Client) -> bool:
        """Replace the stored client with the same id by `client` (every field but `client_id`,
        `created_at`, `origin` and `first_used_at`), its access list with it, atomically (an RFC
        7592 update). False if absent; `LookupError` (nothing changed) for an unknown API."""

    async def mark_client_used(self, client_id: str, now: int) -> None:
        """Record the client's first use at `now`; a client already used keeps its first time."""


class InitialAccessTokenStore(Protocol):
    """Initial access tokens of the registration endpoint (RFC 7591 §3), by keyed hash."""

    async def create_initial_access_token(self, token: InitialAccessToken) -> None:
        """Store a new token; `AlreadyExistsError` when its id or hash is taken."""

    async def list_initial_access_tokens(self) -> list[InitialAccessToken]:
        """Every token, revoked and expired ones included, oldest first."""

    async def find_initial_access_token(self, token_hash: str) -> InitialAccessToken | None:
        """The token with this hash, whatever its state, or None (nothing is counted)."""

    async def revoke_initial_access_token(self, token_id: str, now: int) -> bool:
        """Mark the token revoked (it registers no more clients). False if absent or revoked."""

    async def use_initial_access_token(
        self, token_hash: str, now: int
    ) -> InitialAccessToken | None:
        """Count one use of the token with this hash and return it as it was before; None (and
        nothing counted) when unknown, revoked, expired at `now` or used `max_uses` times.
        Atomic across processes: of concurrent callers, at most `max_uses - uses` succeed."""


class UserLookup(Protocol):
    """Finding one user by id (a `UserStore`, or a cache in front of it)."""

    async def get_user(self, user_id: str) -> User | None:
        """The user with this id, or None."""


class RegistryReader(ApiLookup, ClientLookup, UserLookup, Protocol):
    """The three lookups by key, which the registry cache answers from memory."""


class UserStore(UserLookup, Protocol):
    """People who sign in. Usernames are unique and compared exactly."""

    async def get_user_by_username(self, username: str) -> User | None:
        """The user with exactly this username, or None."""

    async def list_users(self) -> list[User]:
        """All users, ordered by username."""

    async def create_user(self, user: User) -> None:
        """Store a new user; `AlreadyExistsError` if the id or the username is taken."""

    async def delete_user(self, username: str) -> bool:
        """Delete the user with their sessions, consents, codes and refresh tokens. False if
        absent. (Revoke their grants first to end their access tokens too.)"""

    async def set_password_hash(self, username: str, password_hash: str) -> bool:
        """Replace the user's password hash. False if absent."""

    async def set_user_profile(
        self, username: str, *, email: str | None, email_verified: bool, name: str | None
    ) -> bool:
        """Replace the user's email, its verified flag and name (the OpenID Connect claims).
        False if absent."""


class KeyScheduleSession(Protocol):
    """The signing keys as seen while holding the schedule lock.

    Reads see every change committed before the lock was taken; writes become visible to other
    processes together, when the lock is released without an exception, and not at all otherwise.
    """

    async def list_signing_keys(self) -> list[SigningKeyRecord]:
        """All stored keys, ordered by `activate_at`, then `kid`."""

    async def insert_signing_key(self, record: SigningKeyRecord) -> None:
        """Store a new key; `AlreadyExistsError` on a taken kid."""

    async def update_key_schedule(
        self, kid: str, *, activate_at: int, retire_at: int | None, remove_at: int | None
    ) -> None:
        """Change a key's schedule (bringing a rotation forward, scheduling retirement)."""

    async def delete_signing_key(self, kid: str) -> None:
        """Remove a key for good (after `remove_at`)."""


class SigningKeyStore(Protocol):
    """Signing keys. The private parts are stored sealed; this store never opens them."""

    async def list_signing_keys(self) -> list[SigningKeyRecord]:
        """All stored keys, ordered by `activate_at`, then `kid` (a consistent snapshot)."""

    def key_schedule_lock(self) -> AbstractAsyncContextManager[KeyScheduleSession]:
        """Hold the one schedule lock of the database (all processes share it).

        At most one holder at a time across every process using the database; others wait.
        This is what guarantees that one successor key, not two, is created per rotation.
        """


class OpaqueTokenStore(Protocol):
    """Opaque access tokens, looked up by the keyed hash of their value."""

    async def save_opaque_token(self, record: OpaqueAccessToken) -> None:
        """Store a newly issued token (hash collisions are impossible at 256 bits). A token whose
        `grant_id` was revoked (`GrantStore.revoke_grant`) is stored revoked."""

    async def get_opaque_token(self, token_hash: str) -> OpaqueAccessToken | None:
        """The record for this hash, revoked or expired ones included, or None once purged."""

    async def revoke_opaque_token(self, token_hash: str) -> bool:
        """Mark the token revoked (idempotent). False if no such token."""


class RevocationStore(Protocol):
    """The revocation list of JWT access tokens, by `jti`, kept until the token expires."""

    async def revoke_jti(self, jti: str, expires_at: int) -> None:
        """Record that the token with this `jti` is revoked (idempotent)."""

    async def is_jti_revoked(self, jti: str) -> bool:
        """True when `revoke_jti` was called for this `jti` (until it is purged after expiry)."""


class ReplayStore(Protocol):
    """Single-use values such as client assertion `jti`s (RFC 7523 §3, item 7)."""

    async def consume_once(self, namespace: str, value: str, expires_at: int, now: int) -> bool:
        """True the first time (`namespace`, `value`) is presented; False every later time.

        Exactly one of several concurrent callers, in any process, gets True. A value whose
        previous use expired (`expires_at <= now`) may be used again: by then the assertion that
        carried it is expired and refused anyway.
        """


class SettingsStore(Protocol):
    """Small named values the server keeps about itself (the secret-key check value)."""

    async def get_or_set_setting(self, name: str, value: str) -> str:
        """The stored value of `name`; stores `value` first when there is none (atomically)."""


class AuditStore(Protocol):
    """The audit trail: security events, appended, listed, purged after the retention."""

    async def append_audit_event(self, event: AuditEvent) -> None:
        """Store `event` (its `event_id` is ignored: the store numbers events in order)."""

    async def list_audit_events(self, since: int, limit: int) -> list[AuditEvent]:
        """Events at or after `since`, oldest first, at most `limit` (the newest ones when more
        match), each with its `event_id`."""


class MaintenanceStore(Protocol):
    """Cleanup of records that no longer mean anything."""

    async def purge_expired(self, now: int) -> int:
        """Delete expired opaque tokens, revocation entries and used values, and the flows'
        records past their lifetimes (codes and device authorizations an hour after expiry,
        sessions, refresh-token families, throttle counters, audit events past the audit
        retention, dynamically registered clients never used within the retention's
        `unused_registered_client`, pushed authorization requests once expired); return the count
        of rows."""


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


class PushedRequestStore(Protocol):
    """Pushed authorization requests (RFC 9126) by the keyed hash of their `request_uri`; each
    may be used once, by the client that pushed it, before it expires."""

    async def save_pushed_request(self, request: PushedRequest) -> None:
        """Store a newly pushed request (`AlreadyExistsError` on a taken hash)."""

    async def use_pushed_request(
        self, uri_hash: str, client_id: str, now: int
    ) -> PushedRequest | None:
        """Mark the request used and return it, or None: unknown, already used, expired
        (`expires_at <= now`), or pushed by another client. Exactly one of several concurrent
        callers, in any process, gets the record. A refusal for another client or after expiry
        leaves the record as it was (unused). SQL: one `UPDATE … SET used_at = :now WHERE
        uri_hash = :h AND client_id = :c AND used_at IS NULL AND expires_at > :now`, decided by
        its row count. Expired rows are deleted by `purge_expired`."""


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

    def grant_transaction(self, grant_id: str) -> AbstractAsyncContextManager[None]:
        """A block in which the records of a new grant's tokens (`record_grant_token`,
        `save_opaque_token`, `create_family` for `grant_id`) may be written in one transaction:
        all of them when the block ends normally, none when it raises. Stores without
        transactions just run the block."""

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

    async def count_pending_device_authorizations(self, now: int) -> int:
        """How many records wait for their user's decision (`pending`, not expired at `now`): a
        read of the live records only (the SQL stores use the index on `expires_at`), for the
        metrics."""


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


class ThrottleUnavailable(Exception):
    """A throttle store could not count an attempt and its failure mode is closed: the attempt is
    refused (503 with `Retry-After: retry_after`) rather than checked uncounted."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the throttle's store is unavailable; retry in {retry_after}s")
        self.retry_after = retry_after


class ThrottleStore(Protocol):
    """Throttle counters by key, updated atomically."""

    async def update_throttle(
        self,
        key: str,
        change: Callable[[ThrottleState | None], tuple[int | None, ThrottleState | None]],
    ) -> int | None:
        """Apply `change` to the key's state atomically (no update lost to a concurrent caller in
        any process), store its new state (None: delete) and return its result. `change` is pure
        and fast. SQL: `SELECT … FOR UPDATE` (or an upsert loop) in one transaction. A store that
        cannot count may return None without applying `change` (fail open) or raise
        `ThrottleUnavailable` (fail closed)."""

    async def clear_throttle(self, key: str) -> None:
        """Forget the key (after a success)."""


class GrantTokenLog(Protocol):
    """The JWT access tokens issued under authorization grants (opaque tokens carry their
    `grant_id` themselves)."""

    async def record_grant_token(self, grant_id: str, jti: str, expires_at: int) -> None:
        """Remember that the JWT access token `jti` (valid until `expires_at`) was issued under
        `grant_id`, so `revoke_grant` puts it on the revocation list. Opaque tokens carry their
        `grant_id` instead. When the grant is already revoked (a redemption racing the replay
        that revoked it) the `jti` is revoked at once; `revoke_grant` and this method never
        interleave for one grant (a lock in the database)."""


@dataclass(frozen=True, slots=True)
class TokensRevoked:
    """What `GrantStore.revoke_tokens_of` revoked: grants (each with its refresh-token family
    and tracked access tokens) and opaque access tokens issued outside any grant."""

    grants: int
    opaque_tokens: int


class GrantStore(GrantRevoker, GrantTokenLog, Protocol):
    """Everything issued under an authorization grant (a code, a device authorization and the
    refresh-token family they start), so that it can be revoked at once."""

    async def revoke_user_grants(self, user_id: str, client_id: str | None, now: int) -> int:
        """`revoke_grant` for every live refresh-token family of the user (with this client
        only, when given); the number of grants revoked."""

    async def revoke_tokens_of(
        self, *, client_id: str | None = None, user_id: str | None = None, now: int
    ) -> TokensRevoked:
        """Everything one client (or one user) holds: `revoke_grant` for every grant with a live
        refresh-token family or live opaque access token of theirs, then every other live opaque
        access token of theirs marked revoked. JWT access tokens outside any grant
        (client_credentials) are not listed anywhere and run out on their own."""


class FlowStorage(
    AuthorizationCodeStore,
    PushedRequestStore,
    GrantStore,
    RefreshTokenStore,
    DeviceAuthorizationStore,
    ConsentStore,
    SessionStore,
    ThrottleStore,
    Protocol,
):
    """The stores of the user-facing flows (`authgate.server.flows`) on one database."""


class Storage(
    ApiStore,
    ClientStore,
    UserStore,
    SigningKeyStore,
    OpaqueTokenStore,
    RevocationStore,
    ReplayStore,
    SettingsStore,
    MaintenanceStore,
    AuditStore,
    InitialAccessTokenStore,
    FlowStorage,
    Protocol,
):
    """Every role together, as one database provides them."""

    async def close(self) -> None:
        """Release connections."""
