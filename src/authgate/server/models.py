"""The records the authorization server keeps: APIs, clients, users, signing keys, tokens, and the
records of the user-facing flows (codes, device authorizations, refresh-token families, consent,
sessions, throttle counters).

Plain frozen data with no behaviour beyond derived properties and the rules that read only the
record itself; the stores (`storage.protocols`) load and save them, the flows decide with them.
Times are whole seconds since the epoch. Secrets never appear: only their keyed hashes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = [
    "AUTH_METHODS",
    "CLIENT_ORIGINS",
    "PROFILES",
    "Api",
    "ApiAccess",
    "AuditEvent",
    "AuthorizationCode",
    "Client",
    "CodeRedemption",
    "ConsentGrant",
    "DeviceAuthorization",
    "DeviceStatus",
    "InitialAccessToken",
    "OpaqueAccessToken",
    "PushedRequest",
    "RefreshFamily",
    "RefreshLifetimes",
    "Session",
    "SigningKeyRecord",
    "ThrottleState",
    "TokenFormat",
    "User",
]

TokenFormat = Literal["jwt", "opaque"]
DeviceStatus = Literal["pending", "approved", "denied", "used"]
# RFC 7591 §2 token_endpoint_auth_method values this server implements.
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
# Security profiles a client (or the whole server, `[security] profile`) may be held to.
PROFILES = ("fapi2",)
# How a client came to be registered: `authgate client create`, the registration endpoint
# (RFC 7591), or a client ID metadata document.
CLIENT_ORIGINS = ("cli", "registration", "metadata_document")


@dataclass(frozen=True, slots=True)
class Api:
    """A resource server. Its `identifier` (RFC 8707 resource) is the `aud` of its tokens."""

    identifier: str
    name: str
    scopes: tuple[str, ...]
    token_format: TokenFormat
    access_token_ttl: int
    signing_alg: str
    created_at: int


@dataclass(frozen=True, slots=True)
class ApiAccess:
    """What one client may do with one API: request tokens with these scopes, introspect."""

    api: str
    scopes: tuple[str, ...] = ()
    may_request: bool = True
    may_introspect: bool = False


@dataclass(frozen=True, slots=True)
class Client:
    """A registered OAuth client (RFC 6749 §2, RFC 7591 §2 metadata names)."""

    client_id: str
    name: str
    auth_method: str
    grant_types: tuple[str, ...]
    access: tuple[ApiAccess, ...] = ()
    redirect_uris: tuple[str, ...] = ()
    # OpenID Connect RP-Initiated Logout 1.0 §3.1; matched like redirect URIs.
    post_logout_redirect_uris: tuple[str, ...] = ()
    # PKCE for a confidential client too (public clients always need it, RFC 9700 §2.1.1).
    require_pkce: bool = False
    # A refresh token with every code/device grant, not only when `offline_access` is asked for.
    always_issue_refresh_token: bool = False
    # Every token request must carry a DPoP proof, so every token is DPoP-bound (RFC 9449 §5).
    require_dpop: bool = False
    # OpenID Connect Registration §2 `id_token_signed_response_alg`: the alg of its ID tokens.
    id_token_alg: str = "RS256"
    # A security profile the client is held to (`PROFILES`), on top of the server's; None: none.
    profile: str | None = None
    roles: tuple[str, ...] = ()
    jwks: Mapping[str, Any] | None = None
    jwks_uri: str | None = None
    # RFC 9126 §5: this client's authorization requests must be pushed (/par) first.
    require_pushed_requests: bool = False
    # Token exchange (RFC 8693) policy: may it ask for a token without `act` (impersonation,
    # §1.1), and may its subject and actor tokens come from `[token_exchange] issuer`?
    exchange_impersonation: bool = False
    exchange_external: bool = False
    secret_hash: str | None = field(default=None, repr=False)
    # After `rotate-secret --grace`, the old secret keeps working until this time.
    previous_secret_hash: str | None = field(default=None, repr=False)
    previous_secret_expires_at: int | None = None
    created_at: int = 0
    origin: str = "cli"  # one of CLIENT_ORIGINS
    # RFC 7591 §2 / OpenID Connect Registration §2: "web" or "native"; None when not given (CLI).
    application_type: str | None = None
    # RFC 7592 §3: the keyed hash of the registration access token (registered clients only).
    registration_token_hash: str | None = field(default=None, repr=False)
    # When the client first authenticated (or named itself) at an endpoint; None: never used.
    first_used_at: int | None = None

    @property
    def is_public(self) -> bool:
        """A client that cannot keep a secret (RFC 6749 §2.1)."""
        return self.auth_method == "none"

    @property
    def pkce_required(self) -> bool:
        """Whether an authorization request of this client must carry a PKCE challenge (S256, the
        only method served; FAPI 2.0 Security Profile §5.3.2.2 for `fapi2` clients)."""
        return self.is_public or self.require_pkce or self.profile == "fapi2"

    def held_to(self, server_profile: str | None) -> Client:
        """This client as the server-wide profile (`[security] profile`) holds it: one without a
        profile of its own gets the server's."""
        if server_profile is None or self.profile is not None:
            return self
        return dataclasses.replace(self, profile=server_profile)

    @property
    def dpop_required(self) -> bool:
        """Whether every token request must carry a DPoP proof (FAPI 2.0 §5.3.2.1: sender-
        constrained tokens only, for `fapi2` clients)."""
        return self.require_dpop or self.profile == "fapi2"

    @property
    def pushed_requests_required(self) -> bool:
        """Whether authorization requests must come through /par (FAPI 2.0 §5.3.2.2 for `fapi2`
        clients)."""
        return self.require_pushed_requests or self.profile == "fapi2"

    def access_to(self, api: str) -> ApiAccess | None:
        """This client's permissions on the API with this identifier, if any."""
        for entry in self.access:
            if entry.api == api:
                return entry
        return None


