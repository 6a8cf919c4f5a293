"""`authgate.jose`: JWS, JWE, JWK, JWKS and JWT (RFC 7515-7519, 7638, 8037), hardened per RFC 8725.

Keys are bound to algorithms; nothing in a token's header picks a key or an algorithm. Every failure
raises a subclass of `JoseError` with a stable `code`.
"""

from authgate.jose import jwe, jws, jwt
from authgate.jose.errors import (
    AlgorithmNotAllowed,
    DecryptionFailed,
    ExpiredToken,
    InvalidClaim,
    InvalidKey,
    InvalidSignature,
    JoseError,
    KeyNotFound,
    MalformedToken,
    NotYetValid,
)
from authgate.jose.jwk import JWK
from authgate.jose.jwkset import JWKSet

__all__ = [
    "JWK",
    "AlgorithmNotAllowed",
    "DecryptionFailed",
    "ExpiredToken",
    "InvalidClaim",
    "InvalidKey",
    "InvalidSignature",
    "JWKSet",
    "JoseError",
    "KeyNotFound",
    "MalformedToken",
    "NotYetValid",
    "jwe",
    "jws",
    "jwt",
]
