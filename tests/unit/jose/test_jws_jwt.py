"""`jws.sign` / `jws.verify` and `jwt.encode` / `jwt.decode`: the behaviour callers rely on."""

from __future__ import annotations

from typing import Any

import pytest

from authgate.jose import (
    JWK,
    AlgorithmNotAllowed,
    ExpiredToken,
    InvalidKey,
    InvalidSignature,
    JWKSet,
    MalformedToken,
    jws,
    jwt,
)
from authgate.jose import jws as jws_module
from authgate.jose.encoding import b64url_decode
from tests.support.tokens import header_of

KEY = JWK.generate("EC", crv="P-256", kid="k1")
SECRET = JWK.generate("oct", kid="s1")


def test_sign_adds_alg_then_kid_and_keeps_the_callers_members() -> None:
    token = jws.sign(b"x", KEY, "ES256", {"typ": "dpop+jwt", "x-extra": [1, 2]})
    assert list(header_of(token)) == ["alg", "kid", "typ", "x-extra"]
    assert header_of(token)["kid"] == "k1"
    # The caller may replace the kid, or repeat the same alg.
    assert header_of(jws.sign(b"x", KEY, "ES256", {"kid": "other"}))["kid"] == "other"
    assert header_of(jws.sign(b"x", KEY, "ES256", {"alg": "ES256"}))["alg"] == "ES256"
    with pytest.raises(MalformedToken):
        jws.sign(b"x", KEY, "ES256", {"alg": "HS256"})
    with pytest.raises(MalformedToken):
        jws.sign(b"x", KEY, "ES256", {"kid": 7})


def test_sign_needs_bytes_and_a_private_key() -> None:
    with pytest.raises(TypeError):
        jws.sign("text", KEY, "ES256")  # type: ignore[arg-type]
    with pytest.raises(InvalidKey, match="private"):
        jws.sign(b"x", KEY.public(), "ES256")


def test_verify_returns_a_private_copy_of_the_header() -> None:
    token = jws.sign(b"x", KEY, "ES256", {"typ": "JWT"})
    first = jws.verify(token, KEY.public(), ["ES256"])
    first.header["alg"] = "none"
    first.header["typ"] = "changed"
    second = jws.verify(token, KEY.public(), ["ES256"])
    assert second.header == {"alg": "ES256", "kid": "k1", "typ": "JWT"}


def test_header_cache_is_bounded_and_only_holds_valid_headers() -> None:
    cache = jws_module._HEADERS
    for index in range(jws_module._CACHED_HEADERS + 50):
        token = jws.sign(b"x", SECRET, "HS256", {"n": index})
        assert jws.verify(token, SECRET, ["HS256"]).header["n"] == index
        assert len(cache) <= jws_module._CACHED_HEADERS
    bad = jws.sign(b"x", SECRET, "HS256").split(".")
    bad[0] = bad[0][:-2] + "AA"
    with pytest.raises(MalformedToken):
        jws.verify(".".join(bad), SECRET, ["HS256"])
    assert bad[0].encode() not in cache
    # Headers larger than the cacheable size still verify, uncached.
    big = jws.sign(b"x", SECRET, "HS256", {"pad": "p" * 2000})
    assert jws.verify(big, SECRET, ["HS256"]).header["pad"] == "p" * 2000
    assert big.split(".")[0].encode() not in cache


@pytest.mark.parametrize("algorithms", [["ES256"], ("ES256",), {"ES256", "HS256"}, iter(["ES256"])])
def test_any_iterable_allow_list(algorithms: Any) -> None:
    token = jws.sign(b"x", KEY, "ES256")
    assert jws.verify(token, KEY.public(), algorithms).payload == b"x"


def test_verify_accepts_bytes_tokens() -> None:
    token = jws.sign(b"x", KEY, "ES256")
    assert jws.verify(token.encode(), KEY.public(), ["ES256"]).payload == b"x"


def test_detached_payloads() -> None:
    token = jws.sign(b"content", SECRET, "HS256", detached=True)
    assert token.split(".")[1] == ""
    assert jws.verify(token, SECRET, ["HS256"], detached_payload=b"content").payload == b"content"
    with pytest.raises(InvalidSignature):
        jws.verify(token, SECRET, ["HS256"])  # the empty payload is not what was signed
    attached = jws.sign(b"content", SECRET, "HS256")
    with pytest.raises(MalformedToken):
        jws.verify(attached, SECRET, ["HS256"], detached_payload=b"content")


def test_a_key_set_tries_every_candidate_without_kid() -> None:
    first, second = JWK.generate("oct"), JWK.generate("oct")
    token = jws.sign(b"x", JWK.from_dict(dict(second.to_dict(private=True), kid=None)), "HS256")
    jwks = JWKSet([first, second])
    assert jws.verify(token, jwks, ["HS256"]).payload == b"x"
    assert jws.verify(token, jwks, ["HS256"]).payload == b"x"  # cached candidates
    with pytest.raises(InvalidSignature):
        jws.verify(token, JWKSet([first]), ["HS256"])


def test_jwt_encode_defaults_and_decode_result() -> None:
    token = jwt.encode({"sub": "alice", "exp": 2_000_000_000}, KEY, "ES256")
    assert header_of(token) == {"alg": "ES256", "kid": "k1", "typ": "JWT"}
    claims = jwt.decode(token, KEY.public(), algorithms=["ES256"], now=1_999_999_999)
    assert claims == {"sub": "alice", "exp": 2_000_000_000}
    with pytest.raises(ExpiredToken):
        jwt.decode(token, KEY.public(), algorithms=["ES256"], now=2_000_000_000)
    # The caller's claims are not modified, and the header may override typ.
    custom = jwt.encode({"sub": "a"}, KEY, "ES256", {"typ": "at+jwt"})
    assert header_of(custom)["typ"] == "at+jwt"
    with pytest.raises(TypeError):
        jwt.encode([("sub", "a")], KEY, "ES256")  # type: ignore[arg-type]


def test_decode_uses_the_system_clock_by_default() -> None:
    expired = jwt.encode({"exp": 1_000_000_000}, SECRET, "HS256")
    with pytest.raises(ExpiredToken):
        jwt.decode(expired, SECRET, algorithms=["HS256"])
    fresh = jwt.encode({"exp": 4_000_000_000}, SECRET, "HS256")
    assert jwt.decode(fresh, SECRET, algorithms=["HS256"])["exp"] == 4_000_000_000


def test_validate_claims_is_the_same_policy() -> None:
    jwt.validate_claims({"iss": "a", "aud": ["b"]}, issuer="a", audience="b", now=0)
    with pytest.raises(AlgorithmNotAllowed):
        jwt.decode(jwt.encode({}, SECRET, "HS256"), SECRET, algorithms=["HS512"])


def test_prepared_verifier_checks_signatures_and_the_keys_binding() -> None:
    token = jws.sign(b"payload", KEY, "ES256")
    head, body, signature = token.split(".")
    check = jws.prepared_verifier(KEY.public(), "ES256")
    raw = b64url_decode(signature)
    assert check(f"{head}.{body}".encode(), raw)
    assert not check(f"{head}.{body}x".encode(), raw)  # another message: False, no exception
    assert not check(f"{head}.{body}".encode(), raw[:-1])
    with pytest.raises(AlgorithmNotAllowed):
        jws.prepared_verifier(KEY.public(), "none")
    with pytest.raises((InvalidKey, AlgorithmNotAllowed)):
        jws.prepared_verifier(KEY.public(), "RS256")  # an EC key cannot verify RS256
