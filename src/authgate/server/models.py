"""The records the authorization server keeps: APIs, clients, users, signing keys, tokens.

Plain frozen data with no behaviour beyond derived properties; the stores load and save them.
Times are whole seconds since the epoch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "AUTH_METHODS",
    "Api",
    "ApiAccess",
    "Client",
    "OpaqueAccessToken",
    "SigningKeyRecord",
    "TokenFormat",
    "User",
]

TokenFormat = Literal["jwt", "opaque"]
# RFC 7591 §2 token_endpoint_auth_method values this server implements.
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")


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
    roles: tuple[str, ...] = ()
    jwks: Mapping[str, Any] | None = None
    jwks_uri: str | None = None
    secret_hash: str | None = field(default=None, repr=False)
    # After `rotate-secret --grace`, the old secret keeps working until this time.
    previous_secret_hash: str | None = field(default=None, repr=False)
    previous_secret_expires_at: int | None = None
    created_at: int = 0

    @property
    def is_public(self) -> bool:
        """A client that cannot keep a secret (RFC 6749 §2.1)."""
        return self.auth_method == "none"

    @property
    def pkce_required(self) -> bool:
        """Whether an authorization request of this client must carry a PKCE challenge."""
        return self.is_public or self.require_pkce

    def access_to(self, api: str) -> ApiAccess | None:
        """This client's permissions on the API with this identifier, if any."""
        for entry in self.access:
            if entry.api == api:
                return entry
        return None


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
