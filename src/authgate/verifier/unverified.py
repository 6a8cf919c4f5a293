"""A look at a compact JWS before verification (RFC 7515 §7.1), to route it to its issuer.

What it returns is marked unverified and serves only to choose among *configured* issuers (by the
payload's `iss`) and to look up a `kid` in that issuer's key set; nothing here selects an algorithm,
a key source or a URL (RFC 8725 §3.10). Decoding is as strict as verification itself (canonical
base64url, duplicate-free JSON), so a token cannot be read one way here and another way by `jws`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authgate.jose._b64 import b64decode
from authgate.jose._json import loads_object
from authgate.jose.errors import MalformedToken

__all__ = ["UnverifiedJWT", "peek"]


@dataclass(frozen=True, slots=True)
class UnverifiedJWT:
    """Header and claims of a compact JWS whose signature has NOT been checked."""

    header: dict[str, Any]
    claims: dict[str, Any]

    @property
    def issuer(self) -> str | None:
        iss = self.claims.get("iss")
        return iss if isinstance(iss, str) else None

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else None

    @property
    def alg(self) -> str | None:
        alg = self.header.get("alg")
        return alg if isinstance(alg, str) else None


def looks_like_jws(token: str) -> bool:
    """Three dot-separated segments: the compact JWS shape (a JWE has five)."""
    return token.count(".") == 2


def peek(token: str) -> UnverifiedJWT:
    """Decode header and payload without verifying; `MalformedToken` unless both are objects."""
    if not looks_like_jws(token):
        raise MalformedToken("not a compact JWS")
    header_segment, payload_segment, _ = token.split(".")
    header = loads_object(b64decode(header_segment, "header"), "header")
    claims = loads_object(b64decode(payload_segment, "payload"), "claims")
    return UnverifiedJWT(header, claims)
