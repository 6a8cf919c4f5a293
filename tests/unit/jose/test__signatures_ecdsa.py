"""The R || S form of an ECDSA signature (RFC 7518 §3.4) read from OpenSSL's DER: the short-form
reader and `decode_dss_signature` agree on every curve, R and S of every length included."""

from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from authgate.jose._signatures import _raw_signature


@pytest.mark.parametrize(("bits", "size"), [(256, 32), (384, 48), (521, 66)])
def test_the_raw_form_matches_the_integers(bits: int, size: int) -> None:
    rng = random.Random(bits)
    edge = [1, 127, 128, 255, 256, 2 ** (bits - 1), 2**bits - 1, 2 ** (bits - 8) - 1]
    values = edge + [rng.getrandbits(rng.randint(1, bits)) or 1 for _ in range(400)]
    for r in values:
        s = rng.choice(values)
        expected = r.to_bytes(size, "big") + s.to_bytes(size, "big")
        assert _raw_signature(encode_dss_signature(r, s), size) == expected


def test_a_malformed_encoding_is_refused() -> None:
    der = encode_dss_signature(5, 7)
    for bad in (der[:-1], der + b"\0", b"\x31" + der[1:], der[:2] + b"\x03" + der[3:]):
        with pytest.raises(ValueError):
            _raw_signature(bad, 32)
