"""Access-token formats as strategies: how a token of one format is issued, found again and
revoked. An API's `token_format` (`models.TokenFormat`) chooses one of two: `jwt_format` (RFC 9068)
or `opaque_format` (256 random bits, stored under a keyed hash). The issuer (`issuer.TokenIssuer`)
and the inspector (`inspection.TokenInspector`) use the same strategies, so each format's rules
are written once, and introspection (RFC 7662) answers the same for both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from authgate.server.models import TokenFormat

__all__ = ["AccessTokenContent", "AccessTokenFormat", "TokenInfo"]


@dataclass(frozen=True, slots=True)
class AccessTokenContent:
    """What an access token says, whatever its format (the RFC 9068 §2.2 claims)."""

    jti: str
    client_id: str
    subject: str  # the client_id for client credentials; the user id for user flows
    audience: str  # the API's identifier
    scope: str  # space-delimited; may be empty
    roles: tuple[str, ...]
    issued_at: int
    expires_at: int
    signing_alg: str  # the API's algorithm, for formats that sign
    # The authorization grant it is issued under (user flows), so that revoking the grant
    # revokes the token; None for client credentials.
    grant_id: str | None = None
    # Further claims a grant adds (auth_time for user flows), never overriding ours.
    extra_claims: Mapping[str, Any] = field(default_factory=dict)
    # The thumbprint of the DPoP key the token is bound to (RFC 9449 §6: `cnf.jkt`), or None.
    jkt: str | None = None


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What this server knows about one of its tokens."""

    kind: Literal["access_token", "refresh_token"]
    format: TokenFormat  # refresh tokens are opaque
    active: bool
    client_id: str
    subject: str
    audience: str
    scope: str
    issued_at: int
    expires_at: int
    jti: str  # empty for refresh tokens
    roles: tuple[str, ...] = ()
    token_hash: str | None = field(default=None, repr=False)
    # The actor of a delegated token (RFC 8693 §4.1), as the verified token says; only JWTs
    # carry one (token exchange issues `act` into JWT access tokens only).
    act: Mapping[str, Any] | None = None
    jkt: str | None = None  # the DPoP key an access token is bound to (RFC 9449 §6)

    def introspection(self, issuer: str) -> dict[str, Any]:
        """The RFC 7662 §2.2 response members for an active token."""
        body: dict[str, Any] = {"active": True, "client_id": self.client_id}
        if self.kind == "access_token":
            # RFC 7662 §2.2: the RFC 6749 §7.1 type; RFC 9449 §6.2: DPoP, with the key's cnf.
            body["token_type"] = "DPoP" if self.jkt is not None else "Bearer"
            if self.jkt is not None:
                body["cnf"] = {"jkt": self.jkt}
        body.update(
            exp=self.expires_at,
            iat=self.issued_at,
            sub=self.subject,
            aud=self.audience,
            iss=issuer,
        )
        if self.jti:
            body["jti"] = self.jti
        if self.scope:
            body["scope"] = self.scope
        if self.roles:
            body["roles"] = list(self.roles)
        if self.act is not None:
            body["act"] = dict(self.act)  # RFC 8693 §4.1: the current actor, prior ones nested
        return body


class AccessTokenFormat(Protocol):
    """One access-token format."""

    @property
    def name(self) -> TokenFormat:
        """The `token_format` an API names to choose this format."""
        ...

    def recognizes(self, token: str) -> bool:
        """Whether a presented token has this format's shape (only then is it looked up)."""
        ...

    async def issue(self, content: AccessTokenContent) -> str:
        """A new token value saying `content` (signed, or stored)."""
        ...

    async def find(self, token: str) -> TokenInfo | None:
        """What `token` is, or None when it is not one of ours in this format."""
        ...

    async def revoke(self, info: TokenInfo) -> None:
        """Revoke a token `find` returned (idempotent)."""
        ...
