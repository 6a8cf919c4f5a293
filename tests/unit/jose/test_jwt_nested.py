"""Nested JWTs (RFC 7519 §5.2, §11.2): `jwt.encode_nested` signs then encrypts; `jwt.decode_nested`
decrypts, requires `cty: JWT`, then verifies the inner JWT and its claims like `jwt.decode`."""

from __future__ import annotations

from functools import cache

import pytest

from authgate.jose import (
    JWK,
    AlgorithmNotAllowed,
    ExpiredToken,
    InvalidClaim,
    InvalidSignature,
    MalformedToken,
    jwe,
    jws,
    jwt,
)
from tests.support.tokens import header_of

NOW = 1_700_000_000
CLAIMS = {"iss": "https://issuer.example", "sub": "alice", "aud": "api", "exp": NOW + 300}


@cache
def signing_key() -> JWK:
    return JWK.generate("EC", crv="P-256", kid="sig")


@cache
def encryption_key() -> JWK:
    return JWK.generate("OKP", crv="X25519", kid="enc")


def _nested(claims: dict[str, object] = CLAIMS, **kwargs: object) -> str:
    return jwt.encode_nested(
        claims, signing_key(), "ES256", encryption_key().public(), "ECDH-ES+A256KW", "A256GCM",
        **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


def _decode(token: str, **options: object) -> dict[str, object]:
    kwargs: dict[str, object] = {
        "algorithms": ["ES256"],
        "key_algorithms": ["ECDH-ES+A256KW"],
        "encryptions": ["A256GCM"],
        "issuer": "https://issuer.example",
        "audience": "api",
        "now": NOW,
        **options,
    }
    return jwt.decode_nested(
        token,
        encryption_key(),
        signing_key().public(),
        **kwargs,  # type: ignore[arg-type]
    )


def test_round_trip_and_headers() -> None:
    token = _nested(header={"typ": "secevent+jwe"})
    assert _decode(token) == CLAIMS
    outer = header_of(token)
    assert outer["cty"] == "JWT"
    assert outer["typ"] == "secevent+jwe"
    assert outer["kid"] == "enc"
    inner = jwe.decrypt(
        token, encryption_key(), algorithms=["ECDH-ES+A256KW"], encryptions=["A256GCM"]
    )
    inner_header = header_of(inner.plaintext.decode())
    assert inner_header == {"typ": "JWT", "alg": "ES256", "kid": "sig"}


def test_cty_must_say_jwt() -> None:
    inner = jwt.encode(CLAIMS, signing_key(), "ES256").encode()
    recipient = encryption_key().public()
    for header in ({}, {"cty": "text/plain"}, {"cty": "JOSE"}):
        token = jwe.encrypt(inner, recipient, "ECDH-ES+A256KW", "A256GCM", header)
        with pytest.raises(MalformedToken, match="cty"):
            _decode(token)
    for cty in ("jwt", "application/JWT"):  # media types compare case-insensitively
        token = jwe.encrypt(inner, recipient, "ECDH-ES+A256KW", "A256GCM", {"cty": cty})
        assert _decode(token) == CLAIMS


def test_encode_nested_refuses_another_cty() -> None:
    with pytest.raises(MalformedToken, match="cty"):
        _nested(header={"cty": "text/plain"})
    assert _decode(_nested(header={"cty": "JWT"})) == CLAIMS


def test_claims_are_checked() -> None:
    with pytest.raises(ExpiredToken):
        _decode(_nested(), now=NOW + 301)
    with pytest.raises(InvalidClaim) as info:
        _decode(_nested(), issuer="https://other.example")
    assert info.value.claim == "iss"
    with pytest.raises(InvalidClaim) as info:
        _decode(_nested(), audience="other")
    assert info.value.claim == "aud"
    with pytest.raises(InvalidClaim) as info:
        _decode(_nested(), required=["jti"])
    assert info.value.claim == "jti"
    with pytest.raises(InvalidClaim) as info:
        _decode(_nested(), typ="at+jwt")  # `typ` is the inner JWT's
    assert info.value.claim == "typ"


def test_both_allow_lists_are_enforced() -> None:
    with pytest.raises(AlgorithmNotAllowed):
        _decode(_nested(), algorithms=["ES384"])
    with pytest.raises(AlgorithmNotAllowed):
        _decode(_nested(), key_algorithms=["ECDH-ES"])
    with pytest.raises(AlgorithmNotAllowed):
        _decode(_nested(), encryptions=["A128GCM"])
    with pytest.raises(AlgorithmNotAllowed):
        _decode(_nested(), algorithms=[])


def test_inner_signature_must_verify() -> None:
    forged = jwt.encode(CLAIMS, JWK.generate("EC", crv="P-256"), "ES256").encode()
    token = jwe.encrypt(
        forged, encryption_key().public(), "ECDH-ES+A256KW", "A256GCM", {"cty": "JWT"}
    )
    with pytest.raises(InvalidSignature):
        _decode(token)


def test_inner_must_be_a_signed_jwt() -> None:
    recipient = encryption_key().public()
    unsigned = b"eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9."
    for plaintext in (b"not a jws", b'{"sub":"alice"}', unsigned):
        token = jwe.encrypt(plaintext, recipient, "ECDH-ES+A256KW", "A256GCM", {"cty": "JWT"})
        with pytest.raises((MalformedToken, AlgorithmNotAllowed)):
            _decode(token)
    inner_jwe = jwe.encrypt(b"{}", recipient, "ECDH-ES+A256KW", "A256GCM").encode()
    token = jwe.encrypt(inner_jwe, recipient, "ECDH-ES+A256KW", "A256GCM", {"cty": "JWT"})
    with pytest.raises(MalformedToken):
        _decode(token)


def test_a_nested_token_is_not_a_plain_jwt_nor_the_reverse() -> None:
    with pytest.raises(MalformedToken):
        jwt.decode(_nested(), signing_key().public(), algorithms=["ES256"])
    signed = jwt.encode(CLAIMS, signing_key(), "ES256")
    with pytest.raises(MalformedToken):
        _decode(signed)


def test_size_cap_applies() -> None:
    token = _nested({**CLAIMS, "pad": "x" * 5000})
    with pytest.raises(MalformedToken, match="exceeds"):
        _decode(token, max_size=4096)
    assert _decode(token, max_size=jws.MAX_TOKEN_SIZE)["pad"] == "x" * 5000
