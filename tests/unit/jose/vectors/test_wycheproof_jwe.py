"""Project Wycheproof vectors for JWE (`tests/vectors/wycheproof/`, see SOURCES.md).

`json_web_encryption_test.json` runs through the public `jwe.decrypt`; every case's expected result
is honoured, except the ones named in `DELIBERATELY_REJECTED` with the reason. The primitive files
run through this library's own internal primitives (`content_encryption`, `key_management`),
restricted to the parameters JOSE uses: AES-GCM with a 96-bit IV and a 128-bit tag, AES keys of 128,
192 and 256 bits, RSA-OAEP without a label, ECDH keys given as JWKs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authgate.jose import JWK, AlgorithmNotAllowed, DecryptionFailed, JoseError, jwe
from authgate.jose._algorithms import JWE_CONTENT_ALGORITHMS, JWE_KEY_ALGORITHMS
from authgate.jose._content_encryption import (
    aes_cbc_decrypt,
    aes_cbc_encrypt,
    gcm_decrypt,
    gcm_encrypt,
)
from authgate.jose._key_management import (
    aes_unwrap,
    ecdh_shared_secret,
    rsa_oaep_decrypt,
    unwrap,
    wrap,
)

ALL_ALGS = sorted(JWE_KEY_ALGORITHMS)
ALL_ENCS = sorted(JWE_CONTENT_ALGORITHMS)

# Cases Wycheproof marks valid that authgate refuses on purpose, with the reason.
_RSA1_5 = "RSA1_5 (RSAES-PKCS1-v1_5) is not offered: its padding is a decryption oracle"
DELIBERATELY_REJECTED = {
    100: _RSA1_5,
    101: _RSA1_5,
    102: _RSA1_5,
    103: _RSA1_5,
    104: _RSA1_5,
    105: _RSA1_5,
    112: _RSA1_5,
    128: _RSA1_5 + " (RFC 7520 Figure 81)",
    135: "zip is not offered: compressed content invites decompression bombs (RFC 7520 Figure 170)",
}


def _load(vectors_dir: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((vectors_dir / "wycheproof" / name).read_text())
    return data


def _cases(data: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    count = 0
    for group in data["testGroups"]:
        for case in group["tests"]:
            count += 1
            yield group, case
    assert count == data["numberOfTests"]


def _group_key(group: dict[str, Any], member: str) -> JWK:
    """The group's key, imported once (RSA imports validate the key and are slow)."""
    if "_jwk" not in group:
        group["_jwk"] = JWK.from_dict(group[member])
    key: JWK = group["_jwk"]
    return key


# -- JOSE level ------------------------------------------------------------------------------------


def test_json_web_encryption(vectors_dir: Path) -> None:
    refused_valid: dict[int, str] = {}
    checked = 0
    for group, case in _cases(_load(vectors_dir, "json_web_encryption_test.json")):
        key = _group_key(group, "private")
        try:
            result = jwe.decrypt(case["jwe"], key, algorithms=ALL_ALGS, encryptions=ALL_ENCS)
        except JoseError as exc:
            if case["result"] == "valid":
                refused_valid[case["tcId"]] = str(exc)
            checked += 1
            continue
        assert case["result"] == "valid", f"tcId {case['tcId']} ({case['comment']}) decrypted"
        assert result.plaintext.hex() == case["pt"], f"tcId {case['tcId']}"
        checked += 1
    assert checked == 139
    assert refused_valid.keys() == DELIBERATELY_REJECTED.keys(), refused_valid


@pytest.mark.parametrize("tc_id", sorted(DELIBERATELY_REJECTED))
def test_deliberately_rejected_cases_fail_as_unsupported(vectors_dir: Path, tc_id: int) -> None:
    """Each refusal above is an `AlgorithmNotAllowed` naming the feature, not a crypto failure."""
    for group, case in _cases(_load(vectors_dir, "json_web_encryption_test.json")):
        if case["tcId"] == tc_id:
            key = JWK.from_dict(group["private"])
            feature = "zip" if "zip" in DELIBERATELY_REJECTED[tc_id] else "RSA1_5"
            with pytest.raises(AlgorithmNotAllowed, match=feature):
                jwe.decrypt(case["jwe"], key, algorithms=ALL_ALGS, encryptions=ALL_ENCS)


def test_invalid_curve_point_is_a_decryption_failure(vectors_dir: Path) -> None:
    for group, case in _cases(_load(vectors_dir, "json_web_encryption_test.json")):
        if case["comment"] == "rejectsInvalidCurvePoint":
            with pytest.raises(DecryptionFailed):
                jwe.decrypt(
                    case["jwe"],
                    JWK.from_dict(group["private"]),
                    algorithms=ALL_ALGS,
                    encryptions=ALL_ENCS,
                )


# -- content encryption primitives -----------------------------------------------------------------


