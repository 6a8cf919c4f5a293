"""Opaque access tokens: 256 random bits (`secret_key.generate_token`), stored only under the
server's keyed hash together with what a JWT would say, so that introspection (RFC 7662) answers
the same for both formats. A presented token is ours when its hash is stored; it is active until
it expires or is revoked, and revoking marks the stored record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from authgate.server.models import OpaqueAccessToken
from authgate.server.secret_key import generate_token
from authgate.server.storage.protocols import OpaqueTokenStore
from authgate.server.tokens.formats import AccessTokenContent, TokenInfo

__all__ = ["OpaqueAccessTokens"]


class OpaqueAccessTokens:
    """The `opaque` access-token format."""

    name: Literal["opaque"] = "opaque"

    def __init__(
        self,
        store: OpaqueTokenStore,
        *,
        hash_token: Callable[[str], str],
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._hash_token = hash_token
        self._clock = clock

    def recognizes(self, token: str) -> bool:
        """Anything that is not shaped like a JWT (ours are base64url, without dots)."""
        return token.count(".") != 2

    async def issue(self, content: AccessTokenContent) -> str:
        value = generate_token()
        await self._store.save_opaque_token(
            OpaqueAccessToken(
                token_hash=self._hash_token(value),
                jti=content.jti,
                client_id=content.client_id,
                subject=content.subject,
                audience=content.audience,
                scope=content.scope,
                roles=content.roles,
                issued_at=content.issued_at,
                expires_at=content.expires_at,
                grant_id=content.grant_id,
                jkt=content.jkt,
            )
        )
        return value

    async def find(self, token: str) -> TokenInfo | None:
        record = await self._store.get_opaque_token(self._hash_token(token))
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
            jkt=record.jkt,
        )

    async def revoke(self, info: TokenInfo) -> None:
        if info.token_hash is not None:
            await self._store.revoke_opaque_token(info.token_hash)
