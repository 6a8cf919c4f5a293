"""EdDSA against RFC 8037 Appendix A: the Ed25519 key (A.1, A.2), its thumbprint (A.3) and the
signature example (A.4, A.5), read from `tests/vectors/rfc7520-cookbook/curve25519/jws.json`.
Ed25519 is deterministic, so signing reproduces the published JWS exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from authgate.jose import JWK, AlgorithmNotAllowed, InvalidKey, InvalidSignature, jws

# RFC 8037 A.3: the thumbprint of the A.2 public key.
THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def load(vectors_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (vectors_dir / "rfc7520-cookbook" / "curve25519" / "jws.json").read_text(encoding="utf-8")
    )
    return data


def test_a1_a2_key_and_a3_thumbprint(vectors_dir: Path) -> None:
    data = load(vectors_dir)["input"]["key"]
    key = JWK.from_dict(data)
    assert (key.kty, key.crv, key.use, key.is_private) == ("OKP", "Ed25519", "sig", True)
    assert key.to_dict(private=True) == data
    assert key.public().to_dict() == {k: v for k, v in data.items() if k != "d"}
    assert key.thumbprint() == key.public().thumbprint() == THUMBPRINT


def test_a4_signing_reproduces_the_example(vectors_dir: Path) -> None:
    example = load(vectors_dir)
    key = JWK.from_dict(example["input"]["key"])
    token = jws.sign(example["input"]["payload"].encode(), key, "EdDSA")
    assert token == example["output"]["compact"]


@pytest.mark.parametrize("alg", ["EdDSA", "Ed25519"])
def test_a5_verification(vectors_dir: Path, alg: str) -> None:
    example = load(vectors_dir)
    public = JWK.from_dict(example["input"]["key"]).public()
    compact = example["output"]["compact"]
    if alg == "EdDSA":
        assert jws.verify(compact, public, [alg]).payload == example["input"]["payload"].encode()
    else:
        # RFC 9864's fully specified name is a different algorithm identifier: a token saying
        # "EdDSA" is not accepted under an allow-list of ["Ed25519"].
        with pytest.raises(AlgorithmNotAllowed):
            jws.verify(compact, public, [alg])


def test_fully_specified_ed25519_round_trip(vectors_dir: Path) -> None:
    key = JWK.from_dict(load(vectors_dir)["input"]["key"])
    token = jws.sign(b"payload", key, "Ed25519")
    assert jws.verify(token, key.public(), ["Ed25519"]).header["alg"] == "Ed25519"
    # An Ed25519 key cannot claim to be Ed448.
    with pytest.raises(InvalidKey):
        jws.sign(b"payload", key, "Ed448")


def test_a5_tampered_signature_fails(vectors_dir: Path) -> None:
    example = load(vectors_dir)
    public = JWK.from_dict(example["input"]["key"]).public()
    header, payload, signature = example["output"]["compact"].split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    with pytest.raises(InvalidSignature):
        jws.verify(f"{header}.{payload}.{flipped}", public, ["EdDSA"])