@dataclass(frozen=True, slots=True)
class InitialAccessToken:
    """An initial access token of the registration endpoint (RFC 7591 §3): stored under its keyed
    hash only, known by its public `token_id`; it registers at most `max_uses` clients (None:
    any number) until `expires_at` (None: until revoked)."""

    token_id: str
    token_hash: str = field(repr=False)
    created_at: int
    expires_at: int | None = None
    max_uses: int | None = None
    uses: int = 0
    revoked_at: int | None = None

    def usable(self, now: int) -> bool:
        """Whether it may register one more client at `now`."""
        return (
            self.revoked_at is None
            and (self.expires_at is None or now < self.expires_at)
            and (self.max_uses is None or self.uses < self.max_uses)
        )


@dataclass(frozen=True, slots=True)
class User:
    """A person who signs in (used by the user-facing flows)."""

    user_id: str
    username: str
    password_hash: str | None = field(default=None, repr=False)
    email: str | None = None
    email_verified: bool = False
    name: str | None = None
    roles: tuple[str, ...] = ()
    created_at: int = 0


@dataclass(frozen=True, slots=True)
class SigningKeyRecord:
    """One signing key and its schedule.

    Published from `created_at`, signs from `activate_at` until `retire_at`, leaves the JWKS at
    `remove_at`. `retire_at`/`remove_at` stay unset until a successor is scheduled.
    """

    kid: str
    alg: str
    public_jwk: Mapping[str, Any]
    sealed_private_key: bytes = field(repr=False)
    created_at: int
    activate_at: int
    retire_at: int | None = None
    remove_at: int | None = None

    def state(self, now: float) -> Literal["published", "active", "retired", "removed"]:
        """Where the key stands in its lifecycle at `now`."""
        if self.remove_at is not None and now >= self.remove_at:
            return "removed"
        if self.retire_at is not None and now >= self.retire_at:
            return "retired"
        return "active" if now >= self.activate_at else "published"


@dataclass(frozen=True, slots=True)
class OpaqueAccessToken:
    """An opaque access token, stored under its keyed hash only."""

    token_hash: str = field(repr=False)
    jti: str
    client_id: str
    subject: str
    audience: str
    scope: str
    roles: tuple[str, ...]
    issued_at: int
    expires_at: int
    revoked: bool = False
    # The authorization grant (code, device or refresh family) it was issued under, if any, so
    # that `GrantRevoker.revoke_grant` finds it; None for client credentials.
    grant_id: str | None = None
    # The thumbprint of the DPoP key the token is bound to (RFC 9449 §6), or None.
    jkt: str | None = None


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    """What a code is bound to (RFC 6749 §4.1.2). `code_hash` is the keyed hash of the code, the
    store's key."""

    code_hash: str
    grant_id: str
    client_id: str
    redirect_uri: str
    redirect_uri_in_request: bool
    code_challenge: str | None
    scopes: tuple[str, ...]
    audiences: tuple[str, ...]
    nonce: str | None
    user_id: str
    auth_time: int
    amr: tuple[str, ...]
    issued_at: int
    expires_at: int
    # RFC 9449 §10: the DPoP key the authorization request named (`dpop_jkt`); the token request
    # must prove possession of it.
    dpop_jkt: str | None = None


