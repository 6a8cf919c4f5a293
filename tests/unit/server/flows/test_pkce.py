"""PKCE (RFC 7636) with S256 only, and the downgrade rules of RFC 9700 §4.8.2."""

from __future__ import annotations

import base64
import hashlib

import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from authgate.oauth.errors import InvalidGrant, InvalidRequest
from authgate.server.flows import pkce

# RFC 7636 Appendix B.
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_s256_matches_rfc7636_appendix_b() -> None:
    assert pkce.s256_challenge(RFC_VERIFIER) == RFC_CHALLENGE


def test_s256_agrees_with_authlib() -> None:
    verifier = "a" * 43 + "-._~" + "Z9" * 20
    assert pkce.s256_challenge(verifier) == create_s256_code_challenge(verifier)


def test_parse_challenge_accepts_s256() -> None:
    assert pkce.parse_challenge(RFC_CHALLENGE, "S256", required=True) == RFC_CHALLENGE


def test_parse_challenge_without_pkce_for_confidential_client() -> None:
    assert pkce.parse_challenge(None, None, required=False) is None


def test_public_client_must_use_pkce() -> None:
    with pytest.raises(InvalidRequest, match="must use PKCE"):
        pkce.parse_challenge(None, None, required=True)


@pytest.mark.parametrize("method", [None, "plain", "s256", "S512", ""])
def test_only_s256_is_accepted(method: str | None) -> None:
    # A missing method means "plain" (RFC 7636 §4.3), which is refused.
    with pytest.raises(InvalidRequest, match="S256"):
        pkce.parse_challenge(RFC_CHALLENGE, method, required=False)


def test_method_without_challenge_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        pkce.parse_challenge(None, "S256", required=False)


@pytest.mark.parametrize(
    "challenge",
    [
        RFC_CHALLENGE[:-1],  # 42 characters
        RFC_CHALLENGE + "A",  # 44
        RFC_CHALLENGE[:-1] + "=",  # padding
        RFC_CHALLENGE[:-1] + "+",  # standard base64 alphabet
        RFC_CHALLENGE[:-1] + "N",  # non-zero unused bits: no SHA-256 output encodes like this
        RFC_VERIFIER + "x" * 50,  # a verifier sent as challenge ("plain" in disguise)
    ],
)
def test_malformed_challenge_is_refused(challenge: str) -> None:
    with pytest.raises(InvalidRequest):
        pkce.parse_challenge(challenge, "S256", required=False)


def test_every_real_challenge_is_canonical() -> None:
    for i in range(300):
        challenge = pkce.s256_challenge(f"verifier-{i:04d}-" + "x" * 40)
        assert pkce.parse_challenge(challenge, "S256", required=False) == challenge


def test_matching_verifier_redeems() -> None:
    pkce.check_verifier(RFC_CHALLENGE, RFC_VERIFIER)


def test_mismatching_verifier_is_invalid_grant() -> None:
    other = "x" * 43
    with pytest.raises(InvalidGrant, match="does not match"):
        pkce.check_verifier(RFC_CHALLENGE, other)


def test_missing_verifier_for_pkce_code_is_invalid_grant() -> None:
    with pytest.raises(InvalidGrant, match="required"):
        pkce.check_verifier(RFC_CHALLENGE, None)


def test_verifier_for_code_without_challenge_is_refused() -> None:
    # RFC 9700 §4.8.2: the downgrade attack injects a code obtained without PKCE.
    with pytest.raises(InvalidGrant, match="without code_challenge"):
        pkce.check_verifier(None, RFC_VERIFIER)


def test_code_without_challenge_redeems_without_verifier() -> None:
    pkce.check_verifier(None, None)


@pytest.mark.parametrize(
    "verifier",
    ["x" * 42, "x" * 129, "x" * 42 + " ", "x" * 42 + "+", "x" * 42 + "é", "x" * 42 + "/"],
)
def test_malformed_verifier_is_invalid_request(verifier: str) -> None:
    with pytest.raises(InvalidRequest):
        pkce.check_verifier(RFC_CHALLENGE, verifier)


def test_verifier_sent_as_challenge_does_not_redeem() -> None:
    """A client that sends `plain`-style verifier == challenge must not pass an S256 check."""
    verifier = "v" * 43
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    with pytest.raises(InvalidGrant):
        pkce.check_verifier(challenge, challenge)


@pytest.mark.parametrize("length", [43, 128])
def test_verifier_length_bounds(length: int) -> None:
    verifier = "A" * length
    pkce.check_verifier(pkce.s256_challenge(verifier), verifier)
