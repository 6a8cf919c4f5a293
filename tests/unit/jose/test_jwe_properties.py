"""Property-based JWE tests (hypothesis): round trips for any plaintext and any algorithm pair; no
single-byte change to a valid token ever decrypts; hostile input only ever raises `JoseError`."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authgate.jose import JWK, JoseError, jwe, jwt
from authgate.jose._algorithms import JWE_CONTENT_ALGORITHMS, JWE_KEY_ALGORITHMS
from tests.support.tokens import b64url_bytes

ENCS = sorted(JWE_CONTENT_ALGORITHMS)
ALL_ALGS = sorted(JWE_KEY_ALGORITHMS)
# (alg, recipient kind): every key management algorithm, ECDH-ES on every curve.
PAIRS = [
    ("RSA-OAEP", "RSA"),
    ("RSA-OAEP-256", "RSA"),
    ("A128KW", "oct16"),
    ("A192KW", "oct24"),
    ("A256KW", "oct32"),
    ("A128GCMKW", "oct16"),
    ("A192GCMKW", "oct24"),
    ("A256GCMKW", "oct32"),
    ("dir", "dir"),
    *[
        (alg, crv)
        for alg in ("ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A192KW", "ECDH-ES+A256KW")
        for crv in ("P-256", "P-384", "P-521", "X25519", "X448")
    ],
]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def key_for(kind: str) -> JWK:
    if kind == "RSA":
        return JWK.generate("RSA")
    if kind.startswith("oct"):
        return JWK.generate("oct", size=int(kind[3:]) * 8)
    return JWK.generate("EC" if kind.startswith("P-") else "OKP", crv=kind)


def recipient(kind: str, enc: str) -> JWK:
    """The recipient's key; a `dir` key is as long as the enc's CEK."""
    return key_for(f"oct{JWE_CONTENT_ALGORITHMS[enc]}" if kind == "dir" else kind)


def _sender(key: JWK) -> JWK:
    return key if key.kty == "oct" else key.public()


pairs = st.sampled_from(PAIRS)
encs = st.sampled_from(ENCS)


@SETTINGS
@given(pair=pairs, enc=encs, plaintext=st.binary(max_size=2048))
def test_round_trip(pair: tuple[str, str], enc: str, plaintext: bytes) -> None:
    alg, kind = pair
    key = recipient(kind, enc)
    token = jwe.encrypt(plaintext, _sender(key), alg, enc)
    result = jwe.decrypt(token, key, algorithms=[alg], encryptions=[enc])
    assert result.plaintext == plaintext
    assert (result.header["alg"], result.header["enc"]) == (alg, enc)


@SETTINGS
@given(pair=pairs, enc=encs, plaintext=st.binary(max_size=64), data=st.data())
def test_no_single_byte_change_decrypts(
    pair: tuple[str, str], enc: str, plaintext: bytes, data: st.DataObject
) -> None:
    alg, kind = pair
    key = recipient(kind, enc)
    token = bytearray(jwe.encrypt(plaintext, _sender(key), alg, enc).encode())
    index = data.draw(st.integers(0, len(token) - 1), label="index")
    value = data.draw(st.integers(0, 255).filter(lambda v: v != token[index]), label="value")
    token[index] = value
    try:
        jwe.decrypt(bytes(token), key, algorithms=[alg], encryptions=[enc])
    except JoseError:
        return
    raise AssertionError(f"an altered token decrypted (byte {index} -> {value})")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
header_names = st.sampled_from(
    ["alg", "enc", "kid", "epk", "apu", "apv", "iv", "tag", "zip", "crit", "cty", "typ", "p2c"]
)
headers = st.dictionaries(
    header_names,
    st.sampled_from(ALL_ALGS + ENCS) | json_values,
    max_size=6,
)
segments = st.binary(max_size=40).map(lambda b: b64url_bytes(b).decode())


@SETTINGS
@given(header=headers, rest=st.lists(segments, min_size=4, max_size=4), kind=st.sampled_from(
    ["RSA", "oct16", "oct32", "P-256", "X25519"]
))  # fmt: skip
def test_hostile_headers_only_raise_jose_errors(
    header: dict[str, Any], rest: list[str], kind: str
) -> None:
    token = ".".join([b64url_bytes(json.dumps(header).encode()).decode(), *rest])
    try:
        jwe.decrypt(token, key_for(kind), algorithms=ALL_ALGS, encryptions=ENCS)
    except JoseError:
        return
    raise AssertionError("random segments decrypted")


@SETTINGS
@given(token=st.binary(max_size=300) | st.text(max_size=300))
def test_garbage_only_raises_jose_errors(token: bytes | str) -> None:
    try:
        jwe.decrypt(token, key_for("oct16"), algorithms=ALL_ALGS, encryptions=ENCS)
    except JoseError:
        return
    raise AssertionError("garbage decrypted")


custom_claims = st.dictionaries(
    st.text(min_size=1, max_size=10).filter(
        lambda name: name not in {"iss", "sub", "aud", "exp", "nbf", "iat", "jti"}
    ),
    json_values,
    max_size=5,
)


@settings(max_examples=50, deadline=None)
@given(claims=custom_claims, pair=st.sampled_from([("A256KW", "oct32"), ("ECDH-ES", "X25519")]))
def test_nested_round_trip(claims: dict[str, Any], pair: tuple[str, str]) -> None:
    alg, kind = pair
    signing = JWK.from_secret(b"an HS256 secret, exactly 32 long")
    key = key_for(kind)
    token = jwt.encode_nested(claims, signing, "HS256", _sender(key), alg, "A256GCM")
    decoded = jwt.decode_nested(
        token,
        key,
        signing,
        algorithms=["HS256"],
        key_algorithms=[alg],
        encryptions=["A256GCM"],
    )
    assert decoded == claims
