"""`client_assertion`'s pure parts: the unverified `sub` lookup and the assertion algorithms."""

from __future__ import annotations

import base64

import pytest

from authgate.jose import JWK, JWKSet, jwt
from authgate.server.client_assertion import unverified_subject

KEY = JWK.generate("EC", alg="ES256", kid="k1")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _assertion(payload: bytes, header: bytes = b'{"alg":"ES256"}') -> str:
    return f"{_b64(header)}.{_b64(payload)}.c2ln"


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
        _b64(b'{"sub":"client-2"}') + "=",
        _b64(b'{"sub":"client-2"}')[:4] + "!" + _b64(b'{"sub":"client-2"}')[4:],
        _b64(b'{"sub":"client-1","sub":"client-2"}'),
    ],
)
def test_unverified_subject_decodes_as_strictly_as_verification(payload_segment: str) -> None:
    assertion = _b64(b'{"alg":"ES256"}') + f".{payload_segment}.c2ln"
    assert unverified_subject(assertion) is None


def test_a_well_formed_assertion_still_names_its_client() -> None:
    keys = JWKSet([KEY.public()])
    token = jwt.encode({"sub": "client-1", "iss": "client-1"}, KEY, "ES256")
    assert unverified_subject(token) == jwt.decode(token, keys, algorithms=["ES256"])["sub"]