def test_aes_gcm(vectors_dir: Path) -> None:
    jose_sized = strict_refusals = 0
    for group, case in _cases(_load(vectors_dir, "aes_gcm_test.json")):
        key, iv, aad, msg, ct, tag = (
            bytes.fromhex(case[name]) for name in ("key", "iv", "aad", "msg", "ct", "tag")
        )
        if group["keySize"] not in (128, 192, 256) or group["tagSize"] != 128:
            continue
        if group["ivSize"] != 96:
            # JOSE fixes a 96-bit IV (RFC 7518 §5.3): any other size is refused, even if valid.
            with pytest.raises(DecryptionFailed):
                gcm_decrypt(key, iv, ct, tag, aad)
            strict_refusals += 1
            continue
        jose_sized += 1
        if case["result"] == "valid":
            assert gcm_encrypt(key, iv, msg, aad) == (ct, tag), case["tcId"]
            assert gcm_decrypt(key, iv, ct, tag, aad) == msg, case["tcId"]
        else:
            with pytest.raises(DecryptionFailed):
                gcm_decrypt(key, iv, ct, tag, aad)
    assert jose_sized > 100
    assert strict_refusals > 50


def test_aes_cbc_pkcs5(vectors_dir: Path) -> None:
    for _, case in _cases(_load(vectors_dir, "aes_cbc_pkcs5_test.json")):
        key, iv, msg, ct = (bytes.fromhex(case[name]) for name in ("key", "iv", "msg", "ct"))
        if case["result"] == "valid":
            assert aes_cbc_encrypt(key, iv, msg) == ct, case["tcId"]
            assert aes_cbc_decrypt(key, iv, ct) == msg, case["tcId"]
        else:
            with pytest.raises(DecryptionFailed):
                aes_cbc_decrypt(key, iv, ct)


# -- key management primitives ---------------------------------------------------------------------

_KW_BY_KEY_SIZE = {16: "A128KW", 24: "A192KW", 32: "A256KW"}
_ENC_BY_CEK_SIZE = {
    16: "A128GCM",
    24: "A192GCM",
    32: "A256GCM",
    48: "A192CBC-HS384",
    64: "A256CBC-HS512",
}


def test_aes_key_wrap(vectors_dir: Path) -> None:
    full_path = 0
    for _, case in _cases(_load(vectors_dir, "aes_wrap_test.json")):
        kek, msg, ct = (bytes.fromhex(case[name]) for name in ("key", "msg", "ct"))
        unwrapped = aes_unwrap(kek, ct)
        if case["result"] == "invalid":
            assert unwrapped is None, case["tcId"]
            continue
        if case["result"] == "acceptable":
            # Wrapping an 8-byte key (RFC 3394 needs two blocks); a CEK is never that short.
            assert unwrapped in (None, msg), case["tcId"]
            continue
        assert unwrapped == msg, case["tcId"]
        alg, enc = _KW_BY_KEY_SIZE.get(len(kek)), _ENC_BY_CEK_SIZE.get(len(msg))
        if alg and enc:  # the vector is a JOSE key wrap: run it through wrap() and unwrap()
            key = JWK.from_secret(kek)
            assert wrap(alg, enc, key, {}, cek=msg).encrypted_key == ct, case["tcId"]
            assert unwrap(alg, enc, key, {}, ct) == msg, case["tcId"]
            full_path += 1
    assert full_path > 20


@pytest.mark.parametrize(
    ("name", "alg"),
    [
        ("rsa_oaep_2048_sha1_mgf1sha1_test.json", "RSA-OAEP"),
        ("rsa_oaep_2048_sha256_mgf1sha256_test.json", "RSA-OAEP-256"),
    ],
)
def test_rsa_oaep(vectors_dir: Path, name: str, alg: str) -> None:
    for group, case in _cases(_load(vectors_dir, name)):
        key = _group_key(group, "privateKeyJwk")
        msg, ct = bytes.fromhex(case["msg"]), bytes.fromhex(case["ct"])
        decrypted = rsa_oaep_decrypt(key, alg, ct)
        if case["label"]:
            # JOSE's RSA-OAEP has no label (RFC 7518 §4.3): a labelled ciphertext never decrypts.
            assert decrypted is None, case["tcId"]
        elif case["result"] == "valid":
            assert decrypted == msg, case["tcId"]
        else:
            assert decrypted is None, case["tcId"]


@pytest.mark.parametrize(
    "name",
    [
        "ecdh_secp256r1_webcrypto_test.json",
        "ecdh_secp384r1_webcrypto_test.json",
        "ecdh_secp521r1_webcrypto_test.json",
    ],
)
def test_ecdh_ec(vectors_dir: Path, name: str) -> None:
    invalid = 0
    for _, case in _cases(_load(vectors_dir, name)):
        recipient = JWK.from_dict(case["private"])
        if case["result"] == "valid":
            assert ecdh_shared_secret(recipient, case["public"]).hex() == case["shared"], case[
                "tcId"
            ]
        else:  # invalid-curve points, points not on the curve, other curves
            with pytest.raises(DecryptionFailed):
                ecdh_shared_secret(recipient, case["public"])
            invalid += 1
    assert invalid == 23


def test_ecdh_x25519(vectors_dir: Path) -> None:
    zero_shared = 0
    for _, case in _cases(_load(vectors_dir, "x25519_jwk_test.json")):
        recipient = JWK.from_dict(case["private"])
        if case["result"] == "invalid" or "ZeroSharedSecret" in case["flags"]:
            # Keys of other types, and low-order points (all-zero shared secret, RFC 8037 §4).
            with pytest.raises(DecryptionFailed):
                ecdh_shared_secret(recipient, case["public"])
            zero_shared += "ZeroSharedSecret" in case["flags"]
            continue
        # valid, and acceptable twist / non-canonical points: X25519 is defined for every input.
        assert ecdh_shared_secret(recipient, case["public"]).hex() == case["shared"], case["tcId"]
    assert zero_shared > 20