@dataclass(frozen=True, slots=True)
class CodeRedemption:
    """The stored code and whether this redemption was the first (False: a replay)."""

    code: AuthorizationCode
    first_use: bool


@dataclass(frozen=True, slots=True)
class PushedRequest:
    """A pushed authorization request (RFC 9126 §2): the validated parameters, in order, kept
    under the keyed hash of the random part of its `request_uri` until it is used once or
    expires. `client_id` is the authenticated client that pushed it (the only one that may use
    it, §4)."""

    uri_hash: str
    client_id: str
    params: tuple[tuple[str, str], ...]
    created_at: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class DeviceAuthorization:
    """One device authorization (RFC 8628), from the device's request until its tokens are
    collected. Every change increments `version`, the store's compare-and-set key."""

    device_code_hash: str
    user_code_hash: str
    grant_id: str
    client_id: str
    scopes: tuple[str, ...]
    audiences: tuple[str, ...]
    created_at: int
    expires_at: int
    interval: int
    status: DeviceStatus = "pending"
    last_polled_at: int | None = None
    user_id: str | None = None
    auth_time: int | None = None
    amr: tuple[str, ...] = ()
    version: int = 0


class RefreshLifetimes(Protocol):
    """The two lifetimes of refresh tokens (`flows.refresh_tokens.RefreshPolicy`), in seconds."""

    @property
    def idle_lifetime(self) -> int: ...

    @property
    def absolute_lifetime(self) -> int: ...


@dataclass(frozen=True, slots=True)
class RefreshFamily:
    """One chain of rotated refresh tokens and what they are bound to.

    `generation` numbers the newest token (the first is 0) and `current_hash` is its keyed hash;
    the store keeps the hash of every generation so that an old token is recognised as reuse.
    `rotated_at`/`replay`/`replay_scopes` describe the last rotation: when it happened, its token
    response sealed by the caller, and the access-token scopes it granted.
    """

    family_id: str
    grant_id: str
    client_id: str
    user_id: str
    scopes: tuple[str, ...]
    audiences: tuple[str, ...]
    auth_time: int
    amr: tuple[str, ...]
    created_at: int
    generation: int
    current_hash: str
    current_issued_at: int
    rotated_at: int | None = None
    replay: bytes | None = None
    replay_scopes: tuple[str, ...] | None = None
    revoked_at: int | None = None
    # RFC 9449 §5: a public client's refresh tokens are bound to the DPoP key of the request
    # that started the family; every refresh must prove possession of it.
    jkt: str | None = None

    def ends_at(self, lifetimes: RefreshLifetimes) -> int:
        """When the whole family dies: `absolute_lifetime` after the sign-in that started it."""
        return self.created_at + lifetimes.absolute_lifetime

    def expires_at(self, lifetimes: RefreshLifetimes) -> int:
        """When the newest token stops working: `idle_lifetime` after it was issued, or when the
        family ends, whichever comes first (RFC 9700 §4.14.2)."""
        return min(self.current_issued_at + lifetimes.idle_lifetime, self.ends_at(lifetimes))


@dataclass(frozen=True, slots=True)
class ConsentGrant:
    """What `user_id` allowed `client_id`: scopes and API identifiers, as of `granted_at`."""

    user_id: str
    client_id: str
    scopes: frozenset[str]
    audiences: frozenset[str]
    granted_at: int


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser. `session_hash` (keyed hash of the cookie value) is the store's key;
    `auth_time` and `amr` describe the sign-in (OpenID Connect Core §2)."""

    session_hash: str
    user_id: str
    auth_time: int
    amr: tuple[str, ...]
    created_at: int
    last_seen: int


@dataclass(frozen=True, slots=True)
class ThrottleState:
    """Attempts not yet cleared by a success, the last one's time, and when the next is allowed."""

    failures: int
    last_failure: int
    blocked_until: int


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One security event of the audit trail (see `authgate.server.audit`): when, what (`kind`,
    such as "client.created"), by whom (`actor`: "admin", "server", a client id) and about what
    (`subject`: a client id, API identifier, username, key id...), with a few bounded `details`.
    Never a secret, token, code or password. `event_id` is the store's (increasing) number."""

    at: int
    kind: str
    actor: str
    subject: str
    details: Mapping[str, Any] = field(default_factory=dict)
    event_id: int | None = None
