"""Project Wycheproof, JOSE level: `json_web_signature_test.json`, `json_web_key_test.json` and the
JWS groups of `json_web_crypto_test.json` (`tests/vectors/wycheproof/`, see SOURCES.md).

Every token goes through the public `jws.verify` with the *widest* allow-list (every supported
JWS algorithm), so that only the key's binding, never the caller's list, stands between a
confusion attack and success. Each case's result is honoured, and each refusal must be the right
`JoseError` subclass (`expected_error`), except the cases in `DELIBERATE_DIFFERENCES`, which
are named with the reason and tested for the behaviour authgate has instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authgate.jose import (
    JWK,
    AlgorithmNotAllowed,
    InvalidKey,
    InvalidSignature,
    JoseError,
    JWKSet,
    KeyNotFound,
    MalformedToken,
    jws,
)
from authgate.jose._algorithms import JWS_ALGORITHMS
from authgate.jose.encoding import b64url_decode

ALL_ALGS = sorted(JWS_ALGORITHMS)

_BOUND = (
    "the RFC 7520 key is bound to {bound} by its 'alg' member, so it cannot verify {used} "
    "(RFC 7517 §4.4, RFC 8725 §3.1); Wycheproof itself calls the same mismatch invalid in "
    "json_web_signature_test tcId 331-340 (WrongPrimitive) and json_web_key_test tcId 19"
)
_STRICT_B64 = (
    "a '?' inside a base64url segment is not base64url: RFC 7515 §2 forbids characters outside "
    "the alphabet, and a decoder that skips them lets two different strings verify as one token"
)
_IDENTICAL = (
    "this snapshot's token is byte-for-byte the valid tcId 357 (the padding the case is named "
    "for is absent), so no verifier can both accept 357 and reject it; the padded form the case "
    "describes is refused in test_padding_cases_refuse_the_padded_tokens"
)
# tcId in json_web_signature_test.json -> why authgate's result differs from Wycheproof's.
DELIBERATE_DIFFERENCES = {
    346: _BOUND.format(bound="PS256", used="PS384"),
    350: _BOUND.format(bound="PS256", used="PS384"),
    347: _BOUND.format(bound="'ES521' (no such algorithm)", used="ES512"),
    351: _BOUND.format(bound="'ES521' (no such algorithm)", used="ES512"),
    372: _STRICT_B64,
    373: _STRICT_B64,
    367: _IDENTICAL,
    370: _IDENTICAL,
}

_MALFORMED = {
    "rejectsEmptyString",
    "rejectsExtraComponent",
    "rejectsExtraEmptyComponent",
    "rejectsMissingHeader",
    "rejectsMissingHeaderAndSeparator",
    "rejectsMissingHeaderAndSignature",
    "rejectsMissingHeaderSignatureAndSeparator",
    "rejectsMissingHeaderSignatureAndSeparators",
    "rejectsMissingPayloadAndSeparator",
    "rejectsMissingSignatureAndSeparator",
    "rejectsValidJsonSerialization",
}
_BAD_SIGNATURE = {
    "rejectsMissingPayload",
    "rejectsMissingSignature",
    "rejectsModifiedHeader",
    "rejectsModifiedPayload",
    "rejectsModifiedSignature",
    # The embedded `jwk` is ignored; the token is checked with the caller's key and fails.
    "rejectsAttackerProvidedEmbeddedJwk",
}
_BAD_KEY = {
    "rejectsSymmetryConfusionAttacks_aesKeyFromEcVerificationKeyBytes",
    "rejectWrongUse",
    "rejectsWrongUse",
    "rejectWrongKeyOps",
    "rejectsKeyWithRocaVulnerability",
    "rejectsDuplicateKid",
    "key_too_short",
    "empty_key",
    "rejectsAesKey",
    "mismatchedAlgAndCurve",
    "rejectsModifiedKey",
    "rejectsPublicExponent1",
    "rejects1024bitRsaKey",
}


def expected_error(group: dict[str, Any], case: dict[str, Any]) -> tuple[type[JoseError], ...]:
    """The error class(es) an invalid case must raise."""
    comment, flags = case["comment"], case["flags"]
    if "AlgIsNone" in flags or comment == "rejectsNoneAlgorithmAndMissingSignature":
        return (AlgorithmNotAllowed,)
    if comment in _MALFORMED or group["comment"] == "base64":
        return (MalformedToken,)
    if comment in _BAD_SIGNATURE or group["comment"] == "SpecialCaseEs256":
        return (InvalidSignature,)
    if {"ModifiedPadding", "ModifiedSignature"} & set(flags):
        return (InvalidSignature,)
    if "WrongPrimitive" in flags:
        # A header naming another algorithm than the key's is a key error; a signature made with
        # another primitive under the key's own algorithm is a signature error.
        header = json.loads(b64url_decode(case["jws"].split(".")[0]))
        key_alg = (group.get("public") or group["private"]).get("alg")
        return (InvalidKey,) if header["alg"] != key_alg else (InvalidSignature,)
    if comment in _BAD_KEY or {"MixedKeySet", "DuplicateKid"} & set(flags):
        # A set whose only member is unusable is empty after import: no key is found.
        return (InvalidKey, KeyNotFound)
    if "JsonWebKeyset" in flags and comment == "rejectsValid":  # a mixed set
        return (InvalidKey,)
    raise AssertionError(f"no expectation for {group['comment']}/{comment}")


def _cases(vectors_dir: Path, name: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    data = json.loads((vectors_dir / "wycheproof" / name).read_text())
    count = 0
    for group in data["testGroups"]:
        for case in group["tests"]:
            count += 1
            if "jws" in case:
                yield group, case
    assert count == data["numberOfTests"]


def _verify(group: dict[str, Any], case: dict[str, Any]) -> jws.VerifiedJWS:
    material = group.get("public") or group["private"]
    key = JWKSet.from_dict(material) if "keys" in material else JWK.from_dict(material)
    token = case["jws"] if isinstance(case["jws"], str) else json.dumps(case["jws"])
    return jws.verify(token, key, ALL_ALGS)


def _run(vectors_dir: Path, name: str, differences: dict[int, str]) -> int:
    mismatches: list[str] = []
    count = 0
    for group, case in _cases(vectors_dir, name):
        count += 1
        label = f"{name} tcId {case['tcId']} {group['comment']}/{case['comment']}"
        if case["tcId"] in differences:
            continue
        if case["result"] == "valid":
            try:
                _verify(group, case)
            except JoseError as exc:
                mismatches.append(f"{label}: valid but refused ({exc!r})")
            continue
        expected = expected_error(group, case)
        try:
            _verify(group, case)
        except expected:
            continue
        except JoseError as exc:
            mismatches.append(f"{label}: {type(exc).__name__}, expected {expected}")
            continue
        mismatches.append(f"{label}: invalid but verified")
    assert not mismatches, "\n".join(mismatches)
    return count


def test_json_web_signature(vectors_dir: Path) -> None:
    assert _run(vectors_dir, "json_web_signature_test.json", DELIBERATE_DIFFERENCES) == 401


def test_json_web_key(vectors_dir: Path) -> None:
    assert _run(vectors_dir, "json_web_key_test.json", {}) == 26


def test_json_web_crypto_signature_groups(vectors_dir: Path) -> None:
    """The `jws_*` groups; the `jwe_*` groups belong to the JWE tests."""
    assert _run(vectors_dir, "json_web_crypto_test.json", {}) == 49


def _case(vectors_dir: Path, tc_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    for group, case in _cases(vectors_dir, "json_web_signature_test.json"):
        if case["tcId"] == tc_id:
            return group, case
    raise AssertionError(tc_id)


@pytest.mark.parametrize("tc_id", [346, 347, 350, 351])
def test_keys_bound_to_another_algorithm_are_refused(vectors_dir: Path, tc_id: int) -> None:
    """Deliberate difference: see DELIBERATE_DIFFERENCES."""
    group, case = _case(vectors_dir, tc_id)
    assert case["result"] == "valid"
    with pytest.raises(InvalidKey, match="bound to"):
        _verify(group, case)
    # Without the `alg` member the same key verifies the same token: only the binding refuses.
    unbound = {k: v for k, v in (group.get("public") or group["private"]).items() if k != "alg"}
    assert jws.verify(case["jws"], JWK.from_dict(unbound), ALL_ALGS).payload


@pytest.mark.parametrize("tc_id", [372, 373])
def test_characters_outside_base64url_are_refused(vectors_dir: Path, tc_id: int) -> None:
    """Deliberate difference (SOURCES.md's known quirk): see DELIBERATE_DIFFERENCES."""
    group, case = _case(vectors_dir, tc_id)
    assert case["result"] == "valid"
    assert "?" in case["jws"]
    with pytest.raises(MalformedToken, match="not base64url"):
        _verify(group, case)
    # Without the stray character the token is tcId 357 and verifies.
    repaired = dict(case, jws=case["jws"].replace("?", ""))
    assert repaired["jws"] == _case(vectors_dir, 357)[1]["jws"]
    assert _verify(group, repaired).payload == b"Test"


@pytest.mark.parametrize("tc_id", [367, 370])
def test_padding_cases_refuse_the_padded_tokens(vectors_dir: Path, tc_id: int) -> None:
    """Deliberate difference: see DELIBERATE_DIFFERENCES. The snapshot lost the padding."""
    group, case = _case(vectors_dir, tc_id)
    valid = _case(vectors_dir, 357)[1]
    assert case["result"] == "invalid"
    assert case["jws"] == valid["jws"]
    header, payload, mac = case["jws"].split(".")
    padded = f"{header}.{payload}.{mac}=" if tc_id == 367 else f"{header}.{payload}==.{mac}"
    with pytest.raises(MalformedToken):
        _verify(group, dict(case, jws=padded))
