"""JWE interoperability with two independent implementations, joserfc and jwcrypto, both ways.

For every key management algorithm and every content encryption (and, for ECDH-ES, every curve):
the peer encrypts and authgate decrypts, and authgate encrypts and the peer decrypts. Nested JWTs
(signed, then encrypted, `cty: JWT`) are exchanged the same way.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
from joserfc import jwe as rfc_jwe
from joserfc import jws as rfc_jws
from joserfc import jwt as rfc_jwt
from joserfc.jwk import import_key as rfc_import_key
from jwcrypto import jwe as jc_jwe
from jwcrypto import jwk as jc_jwk
from jwcrypto import jwt as jc_jwt

from authgate.jose import JWK, jwe, jwt
from authgate.jose._algorithms import JWE_CONTENT_ALGORITHMS

# joserfc flags the polymorphic "EdDSA" name (RFC 9864); it is still what jwcrypto speaks.
pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

ENCS = sorted(JWE_CONTENT_ALGORITHMS)
SECRET_SIZES = {
    "A128KW": 16,
    "A192KW": 24,
    "A256KW": 32,
    "A128GCMKW": 16,
    "A192GCMKW": 24,
    "A256GCMKW": 32,
}
ECDH = ["ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A192KW", "ECDH-ES+A256KW"]
CURVES = {"P-256": "EC", "P-384": "EC", "P-521": "EC", "X25519": "OKP", "X448": "OKP"}
PLAINTEXT = "interop \u2713 across implementations".encode()


@cache
def our_key(alg: str, enc: str, curve: str | None) -> JWK:
    """The recipient's private key for this case (one per kind, generated once)."""
    if alg.startswith("RSA"):
        return _rsa()
    if curve is not None:
        return _curve(curve)
    size = JWE_CONTENT_ALGORITHMS[enc] if alg == "dir" else SECRET_SIZES[alg]
    return JWK.generate("oct", size=size * 8)


@cache
def _rsa() -> JWK:
    return JWK.generate("RSA", size=2048)


@cache
def _curve(curve: str) -> JWK:
    return JWK.generate(CURVES[curve], crv=curve)


def _cases() -> list[tuple[str, str, str | None]]:
    cases: list[tuple[str, str, str | None]] = []
    for enc in ENCS:
        cases += [("RSA-OAEP", enc, None), ("RSA-OAEP-256", enc, None), ("dir", enc, None)]
        cases += [(alg, enc, None) for alg in SECRET_SIZES]
        cases += [(alg, enc, curve) for alg in ECDH for curve in CURVES]
    return cases


CASES = _cases()
IDS = [f"{alg}-{enc}" + (f"-{curve}" if curve else "") for alg, enc, curve in CASES]


def _sender_dict(key: JWK) -> dict[str, Any]:
    return key.to_dict(private=True) if key.kty == "oct" else key.public().to_dict()


def _sender(key: JWK) -> JWK:
    return key if key.kty == "oct" else key.public()


# Peer key objects, converted once per key (importing an RSA private key validates it: slow).
@cache
def rfc_key(key: JWK, private: bool) -> Any:
    return rfc_import_key(key.to_dict(private=True) if private else _sender_dict(key))


@cache
def jc_key(key: JWK, private: bool) -> Any:
    return jc_jwk.JWK(**(key.to_dict(private=True) if private else _sender_dict(key)))


# -- joserfc ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("alg", "enc", "curve"), CASES, ids=IDS)
def test_joserfc_encrypts_authgate_decrypts(alg: str, enc: str, curve: str | None) -> None:
    key = our_key(alg, enc, curve)
    token = rfc_jwe.encrypt_compact(
        {"alg": alg, "enc": enc},
        PLAINTEXT,
        rfc_key(key, private=False),
        algorithms=[alg, enc],
    )
    result = jwe.decrypt(token, key, algorithms=[alg], encryptions=[enc])
    assert result.plaintext == PLAINTEXT


