"""`clients.assertions`'s pure parts: the unverified `sub` lookup and the assertion algorithms."""

from __future__ import annotations

import pytest

from authgate.jose import JWK, JWKSet, jwt
from authgate.server.clients.assertions import (
    ASSERTION_ALGORITHMS,
    allowed_algorithms,
    unverified_subject,
)
from tests.support.tokens import b64url

KEY = JWK.generate("EC", alg="ES256", kid="k1")


def _assertion(payload: bytes, header: bytes = b'{"alg":"ES256"}') -> str:
    return f"{b64url(header)}.{b64url(payload)}.c2ln"


def test_unverified_subject_reads_sub_before_verification() -> None:
    assert unverified_subject(jwt.encode({"sub": "client-1"}, KEY, "ES256")) == "client-1"
    assert unverified_subject(_assertion(b'{"sub":"client-1"}')) == "client-1"  # unsigned: fine
    assert unverified_subject(_assertion(b'{"sub":7}')) is None
    assert unverified_subject(_assertion(b"{}")) is None


@pytest.mark.parametrize(
    "assertion",
    [
        "",
        "abc",
        _assertion(b'{"sub":"client-1"}') + ".x",
        _assertion(b'{"sub":"client-1"}', header=b"[]"),
        _assertion(b'{"sub":"client-1"}').replace(".", "!.", 1),
        _assertion(b'{"sub":"x' + b"a" * 9000 + b'"}'),  # over the 8 KiB assertion limit
    ],
)
def test_unverified_subject_of_a_malformed_assertion_is_none(assertion: str) -> None:
    assert unverified_subject(assertion) is None


@pytest.mark.parametrize(
    "payload_segment",
    [
        # What the lenient `urlsafe_b64decode` + `json.loads` read as client-2, and jwt.decode
        # refuses: padding, characters outside the alphabet, a duplicate `sub` (last one won).
        b64url(b'{"sub":"client-2"}') + "=",
        b64url(b'{"sub":"client-2"}')[:4] + "!" + b64url(b'{"sub":"client-2"}')[4:],
        b64url(b'{"sub":"client-1","sub":"client-2"}'),
    ],
)
def test_unverified_subject_decodes_as_strictly_as_verification(payload_segment: str) -> None:
    assertion = b64url(b'{"alg":"ES256"}') + f".{payload_segment}.c2ln"
    assert unverified_subject(assertion) is None


def test_a_well_formed_assertion_still_names_its_client() -> None:
    keys = JWKSet([KEY.public()])
    token = jwt.encode({"sub": "client-1", "iss": "client-1"}, KEY, "ES256")
    assert unverified_subject(token) == jwt.decode(token, keys, algorithms=["ES256"])["sub"]


def test_assertion_algorithms_are_the_signing_ones_of_the_offered_families() -> None:
    # Advertised as token_endpoint_auth_signing_alg_values_supported: no HMAC, no ES256K.
    assert ASSERTION_ALGORITHMS == (
        "RS256",
        "RS384",
        "RS512",
        "PS256",
        "PS384",
        "PS512",
        "ES256",
        "ES384",
        "ES512",
        "EdDSA",
        "Ed25519",
        "Ed448",
    )


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (JWK.generate("RSA"), ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]),
        (JWK.generate("RSA", alg="PS384"), ["PS384"]),
        (JWK.generate("EC", crv="P-384"), ["ES384"]),
        (JWK.generate("EC", crv="P-521"), ["ES512"]),
        (JWK.generate("OKP", crv="Ed25519"), ["EdDSA", "Ed25519"]),
        (JWK.generate("OKP", crv="Ed448"), ["EdDSA", "Ed448"]),
        (JWK.generate("OKP", crv="Ed448", alg="Ed448"), ["Ed448"]),
        (JWK.generate("EC", crv="secp256k1"), []),
        (JWK.generate("EC", crv="secp256k1", alg="ES256K"), []),
        (JWK.generate("OKP", crv="X25519"), []),
        (JWK.generate("EC", crv="P-256", use="enc"), []),
        (JWK.generate("oct", size=512), []),
        (JWK.generate("oct", alg="HS256"), []),
    ],
)
def test_allowed_algorithms_per_key(key: JWK, expected: list[str]) -> None:
    assert allowed_algorithms(JWKSet([key.public() if key.kty != "oct" else key])) == expected


def test_allowed_algorithms_of_a_set_keep_order_without_repeats() -> None:
    keys = JWKSet([JWK.generate("OKP", crv="Ed25519").public(), KEY.public()])
    keys = JWKSet([*keys, JWK.generate("OKP", crv="Ed448").public()])
    assert allowed_algorithms(keys) == ["EdDSA", "Ed25519", "ES256", "Ed448"]
