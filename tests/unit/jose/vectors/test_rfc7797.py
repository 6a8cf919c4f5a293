"""The unencoded payload option (RFC 7797): `b64: false` with `crit: ["b64"]`.

Sources: `tests/vectors/rfc7520-cookbook/rfc7797/` (the cookbook's machine-readable RFC 7797
examples) and the RFC 7797 §4.1 / §4.2 compact strings (also in jwcrypto's `tests.py`).

Known defects of the cookbook files, and how they are handled:
- `hmac-sha2_b64_false.json`: its `signing` block is stale (`protected_b64u` decodes to
  `{"alg":"HS256","b64":,"crit":["b64"]}`, which is not JSON, and `sig` belongs to another
  header). Its `output.compact` is consistent and is what is tested.
- `4.2.hmac-sha2_b64_false.json` reproduces a draft of RFC 7797 §4.2 whose header lacks
  `crit`. RFC 7797 §6 requires `b64` to be critical, so authgate refuses that header; the
  published RFC 7797 §4.2 value (with `crit`) is tested instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from authgate.jose import JWK, InvalidSignature, MalformedToken, jws, jwt
from authgate.jose.encoding import b64url_decode

# RFC 7797 §4 (and RFC 7515 A.1): the HMAC key of every example.
KEY = JWK.from_dict(
    {
        "kty": "oct",
        "k": (
            "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"
        ),
    }
)
UNENCODED = {"b64": False, "crit": ["b64"]}
# RFC 7797 §4.1: the payload "$.02" with a normal (encoded) payload.
RFC7797_4_1 = "eyJhbGciOiJIUzI1NiJ9.JC4wMg.5mvfOroL-g7HyqJoozehmsaqmvTYGEq5jTI1gVvoEoQ"
# RFC 7797 §4.2: the same payload unencoded; "$.02" contains '.', so the compact form is detached.
RFC7797_4_2 = (
    "eyJhbGciOiJIUzI1NiIsImI2NCI6ZmFsc2UsImNyaXQiOlsiYjY0Il19"
    "..A5dxf2s96_n5FLueVuW1Z_vh161FwXZC4YLPff6dmDY"
)


def load(vectors_dir: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (vectors_dir / "rfc7520-cookbook" / "rfc7797" / name).read_text(encoding="utf-8")
    )
    return data


def test_section_4_1_encoded_payload() -> None:
    assert jws.sign(b"$.02", KEY, "HS256") == RFC7797_4_1
    assert jws.verify(RFC7797_4_1, KEY, ["HS256"]).payload == b"$.02"


def test_section_4_2_unencoded_detached_payload() -> None:
    assert jws.sign(b"$.02", KEY, "HS256", UNENCODED, detached=True) == RFC7797_4_2
    result = jws.verify(RFC7797_4_2, KEY, ["HS256"], detached_payload=b"$.02")
    assert result.header == {"alg": "HS256", "b64": False, "crit": ["b64"]}
    assert result.payload == b"$.02"
    # The signature covers the raw payload: the base64url form of it does not verify.
    with pytest.raises(InvalidSignature):
        jws.verify(RFC7797_4_2, KEY, ["HS256"], detached_payload=b"JC4wMg")
    # An unencoded payload containing '.' cannot be carried in the compact form (RFC 7797 §5.2).
    with pytest.raises(MalformedToken):
        jws.sign(b"$.02", KEY, "HS256", UNENCODED)


def test_cookbook_compact_unencoded_payload(vectors_dir: Path) -> None:
    example = load(vectors_dir, "hmac-sha2_b64_false.json")
    key = JWK.from_dict(example["input"]["key"])
    payload = example["input"]["payload"].encode()
    compact = example["output"]["compact"]
    assert compact.split(".")[1] == example["input"]["payload"]  # carried as is
    result = jws.verify(compact, key, ["HS256"])
    assert result.payload == payload
    assert result.header == {"alg": "HS256", "b64": False, "crit": ["b64"]}
    assert jws.sign(payload, key, "HS256", UNENCODED) == compact
    # The stale `signing` block is what its title says: not valid JSON.
    assert (
        b64url_decode(example["signing"]["protected_b64u"])
        == b'{"alg":"HS256","b64":,"crit":["b64"]}'
    )


def test_cookbook_json_only_draft_header_without_crit_is_refused(vectors_dir: Path) -> None:
    example = load(vectors_dir, "4.2.hmac-sha2_b64_false.json")
    key = JWK.from_dict(example["input"]["key"])
    flat = example["output"]["json_flat"]
    assert json.loads(b64url_decode(flat["protected"])) == {"alg": "HS256", "b64": False}
    detached = f"{flat['protected']}..{flat['signature']}"
    with pytest.raises(MalformedToken):
        jws.verify(detached, key, ["HS256"], detached_payload=flat["payload"].encode())


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ({"b64": False}, "b64 without crit"),
        ({"b64": False, "crit": []}, "empty crit"),
        ({"b64": False, "crit": "b64"}, "crit not an array"),
        ({"b64": "false", "crit": ["b64"]}, "b64 not a boolean"),
        ({"b64": 0, "crit": ["b64"]}, "b64 not a boolean"),
        ({"crit": ["b64"]}, "crit names an absent member"),
        ({"b64": False, "crit": ["b64", "b64"]}, "crit repeats a name"),
    ],
)
def test_malformed_b64_headers_are_refused(header: dict[str, Any], why: str) -> None:
    with pytest.raises(MalformedToken):
        jws.sign(b"payload", KEY, "HS256", header)


def test_b64_true_with_crit_is_an_ordinary_jws() -> None:
    token = jws.sign(b"payload", KEY, "HS256", {"b64": True, "crit": ["b64"]})
    assert jws.verify(token, KEY, ["HS256"]).payload == b"payload"


def test_jwt_refuses_b64_in_either_direction(vectors_dir: Path) -> None:
    """RFC 7797 §7: a JWT payload is always base64url-encoded."""
    with pytest.raises(MalformedToken):
        jwt.encode({"sub": "x"}, KEY, "HS256", UNENCODED)
    compact = load(vectors_dir, "hmac-sha2_b64_false.json")["output"]["compact"]
    with pytest.raises(MalformedToken):
        jwt.decode(compact, KEY, algorithms=["HS256"])
