"""The one access-token issuer every grant uses: JWT (RFC 9068) or opaque, as the API says.

JWT access tokens carry the header `typ: at+jwt` and the signing key's `kid` (RFC 9068 §2.1), and
the claims `iss`, `sub`, `aud`, `exp`, `iat`, `jti`, `client_id`, `scope` and, when the client or
user has roles, `roles` (§2.2, §2.2.3.1). Opaque tokens are 256 random bits, stored under a keyed
hash with the same facts, so introspection (RFC 7662) answers the same for both kinds. OpenID
Connect ID tokens (Core §2) are signed here too, with the same keys and `typ: JWT`.

RSA signatures take about half a millisecond and OpenSSL releases the GIL while it computes them,
so RS256/PS256 tokens are signed on a small thread pool: one server process then uses every core
for signing while its event loop keeps parsing requests.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from authgate.jose import JWK, jwt
from authgate.server.keys import KeyManager
from authgate.server.models import Api, Client, OpaqueAccessToken
from authgate.server.secret_key import ServerSecret, generate_token
from authgate.server.storage.protocols import OpaqueTokenStore
from authgate.server.targets.scopes import format_scope

__all__ = ["AccessTokenRequest", "GrantTokenLog", "IssuedAccessToken", "TokenIssuer"]

# Algorithms slow enough that a thread hand-off (tens of microseconds) pays for itself.
_SIGN_IN_THREADS = frozenset({"RS256", "PS256"})


class GrantTokenLog(Protocol):
    """Where JWT access tokens issued under an authorization grant are listed, so that revoking
    the grant puts them on the revocation list (opaque tokens carry their grant themselves)."""

    async def record_grant_token(self, grant_id: str, jti: str, expires_at: int) -> None: ...


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
    # that revoking the grant revokes it (`GrantTokenLog`).
    grant_id: str | None = None


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
    """Issues access tokens for the grants."""

    def __init__(
        self,
        issuer: str,
        keys: KeyManager,
        opaque_tokens: OpaqueTokenStore,
        secret: ServerSecret,
        clock: Callable[[], float],
        *,
        grant_tokens: GrantTokenLog,
    ) -> None:
        self._issuer = issuer
        self._grant_tokens = grant_tokens
        self._keys = keys
        self._opaque_tokens = opaque_tokens
        self._secret = secret
        self._clock = clock
        self._signers = ThreadPoolExecutor(
            max_workers=os.cpu_count() or 2, thread_name_prefix="authgate-sign"
        )

    async def issue(self, request: AccessTokenRequest) -> IssuedAccessToken:
        """A new access token for `request` (signed, or stored when the API wants opaque ones)."""
        now = int(self._clock())
        ttl = request.api.access_token_ttl
        jti = secrets.token_urlsafe(16)
        scope = format_scope(request.scopes)
        if request.api.token_format == "opaque":
            value = generate_token()
            await self._opaque_tokens.save_opaque_token(
                OpaqueAccessToken(
                    token_hash=self._secret.hash_token(value),
                    jti=jti,
                    client_id=request.client.client_id,
                    subject=request.subject,
                    audience=request.api.identifier,
                    scope=scope,
                    roles=request.roles,
                    issued_at=now,
                    expires_at=now + ttl,
                    grant_id=request.grant_id,
                )
            )
        else:
            claims: dict[str, Any] = {**request.extra_claims}
            claims.update(
                iss=self._issuer,
                sub=request.subject,
                aud=request.api.identifier,
                exp=now + ttl,
                iat=now,
                jti=jti,
                client_id=request.client.client_id,
            )
            if scope:
                claims["scope"] = scope
            if request.roles:
                claims["roles"] = list(request.roles)
            alg = request.api.signing_alg
            key = self._keys.signing_key(alg)
            if alg in _SIGN_IN_THREADS:
                value = await asyncio.get_running_loop().run_in_executor(
                    self._signers, _sign, claims, key, alg
                )
            else:
                value = _sign(claims, key, alg)
            if request.grant_id is not None:
                await self._grant_tokens.record_grant_token(request.grant_id, jti, now + ttl)
        return IssuedAccessToken(
            value=value, jti=jti, expires_in=ttl, expires_at=now + ttl, scope=scope
        )

    async def sign_id_token(self, claims: Mapping[str, Any], alg: str = "RS256") -> str:
        """An OpenID Connect ID token (OIDC Core §2) with these claims, signed by the active key."""
        key = self._keys.signing_key(alg)
        if alg in _SIGN_IN_THREADS:
            return await asyncio.get_running_loop().run_in_executor(
                self._signers, _sign, claims, key, alg, "JWT"
            )
        return _sign(claims, key, alg, "JWT")

    def close(self) -> None:
        """Stop the signing threads."""
        self._signers.shutdown(wait=False, cancel_futures=True)


def _sign(claims: Mapping[str, Any], key: JWK, alg: str, typ: str = "at+jwt") -> str:
    return jwt.encode(claims, key, alg, header={"typ": typ})
