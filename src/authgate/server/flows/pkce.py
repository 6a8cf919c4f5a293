"""Proof Key for Code Exchange (RFC 7636 §4.1-§4.6) with the downgrade rules of RFC 9700 §2.1.1
and §4.8.2.

Only `S256` is accepted: `plain` gives no protection when the authorization request leaks, and a
request that omits `code_challenge_method` means `plain` (RFC 7636 §4.3), so it is refused too.
Public clients must send a challenge (RFC 9700 §2.1.1). A code issued with a challenge is redeemed
only with the matching verifier; a code issued without one is never redeemed with a verifier
(RFC 9700 §4.8.2: otherwise an attacker could inject a code obtained without PKCE).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from authgate.oauth.errors import InvalidGrant, InvalidRequest

__all__ = [
    "S256",
    "check_verifier",
    "parse_challenge",
    "s256_challenge",
]

S256 = "S256"
# RFC 7636 §4.1: code-verifier = 43*128unreserved.
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# RFC 7636 §4.2: BASE64URL(SHA256(verifier)) is exactly 43 characters; its last character carries
# 2 unused bits that are zero in every real challenge (RFC 4648 §3.5).
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{42}[AEIMQUYcgkosw048]")


def s256_challenge(verifier: str) -> str:
    """`BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))` (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def parse_challenge(challenge: str | None, method: str | None, *, required: bool) -> str | None:
    """Validate the challenge of an authorization request; return it (None when PKCE is unused).

    Raises `InvalidRequest` (RFC 7636 §4.4.1) when a public client (`required`) sends none, when
    the method is missing (that means `plain`), `plain` or unknown, or the challenge is malformed.
    """
    if challenge is None:
        if method is not None:
            raise InvalidRequest("code_challenge_method was sent without code_challenge")
        if required:
            raise InvalidRequest("this client must use PKCE: send code_challenge with S256")
        return None
    if method != S256:
        # An absent method means "plain" (RFC 7636 §4.3), which is not offered.
        raise InvalidRequest("code_challenge_method must be S256")
    if _S256_CHALLENGE.fullmatch(challenge) is None:
        raise InvalidRequest("code_challenge is not a base64url SHA-256 value")
    return challenge


def check_verifier(challenge: str | None, verifier: str | None) -> None:
    """Check the token request's `code_verifier` against the code's stored challenge.

    Returns nothing or raises: `InvalidRequest` for a malformed verifier, `InvalidGrant` when the
    verifier is missing, does not match (RFC 7636 §4.6), or is sent for a code issued without a
    challenge (RFC 9700 §4.8.2). The comparison is constant time.
    """
    if challenge is None:
        if verifier is not None:
            raise InvalidGrant("code_verifier sent for a code issued without code_challenge")
        return
    if verifier is None:
        raise InvalidGrant("code_verifier is required for this code")
    if _VERIFIER.fullmatch(verifier) is None:
        raise InvalidRequest("code_verifier must be 43-128 unreserved characters")
    if not hmac.compare_digest(s256_challenge(verifier), challenge):
        raise InvalidGrant("code_verifier does not match code_challenge")
