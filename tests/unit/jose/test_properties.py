"""Property-based tests (hypothesis) for JWS, JWT and JWK.

- Round trips: sign/verify and encode/decode for every JWS algorithm, JWK to_dict/from_dict and
  PEM export/import for every key type, base64url and JSON.
- "No single-byte change to a valid token verifies": any byte of a compact token, replaced by any
  other byte value, gives a `JoseError`, never a verified token and never another exception.
- Arbitrary input is refused with a `JoseError`.

Keys are generated once per module (RSA generation is slow); example counts keep the file in the
seconds range.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authgate.jose import JWK, JoseError, JWKSet, MalformedToken, jws, jwt
from authgate.jose.encoding import b64url_decode, json_object
from tests.support.tokens import b64url_bytes, compact_json

RSA = JWK.generate("RSA")
KEYS: dict[str, JWK] = {
    "HS256": JWK.generate("oct", alg="HS256"),
    "HS384": JWK.generate("oct", alg="HS384"),
    "HS512": JWK.generate("oct", alg="HS512"),
    "RS256": RSA,
    "RS384": RSA,
    "RS512": RSA,
    "PS256": RSA,
    "PS384": RSA,
    "PS512": RSA,
    "ES256": JWK.generate("EC", crv="P-256"),
    "ES384": JWK.generate("EC", crv="P-384"),
    "ES512": JWK.generate("EC", crv="P-521"),
    "ES256K": JWK.generate("EC", crv="secp256k1"),
    "EdDSA": JWK.generate("OKP", crv="Ed25519"),
    "Ed25519": JWK.generate("OKP", crv="Ed25519"),
    "Ed448": JWK.generate("OKP", crv="Ed448"),
}
PRIVATE_KEYS = [
    RSA,
    *(KEYS[a] for a in ("ES256", "ES384", "ES512", "ES256K", "EdDSA", "Ed448")),
    JWK.generate("OKP", crv="X25519"),
    JWK.generate("OKP", crv="X448"),
]
SECRET_KEYS = [KEYS["HS256"], KEYS["HS512"]]
ALGS = sorted(KEYS)
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def verification_key(alg: str) -> JWK:
    key = KEYS[alg]
    return key if key.kty == "oct" else key.public()


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
REGISTERED = {"iss", "sub", "aud", "exp", "nbf", "iat", "jti"}
custom_claims = st.dictionaries(
    st.text(max_size=12).filter(lambda name: name not in REGISTERED), json_values, max_size=6
)


# -- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGS)
@FAST
@given(payload=st.binary(max_size=300))
def test_sign_verify_round_trip(alg: str, payload: bytes) -> None:
    token = jws.sign(payload, KEYS[alg], alg)
    result = jws.verify(token, verification_key(alg), [alg])
    assert result.payload == payload
    assert result.header["alg"] == alg
    assert result.header["kid"] == KEYS[alg].kid


@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES256", "EdDSA"])
@FAST
@given(
    extra=custom_claims,
    sub=st.text(max_size=20),
    aud=st.text(min_size=1, max_size=10) | st.lists(st.text(max_size=10), min_size=1, max_size=3),
    lifetime=st.integers(min_value=1, max_value=10**6),
)
def test_jwt_encode_decode_round_trip(
    alg: str, extra: dict[str, Any], sub: str, aud: str | list[str], lifetime: int
) -> None:
    now = 1_700_000_000
    claims = {**extra, "sub": sub, "aud": aud, "iat": now, "exp": now + lifetime}
    token = jwt.encode(claims, KEYS[alg], alg)
    audience = aud if isinstance(aud, str) else aud[0]
    decoded = jwt.decode(
        token, JWKSet([verification_key(alg)]), algorithms=[alg], audience=audience, now=now
    )
    assert decoded == claims


@pytest.mark.parametrize("key", PRIVATE_KEYS + SECRET_KEYS, ids=lambda k: f"{k.kty}-{k.crv}")
@settings(max_examples=10, deadline=None)
@given(kid=st.none() | st.text(max_size=20), use=st.none() | st.sampled_from(["sig", "enc"]))
def test_jwk_dict_round_trip(key: JWK, kid: str | None, use: str | None) -> None:
    data = dict(key.to_dict(private=True), **({"kid": kid} if kid is not None else {}))
    if use is not None:
        data["use"] = use
    again = JWK.from_dict(data)
    assert again.to_dict(private=True) == data
    assert again.thumbprint() == key.thumbprint()
    if key.kty != "oct":
        public = JWK.from_dict(again.public().to_dict())
        assert not public.is_private
        assert public.thumbprint() == key.thumbprint()
        assert "d" not in public.to_dict()


@pytest.mark.parametrize("key", PRIVATE_KEYS, ids=lambda k: f"{k.kty}-{k.crv}")
@settings(max_examples=5, deadline=None)
@given(password=st.none() | st.binary(min_size=1, max_size=16))
def test_pem_round_trip(key: JWK, password: bytes | None) -> None:
    private = JWK.from_pem(key.to_pem(private=True, password=password), password=password)
    assert private.is_private
    assert private.thumbprint() == key.thumbprint()
    assert private.kid == key.thumbprint()  # kid defaults to the thumbprint
    public = JWK.from_pem(key.to_pem())
    assert not public.is_private
    assert public.to_dict() == JWK.from_dict(key.public().to_dict()).to_dict()


@given(st.binary(max_size=200))
def test_base64url_round_trip(data: bytes) -> None:
    encoded = b64url_bytes(data)
    assert b"=" not in encoded
    assert b64url_decode(encoded) == data
    assert b64url_decode(encoded.decode()) == data


@given(st.text(max_size=40))
def test_base64url_accepts_only_canonical_text(text: str) -> None:
    try:
        decoded = b64url_decode(text)
    except MalformedToken:
        return
    # Whatever decodes is the unique encoding of what it decodes to.
    assert b64url_bytes(decoded).decode() == text


@given(json_values)
def test_json_round_trip(value: Any) -> None:
    wrapped = {"value": value}
    assert json_object(compact_json(wrapped), "claims") == wrapped


@given(st.binary(max_size=200))
def test_arbitrary_json_bytes_are_an_object_or_malformed(data: bytes) -> None:
    with contextlib.suppress(MalformedToken):
        assert isinstance(json_object(data, "x"), dict)


# -- no single-byte change verifies ------------------------------------------------------------

TOKENS = {
    alg: jwt.encode({"sub": "alice", "aud": "api", "exp": 2_000_000_000}, KEYS[alg], alg).encode()
    for alg in ("HS256", "HS512", "RS256", "PS256", "ES256", "ES512", "EdDSA", "Ed448")
}


@pytest.mark.parametrize("alg", sorted(TOKENS))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_no_single_byte_change_verifies(alg: str, data: st.DataObject) -> None:
    token = TOKENS[alg]
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1), label="position")
    value = data.draw(
        st.integers(min_value=0, max_value=255).filter(lambda b: b != token[position]),
        label="byte",
    )
    mutated = token[:position] + bytes([value]) + token[position + 1 :]
    key = verification_key(alg)
    with pytest.raises(JoseError):
        jws.verify(mutated, key, [alg])
    with pytest.raises(JoseError):
        jwt.decode(mutated, JWKSet([key]), algorithms=list(TOKENS), audience="api")
    if value < 128:  # the same change as text
        with pytest.raises(JoseError):
            jws.verify(mutated.decode("ascii"), key, [alg])


@pytest.mark.parametrize("alg", sorted(TOKENS))
def test_every_position_and_a_few_values_exhaustively(alg: str) -> None:
    """Deterministic complement to the property: every position, with four replacement bytes."""
    token = TOKENS[alg]
    key = verification_key(alg)
    for position in range(len(token)):
        for value in {ord("A"), ord("_"), ord("."), 0x00} - {token[position]}:
            mutated = token[:position] + bytes([value]) + token[position + 1 :]
            with pytest.raises(JoseError):
                jws.verify(mutated, key, [alg])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=400))
def test_arbitrary_tokens_raise_jose_errors_only(token: bytes | str) -> None:
    for key in (KEYS["HS256"], JWKSet([verification_key("ES256"), verification_key("RS256")])):
        with pytest.raises(JoseError):
            jwt.decode(token, key, algorithms=ALGS)


@settings(max_examples=200, deadline=None)
@given(
    header=st.dictionaries(
        st.sampled_from(["alg", "kid", "crit", "b64", "typ", "jwk"]), json_values
    ),
    payload=st.binary(max_size=60),
)
def test_arbitrary_headers_raise_jose_errors_only(header: dict[str, Any], payload: bytes) -> None:
    token = f"{b64url_bytes(compact_json(header)).decode()}.{b64url_bytes(payload).decode()}.c2ln"
    with pytest.raises(JoseError):
        jws.verify(token, KEYS["HS256"], ALGS)
