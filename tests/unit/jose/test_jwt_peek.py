"""`jwt.peek`: a JWT's header and claims read WITHOUT verification, as strictly as `jwt.decode`."""

from __future__ import annotations

import hmac
import json

import pytest

from authgate.jose import JWK, MalformedToken, jwt
from tests.support.tokens import b64url

KEY = JWK.generate("EC", alg="ES256", kid="k1")
CLAIMS = {"iss": "https://issuer.example", "sub": "alice", "aud": "api", "exp": 2_000_000_000}


def _token(header: object, claims: object, signature: str = "c2ln") -> str:
    return (
        f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}.{signature}"
    )


def test_peek_reads_header_and_claims_without_verifying() -> None:
    token = jwt.encode(CLAIMS, KEY, "ES256")
    forged = token.rsplit(".", 1)[0] + ".AAAA"  # the signature is never looked at
    for candidate in (token, forged, forged.encode("ascii")):
        peeked = jwt.peek(candidate)
        assert peeked.header == {"alg": "ES256", "kid": "k1", "typ": "JWT"}
        assert peeked.claims == CLAIMS
        assert (peeked.issuer, peeked.kid, peeked.alg) == ("https://issuer.example", "k1", "ES256")


def test_peek_interprets_nothing_in_the_header() -> None:
    # Routing only: `alg` none, `crit`/`b64` and a missing signature are for `decode` to refuse.
    peeked = jwt.peek(_token({"alg": "none", "crit": ["b64"], "b64": True}, {"iss": 1}, ""))
    assert peeked.alg == "none"
    assert peeked.issuer is None  # not a string
    odd = jwt.peek(_token({"alg": ["ES256"], "kid": 7}, {}))
    assert (odd.alg, odd.kid, odd.issuer) == (None, None, None)


SECRET = JWK.from_secret(b"k" * 32)
HEADER = b64url(b'{"alg":"HS256"}')
BODY = b64url(b'{"sub":"alic"}')  # 19 characters: two unused bits in the last one


def _signed(header: str, payload: str) -> str:
    """A token whose HMAC is right, so that `decode` gets as far as the segment it refuses."""
    mac = hmac.digest(b"k" * 32, f"{header}.{payload}".encode(), "sha256")
    return f"{header}.{payload}.{b64url(mac)}"


def _raw(header: bytes, claims: bytes) -> str:
    return _signed(b64url(header), b64url(claims))


def _noncanonical(segment: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return segment[:-1] + alphabet[alphabet.index(segment[-1]) + 1]


@pytest.mark.parametrize(
    "token",
    [
        "",
        f"{HEADER}.{BODY}",
        _signed(HEADER, BODY) + ".x",
        _signed(HEADER, BODY) + ".x.y",  # a JWE's shape is not a signed JWT
        _signed(HEADER + "=", BODY),  # padding
        _signed(HEADER, BODY + "="),
        _signed(HEADER, _noncanonical(BODY)),  # non-zero unused bits: a second spelling
        _signed(HEADER, BODY[:-2] + "+/"),  # the standard alphabet
        _signed(HEADER, BODY + " "),
        _signed(HEADER, "é" + BODY),  # not ASCII
        _raw(b"[1]", b"{}"),  # header not an object
        _raw(b'{"alg":"HS256"}', b"[1]"),  # claims not an object
        _raw(b'{"alg":"HS256"}', b"hello"),
        _raw(b'{"alg":"HS256"}', b'{"sub":"a","sub":"b"}'),  # duplicate member
        _raw(b'{"alg":"HS256"}', b'{"sub":"a","s\\u0075b":"b"}'),  # ... spelled with an escape
        _raw(b'{"alg":"HS256","alg":"none"}', b"{}"),
        _raw(b'{"alg":"HS256"}', b'{"exp":NaN}'),
        _raw(b'{"alg":"HS256"}', b'{"sub":"\\ud800"}'),  # lone surrogate
    ],
)
def test_peek_is_as_strict_as_decode(token: str) -> None:
    with pytest.raises(MalformedToken):
        jwt.peek(token)
    # What peek refuses, decode refuses as malformed too: one reading of a token.
    with pytest.raises(MalformedToken):
        jwt.decode(token, SECRET, algorithms=["HS256"])


def test_the_strict_cases_are_otherwise_valid() -> None:
    # The cases above differ from a token both read in one point only.
    token = _signed(HEADER, BODY)
    assert jwt.peek(token).claims == {"sub": "alic"}
    assert jwt.decode(token, SECRET, algorithms=["HS256"]) == {"sub": "alic"}


def test_peek_is_size_bounded() -> None:
    token = jwt.encode({"sub": "x" * 2000}, KEY, "ES256")
    assert jwt.peek(token, max_size=len(token)).claims["sub"] == "x" * 2000
    with pytest.raises(MalformedToken, match="exceeds"):
        jwt.peek(token, max_size=len(token) - 1)
    big = jwt.encode({"sub": "x" * 70_000}, KEY, "ES256")
    with pytest.raises(MalformedToken, match="exceeds"):
        jwt.peek(big)  # 64 KiB by default, as decode
    with pytest.raises(MalformedToken):
        jwt.peek(None)  # type: ignore[arg-type]
