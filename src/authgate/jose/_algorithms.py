"""Which key may serve which algorithm: the single table that binds keys to algorithms.

RFC 8725 §3.1 and §2.1: a key is usable with exactly one family of algorithms, chosen by the key,
never by the token. Each supported algorithm names the key types (and curves) it accepts, the JWK
`use` it belongs to, and for symmetric algorithms the key length it requires.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KeyRequirement:
    """What a key must be to serve one algorithm."""

    use: str  # "sig" or "enc" (RFC 7517 §4.2)
    families: frozenset[tuple[str, str | None]]  # accepted (kty, crv); crv None for RSA and oct
    min_secret_bytes: int = 0  # oct keys: at least this long (HMAC: the hash size, RFC 7518 §3.2)
    exact_secret_bytes: int = 0  # oct keys: exactly this long (AES key wrap)


_RSA = frozenset({("RSA", None)})
_OCT = frozenset({("oct", None)})
_ECDH = frozenset(
    {("EC", "P-256"), ("EC", "P-384"), ("EC", "P-521"), ("OKP", "X25519"), ("OKP", "X448")}
)

JWS_ALGORITHMS: dict[str, KeyRequirement] = {
    "HS256": KeyRequirement("sig", _OCT, min_secret_bytes=32),
    "HS384": KeyRequirement("sig", _OCT, min_secret_bytes=48),
    "HS512": KeyRequirement("sig", _OCT, min_secret_bytes=64),
    "RS256": KeyRequirement("sig", _RSA),
    "RS384": KeyRequirement("sig", _RSA),
    "RS512": KeyRequirement("sig", _RSA),
    "PS256": KeyRequirement("sig", _RSA),
    "PS384": KeyRequirement("sig", _RSA),
    "PS512": KeyRequirement("sig", _RSA),
    "ES256": KeyRequirement("sig", frozenset({("EC", "P-256")})),
    "ES384": KeyRequirement("sig", frozenset({("EC", "P-384")})),
    "ES512": KeyRequirement("sig", frozenset({("EC", "P-521")})),
    "ES256K": KeyRequirement("sig", frozenset({("EC", "secp256k1")})),  # RFC 8812
    "EdDSA": KeyRequirement("sig", frozenset({("OKP", "Ed25519"), ("OKP", "Ed448")})),  # RFC 8037
    "Ed25519": KeyRequirement("sig", frozenset({("OKP", "Ed25519")})),  # RFC 9864
    "Ed448": KeyRequirement("sig", frozenset({("OKP", "Ed448")})),  # RFC 9864
}

JWE_KEY_ALGORITHMS: dict[str, KeyRequirement] = {
    "RSA-OAEP": KeyRequirement("enc", _RSA),
    "RSA-OAEP-256": KeyRequirement("enc", _RSA),
    "A128KW": KeyRequirement("enc", _OCT, exact_secret_bytes=16),
    "A192KW": KeyRequirement("enc", _OCT, exact_secret_bytes=24),
    "A256KW": KeyRequirement("enc", _OCT, exact_secret_bytes=32),
    "A128GCMKW": KeyRequirement("enc", _OCT, exact_secret_bytes=16),
    "A192GCMKW": KeyRequirement("enc", _OCT, exact_secret_bytes=24),
    "A256GCMKW": KeyRequirement("enc", _OCT, exact_secret_bytes=32),
    "dir": KeyRequirement("enc", _OCT),  # length checked against `enc` (RFC 7518 §4.5)
    "ECDH-ES": KeyRequirement("enc", _ECDH),
    "ECDH-ES+A128KW": KeyRequirement("enc", _ECDH),
    "ECDH-ES+A192KW": KeyRequirement("enc", _ECDH),
    "ECDH-ES+A256KW": KeyRequirement("enc", _ECDH),
}

# Content encryption algorithms and their key lengths in bytes (RFC 7518 §5).
JWE_CONTENT_ALGORITHMS: dict[str, int] = {
    "A128GCM": 16,
    "A192GCM": 24,
    "A256GCM": 32,
    "A128CBC-HS256": 32,
    "A192CBC-HS384": 48,
    "A256CBC-HS512": 64,
}

ALL_KEY_ALGORITHMS: dict[str, KeyRequirement] = {**JWS_ALGORITHMS, **JWE_KEY_ALGORITHMS}
