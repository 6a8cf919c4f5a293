"""Finding out what a presented token is, for introspection (RFC 7662), revocation (RFC 7009) and
userinfo: an access token of either format (`formats`: each format's own rules), or a refresh
token. A refresh token is ours when its keyed hash belongs to a family; it is active while it is
the family's newest token, the family is not revoked and neither lifetime (idle, absolute) has
passed (RFC 6749 §6, RFC 9700 §4.14.2). Anything else is unknown (None), which every endpoint
treats as "not active".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from authgate.server.models import RefreshLifetimes, TokenFormat
from authgate.server.storage.protocols import RefreshTokenStore
from authgate.server.tokens.formats import AccessTokenFormat, TokenInfo

__all__ = ["TokenInspector"]

_MAX_TOKEN = 16 * 1024


class TokenInspector:
    """Looks tokens up and revokes access tokens."""

    def __init__(
        self,
        *,
        formats: Mapping[TokenFormat, AccessTokenFormat],
        refresh_tokens: RefreshTokenStore,
        refresh_lifetimes: RefreshLifetimes,
        hash_token: Callable[[str], str],
        clock: Callable[[], float],
    ) -> None:
        self._formats = formats
        self._refresh_tokens = refresh_tokens
        self._refresh_lifetimes = refresh_lifetimes
        self._hash_token = hash_token
        self._clock = clock

    async def find(self, token: str) -> TokenInfo | None:
        """What `token` is, or None when it is not one of ours (or unreadable)."""
        if len(token) > _MAX_TOKEN:
            return None
        for fmt in self._formats.values():
            if fmt.recognizes(token):  # the formats' shapes do not overlap
                info = await fmt.find(token)
                if info is None and fmt.name == "opaque":  # refresh tokens are opaque values
                    info = await self._find_refresh(token)
                return info
        return None

    async def revoke(self, info: TokenInfo) -> None:
        """Revoke an access token found by `find` (idempotent), as its format does. Refresh tokens
        are revoked with their family and grant (`flows.refresh_tokens.revoke_refresh_token`)."""
        if info.kind != "access_token":
            raise ValueError("revoke() takes access tokens")
        await self._formats[info.format].revoke(info)

    async def _find_refresh(self, token: str) -> TokenInfo | None:
        token_hash = self._hash_token(token)
        family = await self._refresh_tokens.find_family(token_hash)
        if family is None:
            return None
        expires_at = family.expires_at(self._refresh_lifetimes)
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
