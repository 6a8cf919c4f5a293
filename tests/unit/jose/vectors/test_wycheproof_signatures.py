"""Project Wycheproof, primitive level: the signature and MAC files for every JWS algorithm
(`tests/vectors/wycheproof/`, see SOURCES.md).

Each key is imported from the JWK the file gives (`publicKeyJwk` / `keyJwk`, or the raw HMAC key
through `JWK.from_secret`) and each signature is checked with `signatures.verifier(key, alg)`, the
very function `jws.verify` calls. The verifier must return True for `valid` cases and False for
`invalid` ones, and never raise. Only the parameter sets JOSE uses are run: ECDSA in the P1363
(R || S) form, PSS with MGF1 over the same hash and a salt as long as the hash, HMAC with the full
tag and a key at least as long as the hash (RFC 7518 §3.2: shorter keys are refused, tested below).

`acceptable` cases: the only one in these files is `rsa_signature_2048_sha256` tcId with the
`MissingNull` flag (a DigestInfo without the NULL parameters). authgate rejects it: RFC 8017 §9.2
(note 2) says the parameters field is NULL, and verification re-encodes and compares.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authgate.jose import JWK, InvalidKey
from authgate.jose._signatures import verifier
from tests.support.tokens import b64url_bytes

ECDSA = {
    "ecdsa_secp256r1_sha256_p1363_test.json": "ES256",
    "ecdsa_secp384r1_sha384_p1363_test.json": "ES384",
    "ecdsa_secp521r1_sha512_p1363_test.json": "ES512",
    "ecdsa_secp256k1_sha256_p1363_test.json": "ES256K",
}
EDDSA = {"ed25519_test.json": ("EdDSA", "Ed25519"), "ed448_test.json": ("EdDSA", "Ed448")}
RSA_PKCS1 = {
    "rsa_signature_2048_sha256_test.json": "RS256",
    "rsa_signature_2048_sha384_test.json": "RS384",
    "rsa_signature_2048_sha512_test.json": "RS512",
}
RSA_PSS = {
    "rsa_pss_2048_sha256_mgf1_32_test.json": "PS256",
    "rsa_pss_2048_sha384_mgf1_48_test.json": "PS384",
    "rsa_pss_4096_sha512_mgf1_64_test.json": "PS512",
}
HMAC = {
    "hmac_sha256_test.json": ("HS256", 256),
    "hmac_sha384_test.json": ("HS384", 384),
    "hmac_sha512_test.json": ("HS512", 512),
}
# The decisions for `acceptable` cases: flag -> whether authgate accepts.
ACCEPTABLE = {"MissingNull": False}


def _groups(vectors_dir: Path, name: str) -> Iterator[dict[str, Any]]:
    data = json.loads((vectors_dir / "wycheproof" / name).read_text())
    assert sum(len(g["tests"]) for g in data["testGroups"]) == data["numberOfTests"]
    yield from data["testGroups"]


def _ec_jwk(public: dict[str, Any]) -> dict[str, str]:
    """A JWK for the groups that give the point only in uncompressed form."""
    crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}.get(
        public["curve"], public["curve"]
    )
    point = bytes.fromhex(public["uncompressed"])[1:]
    half = len(point) // 2
    x, y = (b64url_bytes(part).decode() for part in (point[:half], point[half:]))
    return {"kty": "EC", "crv": crv, "x": x, "y": y}


def _check(check: Any, group: dict[str, Any], label: str) -> tuple[int, list[str]]:
    wrong = []
    for case in group["tests"]:
        msg, sig = (
            bytes.fromhex(case["msg"]),
            bytes.fromhex(case["sig"] if "sig" in case else case["tag"]),
        )
        if case["result"] == "acceptable":
            (flag,) = (f for f in case["flags"] if f in ACCEPTABLE)
            expected = ACCEPTABLE[flag]
        else:
            expected = case["result"] == "valid"
        if check(msg, sig) is not expected:
            wrong.append(f"{label} tcId {case['tcId']} ({case['comment']}): not {expected}")
    return len(group["tests"]), wrong


@pytest.mark.parametrize("name", sorted(ECDSA))
def test_ecdsa_p1363(vectors_dir: Path, name: str) -> None:
    alg = ECDSA[name]
    total, wrong = 0, []
    for group in _groups(vectors_dir, name):
        key = JWK.from_dict(group.get("publicKeyJwk") or _ec_jwk(group["publicKey"]))
        count, errors = _check(verifier(key, alg), group, name)
        total, wrong = total + count, wrong + errors
    assert not wrong, "\n".join(wrong)
    assert total > 200


@pytest.mark.parametrize("name", sorted(EDDSA))
def test_eddsa(vectors_dir: Path, name: str) -> None:
    total, wrong = 0, []
    for group in _groups(vectors_dir, name):
        key = JWK.from_dict(group["publicKeyJwk"])
        for alg in EDDSA[name]:  # the polymorphic name and the fully specified one (RFC 9864)
            count, errors = _check(verifier(key, alg), group, f"{name} {alg}")
            total, wrong = total + count, wrong + errors
    assert not wrong, "\n".join(wrong)
    assert total > 150


@pytest.mark.parametrize("name", sorted(RSA_PKCS1))
def test_rsassa_pkcs1_v1_5(vectors_dir: Path, name: str) -> None:
    alg = RSA_PKCS1[name]
    total, wrong = 0, []
    for group in _groups(vectors_dir, name):
        key = JWK.from_dict(group["keyJwk"])
        assert key.alg == alg
        count, errors = _check(verifier(key, alg), group, name)
        total, wrong = total + count, wrong + errors
    assert not wrong, "\n".join(wrong)
    assert total > 200


@pytest.mark.parametrize("name", sorted(RSA_PSS))
def test_rsassa_pss(vectors_dir: Path, name: str) -> None:
    alg = RSA_PSS[name]
    bits = int(alg[2:])
    total, wrong = 0, []
    for group in _groups(vectors_dir, name):
        # Every group of these three files uses the JOSE parameters.
        assert (group["sha"], group["mgf"], group["mgfSha"]) == (
            f"SHA-{bits}",
            "MGF1",
            group["sha"],
        )
        assert int(group["sLen"]) == bits // 8
        key = JWK.from_dict(group["publicKeyJwk"])
        count, errors = _check(verifier(key, alg), group, name)
        total, wrong = total + count, wrong + errors
    assert not wrong, "\n".join(wrong)
    assert total > 100


@pytest.mark.parametrize("name", sorted(HMAC))
def test_hmac(vectors_dir: Path, name: str) -> None:
    alg, bits = HMAC[name]
    total, wrong, short_keys = 0, [], 0
    for group in _groups(vectors_dir, name):
        if int(group["tagSize"]) != bits:
            continue  # truncated tags do not exist in JOSE
        for case in group["tests"]:
            secret = bytes.fromhex(case["key"])
            if len(secret) * 8 < bits:
                # RFC 7518 §3.2: a key shorter than the hash output is refused outright.
                with pytest.raises(InvalidKey):
                    verifier(JWK.from_secret(secret), alg)
                short_keys += 1
                continue
            check = verifier(JWK.from_secret(secret), alg)
            count, errors = _check(check, {"tests": [case]}, name)
            total, wrong = total + count, wrong + errors
    assert not wrong, "\n".join(wrong)
    assert total > 40
    assert short_keys > 0


def test_the_acceptable_case_is_the_only_one(vectors_dir: Path) -> None:
    """Guard: a new `acceptable` flag in a future snapshot needs a written decision above."""
    flags = set()
    for name in [*ECDSA, *EDDSA, *RSA_PKCS1, *RSA_PSS, *HMAC]:
        for group in _groups(vectors_dir, name):
            for case in group["tests"]:
                if case["result"] == "acceptable":
                    flags.update(case["flags"])
    assert flags == set(ACCEPTABLE)
