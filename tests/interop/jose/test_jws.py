"""Interoperability of JWS/JWT and JWK with three independent implementations: PyJWT, joserfc and
jwcrypto (test dependencies only), in both directions, for every JWS algorithm each supports.

- their tokens verify in authgate: `jwt.decode` with issuer, audience and expiry checks;
- authgate's tokens verify in them, with their own claim checks;
- their JWK JSON imports into authgate and back into them, with equal RFC 7638 thumbprints.

Supported sets (checked against each library's registry in `test_peer_algorithm_sets`): PyJWT has
no fully specified `Ed25519`/`Ed448` names (RFC 9864); joserfc and jwcrypto have all sixteen.
"""

from __future__ import annotations

import time
from typing import Any

import jwt as pyjwt
import pytest
from joserfc import jwt as rfc_jwt
from joserfc.jwk import JWKRegistry
from joserfc.jws import JWSRegistry
from jwcrypto import jwk as cjwk
from jwcrypto import jws as cjws
from jwcrypto import jwt as cjwt

from authgate.jose import JWK, jwt
from authgate.jose._algorithms import JWS_ALGORITHMS

ISSUER = "https://issuer.example"
AUDIENCE = "api://interop"
ALL = sorted(JWS_ALGORITHMS)
PYJWT_ALGS = sorted(set(ALL) - {"Ed25519", "Ed448"})

_RSA = JWK.generate("RSA")
KEYS: dict[str, JWK] = {
    "HS256": JWK.generate("oct", size=256),
    "HS384": JWK.generate("oct", size=384),
    "HS512": JWK.generate("oct", size=512),
    **dict.fromkeys(("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"), _RSA),
    "ES256": JWK.generate("EC", crv="P-256"),
    "ES384": JWK.generate("EC", crv="P-384"),
    "ES512": JWK.generate("EC", crv="P-521"),
    "ES256K": JWK.generate("EC", crv="secp256k1"),
    "EdDSA": JWK.generate("OKP", crv="Ed25519"),
    "Ed25519": JWK.generate("OKP", crv="Ed25519"),
    "Ed448": JWK.generate("OKP", crv="Ed448"),
}
# PyJWT's EdDSA also covers Ed448 keys.
ED448_EDDSA = JWK.generate("OKP", crv="Ed448")


def claims() -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 300}


def public(key: JWK) -> JWK:
    return key if key.kty == "oct" else key.public()


def decode(token: str, key: JWK, alg: str) -> dict[str, Any]:
    return jwt.decode(
        token, public(key), algorithms=[alg], issuer=ISSUER, audience=AUDIENCE, required=["exp"]
    )


def test_peer_algorithm_sets() -> None:
    assert set(PYJWT_ALGS) <= set(pyjwt.algorithms.get_default_algorithms())
    assert not {"Ed25519", "Ed448"} & set(pyjwt.algorithms.get_default_algorithms())
    assert set(ALL) <= set(JWSRegistry.algorithms)
    assert set(ALL) <= set(cjws.default_allowed_algs)


# -- PyJWT -------------------------------------------------------------------------------------


def _pyjwt_key(key: JWK, private: bool) -> Any:
    if key.kty == "oct":
        assert key._secret is not None
        return key._secret
    return key._private if private else key._public


@pytest.mark.parametrize("alg", PYJWT_ALGS)
def test_pyjwt_tokens_verify_in_authgate(alg: str) -> None:
    key = KEYS[alg]
    body = claims()
    token = pyjwt.encode(body, _pyjwt_key(key, private=True), algorithm=alg)
    assert decode(token, key, alg) == body


@pytest.mark.parametrize("alg", PYJWT_ALGS)
def test_authgate_tokens_verify_in_pyjwt(alg: str) -> None:
    key = KEYS[alg]
    body = claims()
    token = jwt.encode(body, key, alg)
    decoded = pyjwt.decode(
        token,
        _pyjwt_key(key, private=False),
        algorithms=[alg],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"require": ["exp", "iat"]},
    )
    assert decoded == body


def test_pyjwt_eddsa_with_ed448_both_ways() -> None:
    body = claims()
    token = pyjwt.encode(body, ED448_EDDSA._private, algorithm="EdDSA")
    assert decode(token, ED448_EDDSA, "EdDSA") == body
    ours = jwt.encode(body, ED448_EDDSA, "EdDSA")
    assert pyjwt.decode(ours, ED448_EDDSA._public, algorithms=["EdDSA"], audience=AUDIENCE) == body


# -- joserfc -----------------------------------------------------------------------------------


def _joserfc_key(key: JWK, private: bool) -> Any:
    data = key.to_dict(private=private or key.kty == "oct")
    return JWKRegistry.import_key(data)


# joserfc warns that the polymorphic "EdDSA" name is deprecated by RFC 9864; it still works.
@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
@pytest.mark.parametrize("alg", ALL)
def test_joserfc_tokens_verify_in_authgate(alg: str) -> None:
    key = KEYS[alg]
    body = claims()
    token = rfc_jwt.encode({"alg": alg}, body, _joserfc_key(key, private=True), algorithms=[alg])
    assert decode(token, key, alg) == body


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
@pytest.mark.parametrize("alg", ALL)
def test_authgate_tokens_verify_in_joserfc(alg: str) -> None:
    key = KEYS[alg]
    body = claims()
    token = jwt.encode(body, key, alg)
    result = rfc_jwt.decode(token, _joserfc_key(key, private=False), algorithms=[alg])
    registry = rfc_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": AUDIENCE},
        exp={"essential": True},
    )
    registry.validate(result.claims)
    assert result.claims == body
    assert result.header["alg"] == alg
    assert result.header["kid"] == key.kid