@pytest.mark.parametrize(("alg", "enc", "curve"), CASES, ids=IDS)
def test_authgate_encrypts_joserfc_decrypts(alg: str, enc: str, curve: str | None) -> None:
    key = our_key(alg, enc, curve)
    token = jwe.encrypt(PLAINTEXT, _sender(key), alg, enc)
    obj = rfc_jwe.decrypt_compact(token, rfc_key(key, private=True), algorithms=[alg, enc])
    assert obj.plaintext == PLAINTEXT


# -- jwcrypto --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("alg", "enc", "curve"), CASES, ids=IDS)
def test_jwcrypto_encrypts_authgate_decrypts(alg: str, enc: str, curve: str | None) -> None:
    key = our_key(alg, enc, curve)
    token = jc_jwe.JWE(
        PLAINTEXT,
        protected=json.dumps({"alg": alg, "enc": enc}),
        recipient=jc_key(key, private=False),
    ).serialize(compact=True)
    result = jwe.decrypt(token, key, algorithms=[alg], encryptions=[enc])
    assert result.plaintext == PLAINTEXT


@pytest.mark.parametrize(("alg", "enc", "curve"), CASES, ids=IDS)
def test_authgate_encrypts_jwcrypto_decrypts(alg: str, enc: str, curve: str | None) -> None:
    key = our_key(alg, enc, curve)
    token = jwe.encrypt(PLAINTEXT, _sender(key), alg, enc)
    received = jc_jwe.JWE()
    received.deserialize(token, key=jc_key(key, private=True))
    assert received.payload == PLAINTEXT


# -- ECDH-ES party information (apu/apv) -----------------------------------------------------------


@pytest.mark.parametrize("alg", ["ECDH-ES", "ECDH-ES+A256KW"])
def test_party_info_both_ways(alg: str) -> None:
    key = _curve("P-256")
    header = {"alg": alg, "enc": "A256GCM", "apu": "QWxpY2U", "apv": "Qm9i"}
    ours = jwe.encrypt(PLAINTEXT, key.public(), alg, "A256GCM", {"apu": "QWxpY2U", "apv": "Qm9i"})
    rfc_private = rfc_import_key(key.to_dict(private=True))
    assert rfc_jwe.decrypt_compact(ours, rfc_private, algorithms=[alg, "A256GCM"]).plaintext == (
        PLAINTEXT
    )
    received = jc_jwe.JWE()
    received.deserialize(ours, key=jc_jwk.JWK(**key.to_dict(private=True)))
    assert received.payload == PLAINTEXT
    theirs = [
        rfc_jwe.encrypt_compact(
            dict(header), PLAINTEXT, rfc_key(key, private=False), algorithms=[alg, "A256GCM"]
        ),
        jc_jwe.JWE(
            PLAINTEXT, protected=json.dumps(header), recipient=jc_key(key, private=False)
        ).serialize(compact=True),
    ]
    for token in theirs:
        result = jwe.decrypt(token, key, algorithms=[alg], encryptions=["A256GCM"])
        assert result.plaintext == PLAINTEXT
        assert (result.header["apu"], result.header["apv"]) == ("QWxpY2U", "Qm9i")


# -- nested JWTs -----------------------------------------------------------------------------------

CLAIMS = {"iss": "https://issuer.example", "sub": "alice", "aud": "api", "exp": 4102444800}
NESTED = [
    ("RS256", "RSA-OAEP-256", "A256GCM", None),
    ("ES256", "ECDH-ES", "A128CBC-HS256", "P-256"),
    ("EdDSA", "ECDH-ES+A256KW", "A256GCM", "X25519"),
    ("PS384", "A256KW", "A256CBC-HS512", None),
    ("HS256", "dir", "A256GCM", None),
]


@cache
def _signing_key(alg: str) -> JWK:
    if alg.startswith(("RS", "PS")):
        return _rsa()
    if alg == "ES256":
        return JWK.generate("EC", crv="P-256")
    if alg == "EdDSA":
        return JWK.generate("OKP", crv="Ed25519")
    return JWK.generate("oct", size=256)


def _verifying(key: JWK) -> JWK:
    return key if key.kty == "oct" else key.public()


