"""JWT access tokens (RFC 9068).

Issued with the header `typ: at+jwt` and the signing key's `kid` (§2.1), and the claims `iss`,
`sub`, `aud`, `exp`, `iat`, `jti`, `client_id`, `scope` and, when the client or user has roles,
`roles` (§2.2, §2.2.3.1); a DPoP-bound token carries `cnf.jkt` (RFC 9449 §6.1). One issued
under an authorization grant is listed with it
(`GrantTokenLog`), so that revoking the grant puts its `jti` on the revocation list.

A presented JWT is ours when it verifies with a published key, under one of our algorithms, with
`typ: at+jwt` and our `iss` (§4); it is active until `exp` unless its `jti` is revoked. JWTs cannot
be recalled, so revoking one lists its `jti` until it expires.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from authgate.jose import JoseError, jwt
from authgate.server.keys import KeyManager
from authgate.server.storage.protocols import GrantTokenLog, RevocationStore
from authgate.server.tokens.formats import AccessTokenContent, TokenInfo
from authgate.server.tokens.signing import JwtSigner

__all__ = ["JwtAccessTokens"]

TYP = "at+jwt"  # RFC 9068 §2.1


class JwtAccessTokens:
    """The `jwt` access-token format."""

    name: Literal["jwt"] = "jwt"

    def __init__(
        self,
        *,
        issuer: str,
        algorithms: Sequence[str],
        keys: KeyManager,
        signer: JwtSigner,
        revocations: RevocationStore,
        grant_tokens: GrantTokenLog,
        clock: Callable[[], float],
    ) -> None:
        self._issuer = issuer
        self._algorithms = list(algorithms)
        self._keys = keys
        self._signer = signer
        self._revocations = revocations
        self._grant_tokens = grant_tokens
        self._clock = clock

    def recognizes(self, token: str) -> bool:
        """Three dot-separated parts: a JWS in compact serialization."""
        return token.count(".") == 2

    async def issue(self, content: AccessTokenContent) -> str:
        claims: dict[str, Any] = {**content.extra_claims}
        claims.update(
            iss=self._issuer,
            sub=content.subject,
            aud=content.audience,
            exp=content.expires_at,
            iat=content.issued_at,
            jti=content.jti,
            client_id=content.client_id,
        )
        if content.scope:
            claims["scope"] = content.scope
        if content.roles:
            claims["roles"] = list(content.roles)
        if content.jkt is not None:
            claims["cnf"] = {"jkt": content.jkt}  # RFC 9449 §6.1
        value = await self._signer.sign(claims, content.signing_alg, TYP)
        if content.grant_id is not None:
            await self._grant_tokens.record_grant_token(
                content.grant_id, content.jti, content.expires_at
            )
        return value

    async def find(self, token: str) -> TokenInfo | None:
        try:
            claims = jwt.decode(
                token,
                self._keys.verification_keys(),
                algorithms=self._algorithms,
                issuer=self._issuer,
                audience=jwt.ANY_AUDIENCE,  # any of our APIs: callers judge `info.audience`
                required=("sub", "exp", "iat", "jti", "client_id"),
                typ=TYP,
                now=self._clock(),
            )
        except (JoseError, ValueError):
            return None
        if not isinstance(claims["aud"], str):  # ours name exactly one API
            return None
        revoked = await self._revocations.is_jti_revoked(claims["jti"])
        act = claims.get("act")
        cnf = claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
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
            act=act if isinstance(act, dict) else None,
            jkt=jkt if isinstance(jkt, str) else None,
        )

    async def revoke(self, info: TokenInfo) -> None:
        await self._revocations.revoke_jti(info.jti, info.expires_at)
