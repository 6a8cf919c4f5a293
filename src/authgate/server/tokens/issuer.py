"""The one access-token issuer every grant uses, in the format the API names (`formats`); and the
signing of OpenID Connect ID tokens (Core §2), with the same keys and `typ: JWT`."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from authgate.server.models import Api, Client, TokenFormat
from authgate.server.observability.counters import note_issued
from authgate.server.random_pool import RandomPool
from authgate.server.targets.scopes import format_scope
from authgate.server.tokens.dpop import bound_key
from authgate.server.tokens.formats import AccessTokenContent, AccessTokenFormat
from authgate.server.tokens.signing import JwtSigner

__all__ = ["AccessTokenRequest", "IssuedAccessToken", "TokenIssuer"]

# A token's `jti`: 128 random bits, base64url (what `secrets.token_urlsafe(16)` gives).
_JTIS = RandomPool(16)


def _new_jti() -> str:
    return base64.urlsafe_b64encode(_JTIS.take()).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class AccessTokenRequest:
    """What a grant decided: who the token is for, for which API, with which scopes."""

    client: Client
    api: Api
    scopes: tuple[str, ...]
    subject: str  # the client_id for client credentials; the user id for user flows
    roles: tuple[str, ...] = ()
    # Further claims a grant adds (auth_time, acr, … for user flows), never overriding ours.
    extra_claims: Mapping[str, Any] = field(default_factory=dict)
    # The authorization grant the token comes from (user flows), recorded with the token so
    # that revoking the grant revokes it.
    grant_id: str | None = None
    # The latest the token may expire (a token exchange: not after the tokens it came from).
    not_after: int | None = None


@dataclass(frozen=True, slots=True)
class IssuedAccessToken:
    """An access token and what the token response says about it (RFC 6749 §5.1)."""

    value: str = field(repr=False)
    jti: str
    expires_in: int
    expires_at: int
    scope: str
    token_type: str = "Bearer"


class TokenIssuer:
    """Issues access tokens for the grants, and signs ID tokens."""

    def __init__(
        self,
        formats: Mapping[TokenFormat, AccessTokenFormat],
        signer: JwtSigner,
        clock: Callable[[], float],
    ) -> None:
        self._formats = formats
        self._signer = signer
        self._clock = clock

    async def issue(self, request: AccessTokenRequest) -> IssuedAccessToken:
        """A new access token for `request`, in the format its API names."""
        now = int(self._clock())
        ttl = request.api.access_token_ttl
        if request.not_after is not None:
            ttl = max(0, min(ttl, request.not_after - now))
        jkt = bound_key()  # the DPoP key the token request proved (RFC 9449 §5), if any
        content = AccessTokenContent(
            jti=_new_jti(),
            client_id=request.client.client_id,
            subject=request.subject,
            audience=request.api.identifier,
            scope=format_scope(request.scopes),
            roles=request.roles,
            issued_at=now,
            expires_at=now + ttl,
            signing_alg=request.api.signing_alg,
            grant_id=request.grant_id,
            extra_claims=request.extra_claims,
            jkt=jkt,
        )
        value = await self._formats[request.api.token_format].issue(content)
        note_issued(request.api.token_format, request.api.signing_alg)  # for the metrics
        return IssuedAccessToken(
            value=value,
            jti=content.jti,
            expires_in=ttl,
            expires_at=content.expires_at,
            scope=content.scope,
            token_type="DPoP" if jkt is not None else "Bearer",  # RFC 9449 §5
        )

    async def sign_id_token(self, claims: Mapping[str, Any], alg: str = "RS256") -> str:
        """An OpenID Connect ID token (OIDC Core §2) with these claims, signed by the active key."""
        return await self._signer.sign(claims, alg, "JWT")

    def close(self) -> None:
        """Stop the signing threads."""
        self._signer.close()