def _decode_ours(token: str, sign_alg: str, key_alg: str, enc: str, curve: str | None) -> None:
    claims = jwt.decode_nested(
        token,
        our_key(key_alg, enc, curve),
        _verifying(_signing_key(sign_alg)),
        algorithms=[sign_alg],
        key_algorithms=[key_alg],
        encryptions=[enc],
        issuer="https://issuer.example",
        audience="api",
    )
    assert claims == CLAIMS


NESTED_IDS = [f"{s}-in-{k}-{e}" for s, k, e, _ in NESTED]


@pytest.mark.parametrize(("sign_alg", "key_alg", "enc", "curve"), NESTED, ids=NESTED_IDS)
def test_nested_joserfc_to_authgate(
    sign_alg: str, key_alg: str, enc: str, curve: str | None
) -> None:
    signing = _signing_key(sign_alg)
    inner = rfc_jwt.encode(
        {"alg": sign_alg}, CLAIMS, rfc_import_key(signing.to_dict(private=True)),
        algorithms=[sign_alg],
    )  # fmt: skip
    recipient = our_key(key_alg, enc, curve)
    token = rfc_jwe.encrypt_compact(
        {"alg": key_alg, "enc": enc, "cty": "JWT"},
        inner,
        rfc_import_key(_sender_dict(recipient)),
        algorithms=[key_alg, enc],
    )
    _decode_ours(token, sign_alg, key_alg, enc, curve)


@pytest.mark.parametrize(("sign_alg", "key_alg", "enc", "curve"), NESTED, ids=NESTED_IDS)
def test_nested_authgate_to_joserfc(
    sign_alg: str, key_alg: str, enc: str, curve: str | None
) -> None:
    signing, recipient = _signing_key(sign_alg), our_key(key_alg, enc, curve)
    token = jwt.encode_nested(CLAIMS, signing, sign_alg, _sender(recipient), key_alg, enc)
    obj = rfc_jwe.decrypt_compact(
        token, rfc_import_key(recipient.to_dict(private=True)), algorithms=[key_alg, enc]
    )
    assert obj.protected["cty"] == "JWT"
    inner = rfc_jws.deserialize_compact(
        obj.plaintext, rfc_import_key(_sender_dict(signing)), algorithms=[sign_alg]
    )
    assert json.loads(inner.payload) == CLAIMS


@pytest.mark.parametrize(("sign_alg", "key_alg", "enc", "curve"), NESTED, ids=NESTED_IDS)
def test_nested_jwcrypto_to_authgate(
    sign_alg: str, key_alg: str, enc: str, curve: str | None
) -> None:
    signing, recipient = _signing_key(sign_alg), our_key(key_alg, enc, curve)
    inner = jc_jwt.JWT(header={"alg": sign_alg, "typ": "JWT"}, claims=CLAIMS)
    inner.make_signed_token(jc_jwk.JWK(**signing.to_dict(private=True)))
    outer = jc_jwt.JWT(header={"alg": key_alg, "enc": enc, "cty": "JWT"}, claims=inner.serialize())
    outer.make_encrypted_token(jc_jwk.JWK(**_sender_dict(recipient)))
    _decode_ours(outer.serialize(), sign_alg, key_alg, enc, curve)


@pytest.mark.parametrize(("sign_alg", "key_alg", "enc", "curve"), NESTED, ids=NESTED_IDS)
def test_nested_authgate_to_jwcrypto(
    sign_alg: str, key_alg: str, enc: str, curve: str | None
) -> None:
    signing, recipient = _signing_key(sign_alg), our_key(key_alg, enc, curve)
    token = jwt.encode_nested(CLAIMS, signing, sign_alg, _sender(recipient), key_alg, enc)
    outer = jc_jwt.JWT(
        jwt=token,
        key=jc_jwk.JWK(**recipient.to_dict(private=True)),
        expected_type="JWE",
        algs=[key_alg, enc],
    )
    assert json.loads(outer.token.objects["protected"])["cty"] == "JWT"
    inner = jc_jwt.JWT(
        jwt=outer.claims,
        key=jc_jwk.JWK(**_sender_dict(signing)),
        expected_type="JWS",
        algs=[sign_alg],
    )
    assert json.loads(inner.claims) == CLAIMS
