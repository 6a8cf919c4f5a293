"""The exceptions of `authgate.jose`.

Every failure raises a subclass of `JoseError` carrying a stable machine `code`. Messages say what
failed, never why a signature or a decryption failed: those are deliberately indistinguishable so
that errors cannot serve as an oracle (RFC 8725 §3.3, Bleichenbacher/padding-oracle families).
"""

from __future__ import annotations

__all__ = [
    "AlgorithmNotAllowed",
    "DecryptionFailed",
    "ExpiredToken",
    "InvalidClaim",
    "InvalidKey",
    "InvalidSignature",
    "JoseError",
    "KeyNotFound",
    "MalformedToken",
    "NotYetValid",
]


class JoseError(Exception):
    """Root of every error raised by `authgate.jose`."""

    code = "ERR_JOSE"


class MalformedToken(JoseError):
    """The token, a header or a payload does not follow the serialization rules."""

    code = "ERR_JOSE_MALFORMED"


class AlgorithmNotAllowed(JoseError):
    """The algorithm is not in the caller's allow-list, is not supported, or is `none`."""

    code = "ERR_JOSE_ALG_NOT_ALLOWED"


class InvalidKey(JoseError):
    """The key is malformed, too weak, or not usable for the requested algorithm or operation."""

    code = "ERR_JOSE_INVALID_KEY"


class KeyNotFound(JoseError):
    """No key in the set matches the token's `kid` and algorithm."""

    code = "ERR_JOSE_KEY_NOT_FOUND"


class InvalidSignature(JoseError):
    """The signature did not verify. One message for every cause."""

    code = "ERR_JOSE_SIGNATURE_INVALID"

    def __init__(self, message: str = "signature verification failed") -> None:
        super().__init__(message)


class DecryptionFailed(JoseError):
    """The JWE could not be decrypted. One message for every cause."""

    code = "ERR_JOSE_DECRYPTION_FAILED"

    def __init__(self, message: str = "decryption failed") -> None:
        super().__init__(message)


class InvalidClaim(JoseError):
    """A JWT claim is missing, malformed or does not have the expected value."""

    code = "ERR_JWT_CLAIM_INVALID"

    def __init__(self, claim: str, message: str) -> None:
        super().__init__(message)
        self.claim = claim


class ExpiredToken(InvalidClaim):
    """The JWT's `exp` has passed (beyond the leeway)."""

    code = "ERR_JWT_EXPIRED"

    def __init__(self, message: str = "token has expired") -> None:
        super().__init__("exp", message)


class NotYetValid(InvalidClaim):
    """The JWT's `nbf` (or a future `iat`) lies ahead (beyond the leeway)."""

    code = "ERR_JWT_NOT_YET_VALID"

    def __init__(self, claim: str = "nbf", message: str = "token is not yet valid") -> None:
        super().__init__(claim, message)
