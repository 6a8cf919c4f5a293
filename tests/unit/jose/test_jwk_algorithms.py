"""The algorithm table read through `jwk.key_requirement` and `jwk.algorithms_for`."""

from __future__ import annotations

import pytest

from authgate.jose import JWK, AlgorithmNotAllowed, InvalidKey
from authgate.jose.jwk import Operation, algorithms_for, key_requirement

RSA_SIGNING = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
ECDH = ("ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A192KW", "ECDH-ES+A256KW")


def test_key_requirement_describes_each_algorithm() -> None:
    es256 = key_requirement("ES256")
    assert (es256.use, es256.families) == ("sig", frozenset({("EC", "P-256")}))
    assert key_requirement("HS384").min_secret_bytes == 48  # RFC 7518 §3.2
    a128kw = key_requirement("A128KW")
    assert (a128kw.use, a128kw.exact_secret_bytes) == ("enc", 16)
    assert key_requirement("EdDSA").families == {("OKP", "Ed25519"), ("OKP", "Ed448")}


@pytest.mark.parametrize("alg", ["none", "NONE", "RSA1_5", "PBES2-HS256+A128KW", "A128GCM", "", 7])
def test_key_requirement_refuses_other_names(alg: object) -> None:
    # A128GCM is a content encryption: no key serves it through the table.
    with pytest.raises(AlgorithmNotAllowed):
        key_requirement(alg)  # type: ignore[arg-type]


def test_algorithms_for_lists_a_family_in_table_order() -> None:
    assert algorithms_for("RSA", use="sig") == RSA_SIGNING
    assert algorithms_for("RSA", use="enc") == ("RSA-OAEP", "RSA-OAEP-256")
    assert algorithms_for("RSA") == (*RSA_SIGNING, "RSA-OAEP", "RSA-OAEP-256")
    assert algorithms_for("EC", "P-256") == ("ES256", *ECDH)
    assert algorithms_for("EC", "secp256k1") == ("ES256K",)
    assert algorithms_for("OKP", "Ed25519") == ("EdDSA", "Ed25519")
    assert algorithms_for("OKP", "Ed448", use="sig") == ("EdDSA", "Ed448")
    assert algorithms_for("OKP", "X25519", use="sig") == ()
    assert algorithms_for("OKP", "X448", use="enc") == ECDH
    assert algorithms_for("oct", use="sig") == ("HS256", "HS384", "HS512")
    assert algorithms_for("EC") == ()  # an EC key always has a curve
    assert algorithms_for("RSA", "P-256") == ()


FAMILIES = [
    ("RSA", None),
    ("EC", "P-256"),
    ("EC", "P-384"),
    ("EC", "P-521"),
    ("EC", "secp256k1"),
    ("OKP", "Ed25519"),
    ("OKP", "Ed448"),
    ("OKP", "X25519"),
    ("OKP", "X448"),
]
EVERY_ALGORITHM = {a for kty, crv in [*FAMILIES, ("oct", None)] for a in algorithms_for(kty, crv)}


def _operation(alg: str) -> Operation:
    if key_requirement(alg).use == "sig":
        return "verify"
    return "deriveKey" if alg.startswith("ECDH-ES") else "wrapKey"


@pytest.mark.parametrize(("kty", "crv"), FAMILIES)
def test_algorithms_for_agrees_with_the_key_binding(kty: str, crv: str | None) -> None:
    key = JWK.generate(kty, crv=crv)
    listed = algorithms_for(kty, crv)
    assert listed
    for alg in listed:
        key.check(alg, _operation(alg), private=False)
    for alg in EVERY_ALGORITHM - set(listed):
        with pytest.raises(InvalidKey):
            key.check(alg, _operation(alg), private=False)
