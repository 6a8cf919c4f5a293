"""Finding out what a presented token is, for introspection (RFC 7662) and revocation (RFC 7009).

A JWT access token is ours when it verifies with a published key, under one of our algorithms,
with `typ: at+jwt` and our `iss` (RFC 9068 §4); it is active until `exp` unless its `jti` is on the
revocation list (revoking its grant puts it there too). An opaque token is ours when its keyed
hash is stored; it is active until it expires or is revoked. A refresh token is ours when its
keyed hash belongs to a family; it is active while it is the family's newest token, the family is
not revoked and neither lifetime (idle, absolute) has passed (RFC 6749 §6, RFC 9700 §4.14.2).
Anything else is unknown (None), which both endpoints treat as "not active".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from authgate.jose import JoseError, jwt
from authgate.server.flows.refresh_tokens import RefreshPolicy
from authgate.server.keys import KeyManager
from authgate.server.secret_key import ServerSecret
from authgate.server.storage.protocols import OpaqueTokenStore, RefreshTokenStore, RevocationStore

__all__ = ["TokenInfo", "TokenInspector"]

_MAX_TOKEN = 16 * 1024


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What this server knows about one of its tokens."""

    kind: str  # "access_token" or "refresh_token"
    format: str  # "jwt" or "opaque"
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

    def introspection(self, issuer: str) -> dict[str, Any]:
        """The RFC 7662 §2.2 response members for an active token."""
        body: dict[str, Any] = {"active": True, "client_id": self.client_id}
        if self.kind == "access_token":
            body["token_type"] = "Bearer"  # RFC 7662 §2.2: the RFC 6749 §7.1 type
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
        return body


class TokenInspector:
    """Looks tokens up and revokes them."""

    def __init__(
        self,
        *,
        issuer: str,
        algorithms: Sequence[str],
        keys: KeyManager,
        opaque_tokens: OpaqueTokenStore,
        revocations: RevocationStore,
        secret: ServerSecret,
        clock: Callable[[], float],
        refresh_tokens: RefreshTokenStore | None = None,
        refresh_policy: RefreshPolicy | None = None,
    ) -> None:
        self._issuer = issuer
        self._algorithms = list(algorithms)
        self._keys = keys
        self._opaque_tokens = opaque_tokens
        self._revocations = revocations
        self._secret = secret
        self._clock = clock
        self._refresh_tokens = refresh_tokens
        self._refresh_policy = refresh_policy or RefreshPolicy()

    async def find(self, token: str) -> TokenInfo | None:
        """What `token` is, or None when it is not one of ours (or unreadable)."""
        if len(token) > _MAX_TOKEN:
            return None
        if token.count(".") == 2:
            return await self._find_jwt(token)
        token_hash = self._secret.hash_token(token)
        return await self._find_opaque(token_hash) or await self._find_refresh(token_hash)

    async def revoke(self, info: TokenInfo) -> None:
        """Revoke an access token found by `find` (idempotent). Refresh tokens are revoked with
        their family and grant (`flows.refresh_tokens.revoke_refresh_token`)."""
        if info.kind != "access_token":
            raise ValueError("revoke() takes access tokens")
        if info.token_hash is not None:
            await self._opaque_tokens.revoke_opaque_token(info.token_hash)
        else:
            await self._revocations.revoke_jti(info.jti, info.expires_at)

    async def _find_jwt(self, token: str) -> TokenInfo | None:
        try:
            claims = jwt.decode(
                token,
                self._keys.verification_keys(),
                algorithms=self._algorithms,
                issuer=self._issuer,
                audience=jwt.ANY_AUDIENCE,  # any of our APIs: callers judge `info.audience`
                required=("sub", "exp", "iat", "jti", "client_id"),
                typ="at+jwt",
                now=self._clock(),
            )
        except (JoseError, ValueError):
            return None
        if not isinstance(claims["aud"], str):  # ours name exactly one API
            return None
        revoked = await self._revocations.is_jti_revoked(claims["jti"])
        return TokenInfo(
            kind="access_token",
            format="jwt",
            active=not revoked,
            client_id=claims["client_id"],
            subject=claims["sub"],
            audience=claims["aud"],
            scope=claims.get("scope", ""),
            issued_at=claims["iat"],
            expires_at=claims["exp"],
            jti=claims["jti"],
            roles=tuple(claims.get("roles", ())),
        )

    async def _find_opaque(self, token_hash: str) -> TokenInfo | None:
        record = await self._opaque_tokens.get_opaque_token(token_hash)
        if record is None:
            return None
        active = not record.revoked and record.expires_at > self._clock()
        return TokenInfo(
            kind="access_token",
            format="opaque",
            active=active,
            client_id=record.client_id,
            subject=record.subject,
            audience=record.audience,
            scope=record.scope,
            issued_at=record.issued_at,
            expires_at=record.expires_at,
            jti=record.jti,
            roles=record.roles,
            token_hash=record.token_hash,
        )

    async def _find_refresh(self, token_hash: str) -> TokenInfo | None:
        if self._refresh_tokens is None:
            return None
        family = await self._refresh_tokens.find_family(token_hash)
        if family is None:
            return None
        expires_at = family.expires_at(self._refresh_policy)
        current = family.current_hash == token_hash
        active = current and family.revoked_at is None and self._clock() < expires_at
        return TokenInfo(
            kind="refresh_token",
            format="opaque",
            active=active,
            client_id=family.client_id,
            subject=family.user_id,
            audience=family.audiences[0] if family.audiences else "",
            scope=" ".join(family.scopes),
            issued_at=family.current_issued_at,
            expires_at=expires_at,
            jti="",  # refresh tokens have no identifier of their own to reveal
            token_hash=token_hash,
        )