# -- jwcrypto ----------------------------------------------------------------------------------


def _jwcrypto_key(key: JWK, private: bool) -> cjwk.JWK:
    return cjwk.JWK(**key.to_dict(private=private or key.kty == "oct"))


@pytest.mark.parametrize("alg", ALL)
def test_jwcrypto_tokens_verify_in_authgate(alg: str) -> None:
    key = KEYS[alg]
    body = claims()
    token = cjwt.JWT(header={"alg": alg}, claims=body)
    token.make_signed_token(_jwcrypto_key(key, private=True))
    assert decode(token.serialize(), key, alg) == body


@pytest.mark.parametrize("alg", ALL)
def test_authgate_tokens_verify_in_jwcrypto(alg: str) -> None:
    key = KEYS[alg]
    body = claims()
    token = jwt.encode(body, key, alg)
    checked = cjwt.JWT(
        jwt=token,
        key=_jwcrypto_key(key, private=False),
        algs=[alg],
        check_claims={"iss": ISSUER, "aud": AUDIENCE, "exp": None},
    )
    assert cjwt.json_decode(checked.claims) == body


# -- JWK import and export ---------------------------------------------------------------------

JOSERFC_KEYS = [
    ("RSA", 2048),
    ("EC", "P-256"),
    ("EC", "P-384"),
    ("EC", "P-521"),
    ("EC", "secp256k1"),
    ("OKP", "Ed25519"),
    ("OKP", "Ed448"),
    ("OKP", "X25519"),
    ("OKP", "X448"),
    ("oct", 256),
]


@pytest.mark.parametrize(("kty", "option"), JOSERFC_KEYS)
def test_joserfc_jwks_round_trip(kty: str, option: Any) -> None:
    theirs = JWKRegistry.generate_key(kty, option, private=True)
    data = theirs.as_dict(private=True)
    ours = JWK.from_dict(data)
    assert ours.thumbprint() == theirs.thumbprint()
    assert ours.to_dict(private=True) == data
    back = JWKRegistry.import_key(ours.to_dict(private=True))
    assert back.thumbprint() == theirs.thumbprint()
    if kty != "oct":
        assert JWKRegistry.import_key(ours.public().to_dict()).thumbprint() == theirs.thumbprint()
        assert ours.public().to_dict() == theirs.as_dict(private=False)


JWCRYPTO_KEYS = [
    {"kty": "RSA", "size": 2048},
    {"kty": "EC", "crv": "P-256"},
    {"kty": "EC", "crv": "P-384"},
    {"kty": "EC", "crv": "P-521"},
    {"kty": "EC", "crv": "secp256k1"},
    {"kty": "OKP", "crv": "Ed25519"},
    {"kty": "OKP", "crv": "Ed448"},
    {"kty": "OKP", "crv": "X25519"},
    {"kty": "OKP", "crv": "X448"},
    {"kty": "oct", "size": 256},
]


@pytest.mark.parametrize("options", JWCRYPTO_KEYS, ids=lambda o: f"{o['kty']}-{o.get('crv', '')}")
def test_jwcrypto_jwks_round_trip(options: dict[str, Any]) -> None:
    theirs = cjwk.JWK.generate(**options)
    data = theirs.export(private_key=True, as_dict=True)
    ours = JWK.from_dict(data)
    assert ours.thumbprint() == theirs.thumbprint()
    assert ours.to_dict(private=True) == data
    back = cjwk.JWK(**ours.to_dict(private=True))
    assert back.thumbprint() == theirs.thumbprint()
    if options["kty"] != "oct":
        public = theirs.export_public(as_dict=True)
        assert ours.public().to_dict() == public
        assert cjwk.JWK(**ours.public().to_dict()).thumbprint() == theirs.thumbprint()


@pytest.mark.parametrize(
    ("algorithm", "key"),
    [
        (pyjwt.algorithms.RSAAlgorithm, _RSA),
        (pyjwt.algorithms.ECAlgorithm, KEYS["ES256"]),
        (pyjwt.algorithms.ECAlgorithm, KEYS["ES256K"]),
        (pyjwt.algorithms.OKPAlgorithm, KEYS["EdDSA"]),
        (pyjwt.algorithms.HMACAlgorithm, KEYS["HS256"]),
    ],
    ids=["RSA", "P-256", "secp256k1", "Ed25519", "oct"],
)
def test_pyjwt_jwks_round_trip(algorithm: Any, key: JWK) -> None:
    material = _pyjwt_key(key, private=True)
    data = algorithm.to_jwk(material, as_dict=True)
    ours = JWK.from_dict(data)
    assert ours.thumbprint() == key.thumbprint()
    # And ours into PyJWT: the same key comes back.
    again = algorithm.from_jwk(ours.to_dict(private=True))
    assert algorithm.to_jwk(again, as_dict=True) == data
    jwks = pyjwt.PyJWKSet.from_dict({"keys": [dict(ours.to_dict(private=True), kid="k1")]})
    assert jwks["k1"].key_type == ours.kty
