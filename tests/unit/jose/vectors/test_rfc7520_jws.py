"""JWK and JWS against the JOSE Cookbook: RFC 7520 §3 (keys) and §4 (signatures).

The examples are read from `tests/vectors/rfc7520-cookbook/` (see SOURCES.md). Every section
whose algorithm authgate supports is verified from its compact serialization, and for the
deterministic algorithms (RSASSA-PKCS1-v1_5, HMAC) signing reproduces the published output exactly.

What is skipped, and why:
- §4.6, §4.7 put header members in the *unprotected* header, which exists only in the JSON
  serializations; authgate implements the compact serialization only (the signature over the
  protected part is still checked below, by rebuilding the compact form the example implies).
- §4.8 (multiple signatures) exists only in the general JSON serialization; each of its three
  signatures is checked on its own compact equivalent where one exists.
- PS384 (§4.2) and ES512 (§4.3) are randomized: they are verified, and signing is checked by
  verifying a fresh signature instead of comparing bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from authgate.jose import JWK, InvalidKey, InvalidSignature, JWKSet, jws
from authgate.jose._signatures import verifier
from authgate.jose.encoding import b64url_decode
from tests.support.tokens import b64url_bytes

SECTIONS = {
    "4_1": "rsa_v15_signature",
    "4_2": "rsa-pss_signature",
    "4_3": "ecdsa_signature",
    "4_4": "hmac-sha2_integrity_protection",
    "4_5": "signature_with_detached_content",
}
DETERMINISTIC = {"RS256", "HS256"}


def load(vectors_dir: Path, section: str) -> dict[str, Any]:
    path = vectors_dir / "rfc7520-cookbook" / "jws" / f"{section}.{SECTIONS[section]}.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


# -- §3: the keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kty", "crv", "private"),
    [
        ("3_1.ec_public_key", "EC", "P-521", False),
        ("3_2.ec_private_key", "EC", "P-521", True),
        ("3_3.rsa_public_key", "RSA", None, False),
        ("3_4.rsa_private_key", "RSA", None, True),
        ("3_5.symmetric_key_mac_computation", "oct", None, True),
        ("3_6.symmetric_key_encryption", "oct", None, True),
    ],
)
def test_cookbook_keys_import_and_export_unchanged(
    vectors_dir: Path, name: str, kty: str, crv: str | None, private: bool
) -> None:
    data = json.loads((vectors_dir / "rfc7520-cookbook" / "jwk" / f"{name}.json").read_text())
    key = JWK.from_dict(data)
    assert (key.kty, key.crv, key.kid, key.is_private) == (kty, crv, data["kid"], private)
    # Every member, private ones included, round-trips byte for byte.
    assert key.to_dict(private=private) == data


def test_cookbook_public_and_private_keys_share_a_thumbprint(vectors_dir: Path) -> None:
    folder = vectors_dir / "rfc7520-cookbook" / "jwk"
    for public, private in (("3_1.ec_public_key", "3_2.ec_private_key"),
                            ("3_3.rsa_public_key", "3_4.rsa_private_key")):  # fmt: skip
        pub = JWK.from_dict(json.loads((folder / f"{public}.json").read_text()))
        priv = JWK.from_dict(json.loads((folder / f"{private}.json").read_text()))
        assert pub.thumbprint() == priv.thumbprint() == priv.public().thumbprint()
        assert priv.public().to_dict() == pub.to_dict()


# -- §4.1-§4.5: compact serializations ---------------------------------------------------------


@pytest.mark.parametrize("section", ["4_1", "4_2", "4_3", "4_4"])
def test_cookbook_compact_signature_verifies(vectors_dir: Path, section: str) -> None:
    example = load(vectors_dir, section)
    key = JWK.from_dict(example["input"]["key"])
    alg = example["input"]["alg"]
    public = key.public() if key.kty != "oct" else key
    result = jws.verify(example["output"]["compact"], public, [alg])
    assert result.payload == example["input"]["payload"].encode("utf-8")
    assert result.header == example["signing"]["protected"]
    # The same signature also verifies through a key set, selected by the header's kid.
    jwks = JWKSet([public])
    assert jws.verify(example["output"]["compact"], jwks, [alg]).payload == result.payload


@pytest.mark.parametrize("section", ["4_1", "4_2", "4_3", "4_4"])
def test_cookbook_signing(vectors_dir: Path, section: str) -> None:
    example = load(vectors_dir, section)
    key = JWK.from_dict(example["input"]["key"])
    alg = example["input"]["alg"]
    payload = example["input"]["payload"].encode("utf-8")
    token = jws.sign(payload, key, alg)
    header_segment = token.split(".")[0]
    # authgate writes the protected header exactly as the cookbook does.
    assert header_segment == example["signing"]["protected_b64u"]
    if alg in DETERMINISTIC:
        assert token == example["output"]["compact"]
    else:
        assert token != example["output"]["compact"]  # randomized signatures differ
        assert jws.verify(token, key.public(), [alg]).payload == payload


def test_cookbook_detached_content(vectors_dir: Path) -> None:
    """§4.5: the compact form carries an empty payload segment (RFC 7515 Appendix F)."""
    example = load(vectors_dir, "4_5")
    key = JWK.from_dict(example["input"]["key"])
    payload = example["input"]["payload"].encode("utf-8")
    compact = example["output"]["compact"]
    assert compact.split(".")[1] == ""
    assert jws.sign(payload, key, "HS256", detached=True) == compact
    assert jws.verify(compact, key, ["HS256"], detached_payload=payload).payload == payload
    with pytest.raises(InvalidSignature):
        jws.verify(compact, key, ["HS256"], detached_payload=payload + b"!")


def test_cookbook_signatures_fail_with_the_wrong_payload(vectors_dir: Path) -> None:
    for section in ("4_1", "4_2", "4_3", "4_4"):
        example = load(vectors_dir, section)
        key = JWK.from_dict(example["input"]["key"])
        header, _, signature = example["output"]["compact"].split(".")
        forged = f"{header}.{b64url_bytes(b'It is a safe business').decode()}.{signature}"
        public = key.public() if key.kty != "oct" else key
        with pytest.raises(InvalidSignature):
            jws.verify(forged, public, [example["input"]["alg"]])


# -- §4.6-§4.8: JSON-only sections, checked through their signing inputs ------------------------


def test_cookbook_protecting_specific_header_fields(vectors_dir: Path) -> None:
    """§4.6: alg is protected, kid is not; the signature covers `protected.payload`."""
    example = json.loads(
        (
            vectors_dir / "rfc7520-cookbook/jws/4_6.protecting_specific_header_fields.json"
        ).read_text()
    )
    key = JWK.from_dict(example["input"]["key"])
    flat = example["output"]["json_flat"]
    compact = f"{flat['protected']}.{flat['payload']}.{flat['signature']}"
    # Without the unprotected kid, the compact form is a valid HS256 JWS over the same input.
    assert jws.verify(compact, key, ["HS256"]).header == {"alg": "HS256"}
    assert jws.sign(example["input"]["payload"].encode(), _without_kid(key), "HS256") == compact


def test_cookbook_protecting_content_only_has_no_compact_form(vectors_dir: Path) -> None:
    """§4.7: nothing is protected, so `alg` itself is unprotected: no compact JWS can express it.

    The signature is still the HMAC of `.payload` (an empty protected header), which we check with
    the primitive so that the vector is exercised.
    """
    example = json.loads(
        (vectors_dir / "rfc7520-cookbook/jws/4_7.protecting_content_only.json").read_text()
    )
    key = JWK.from_dict(example["input"]["key"])
    flat = example["output"]["json_flat"]
    check = verifier(key, "HS256")
    assert check(b"." + flat["payload"].encode(), b64url_decode(flat["signature"]))


def test_cookbook_multiple_signatures(vectors_dir: Path) -> None:
    """§4.8: three signatures in the general JSON serialization.

    The third one (HS256, everything protected) has an exact compact equivalent. The first (RS256,
    kid unprotected) verifies in compact form without its unprotected kid. The second (ES512) has
    no protected header at all, so no compact form exists; its signature is checked with the
    primitive over `.payload`.
    """
    example = json.loads(
        (vectors_dir / "rfc7520-cookbook/jws/4_8.multiple_signatures.json").read_text()
    )
    payload_segment = example["output"]["json"]["payload"]
    keys = [JWK.from_dict(k) for k in example["input"]["key"]]
    algs = example["input"]["alg"]
    signatures = example["output"]["json"]["signatures"]
    rsa = keys[0].public()
    compact = f"{signatures[0]['protected']}.{payload_segment}.{signatures[0]['signature']}"
    assert jws.verify(compact, rsa, [algs[0]]).header == {"alg": "RS256"}
    ec = keys[1].public()
    assert verifier(ec, "ES512")(
        b"." + payload_segment.encode(), b64url_decode(signatures[1]["signature"])
    )
    compact = f"{signatures[2]['protected']}.{payload_segment}.{signatures[2]['signature']}"
    assert jws.verify(compact, keys[2], [algs[2]]).payload == example["input"]["payload"].encode()


def test_cookbook_keys_are_bound_to_their_family(vectors_dir: Path) -> None:
    """The §4.1 RSA key cannot verify the §4.4 HMAC example, nor the reverse (RFC 8725 §3.1)."""
    rsa = JWK.from_dict(load(vectors_dir, "4_1")["input"]["key"]).public()
    hmac_example = load(vectors_dir, "4_4")
    with pytest.raises(InvalidKey):
        jws.verify(hmac_example["output"]["compact"], rsa, ["HS256"])
    hmac_key = JWK.from_dict(hmac_example["input"]["key"])
    with pytest.raises(InvalidKey):
        jws.verify(load(vectors_dir, "4_1")["output"]["compact"], hmac_key, ["RS256"])


def _without_kid(key: JWK) -> JWK:
    data = key.to_dict(private=True)
    del data["kid"]
    return JWK.from_dict(data)
