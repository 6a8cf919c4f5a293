"""OpenID Connect ID token claims and userinfo claims (OpenID Connect Core §2, §3.1.3.6 `at_hash`,
§3.1.3.7, §5.1, §5.3, §5.4; OpenID Connect Token Hash Algorithms 1.0 for EdDSA).

The ID token is a JWT signed by the token issuer with the client's ID-token algorithm (RS256 unless
configured); this module only decides its claims. `at_hash` binds the access token issued with it:
the left half of the hash of the token's ASCII octets, base64url, where the hash is the one of the
signing algorithm: SHA-256 for *256, SHA-384 for *384, SHA-512 for *512, and for EdDSA SHA-512
with Ed25519 and SHAKE256 (114 octets) with Ed448.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from authgate.server.targets.identity_scopes import CLAIMS_BY_SCOPE

__all__ = ["UserClaimsSource", "id_token_claims", "token_hash", "userinfo_claims"]

_SHA2 = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}


def _digest(value: bytes, alg: str, crv: str | None) -> bytes:
    if alg in ("Ed25519", "EdDSA") and (alg == "Ed25519" or crv == "Ed25519"):
        return hashlib.sha512(value).digest()
    if alg in ("Ed448", "EdDSA") and (alg == "Ed448" or crv == "Ed448"):
        return hashlib.shake_256(value).digest(114)
    if alg == "ES256K":
        return hashlib.sha256(value).digest()
    if alg[:2] in ("RS", "PS", "ES", "HS") and alg[2:] in _SHA2:
        return _SHA2[alg[2:]](value).digest()
    raise ValueError(f"no token hash is defined for alg {alg!r} (crv {crv!r})")


def token_hash(value: str, alg: str, crv: str | None = None) -> str:
    """`at_hash`/`c_hash` of `value` for an ID token signed with `alg` (and `crv` for EdDSA)."""
    digest = _digest(value.encode("ascii"), alg, crv)
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


class UserClaimsSource(Protocol):
    """What the userinfo claims are made of (`models.User` fits)."""

    @property
    def user_id(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def email(self) -> str | None: ...
    @property
    def email_verified(self) -> bool: ...


def userinfo_claims(user: UserClaimsSource, scopes: Iterable[str]) -> dict[str, Any]:
    """The claims the granted `scopes` release (OIDC Core §5.4): always `sub`; `profile` adds
    `name` and `preferred_username`; `email` adds `email` and `email_verified`. Claims the user
    does not have are omitted, not sent as null (OIDC Core §5.3.2)."""
    values: Mapping[str, Any] = {
        "name": user.name,
        "preferred_username": user.username,
        "email": user.email,
        "email_verified": user.email_verified if user.email is not None else None,
    }
    claims: dict[str, Any] = {"sub": user.user_id}
    for scope in scopes:
        for claim in CLAIMS_BY_SCOPE.get(scope, ()):
            if values[claim] is not None:
                claims[claim] = values[claim]
    return claims


def id_token_claims(
    *,
    issuer: str,
    subject: str,
    client_id: str,
    now: int,
    lifetime: int,
    auth_time: int,
    nonce: str | None,
    access_token: str | None,
    alg: str,
    crv: str | None = None,
    amr: Iterable[str] = (),
    user_claims: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The claims of an ID token (OIDC Core §2, §3.1.3.6-§3.1.3.7).

    `aud` is the client and `azp` names it too; `auth_time` is always present (so `max_age`
    requests are covered); `nonce` is copied exactly from the authorization request; `at_hash`
    binds `access_token` when one is issued alongside. `user_claims` (from `userinfo_claims`)
    may add the scope claims; they never override the protocol claims.
    """
    if lifetime <= 0:
        raise ValueError("ID token lifetime must be positive")
    claims: dict[str, Any] = {
        key: value for key, value in (user_claims or {}).items() if key != "sub"
    }
    claims.update(
        iss=issuer,
        sub=subject,
        aud=client_id,
        azp=client_id,
        iat=now,
        exp=now + lifetime,
        auth_time=auth_time,
    )
    if nonce is not None:
        claims["nonce"] = nonce
    if access_token is not None:
        claims["at_hash"] = token_hash(access_token, alg, crv)
    amr = list(amr)
    if amr:
        claims["amr"] = amr
    return claims
