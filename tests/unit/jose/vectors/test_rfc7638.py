"""JWK thumbprints against RFC 7638 §3.1 (and RFC 8037 A.3 for an OKP key).

RFC 7638 §3: the thumbprint hashes the required members only, in lexicographic order, with no
whitespace; optional members (kid, alg, use) and private members never change it.
"""

from __future__ import annotations

import hashlib
import json

from authgate.jose import JWK
from tests.support.tokens import b64url_bytes

# RFC 7638 §3.1: the example RSA key (RFC 7517 A.1's second key) and its thumbprint.
RSA_KEY = {
    "kty": "RSA",
    "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1"
        "L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4"
        "QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbO"
        "pbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csF"
        "Cur-kEgU8awapJzKnqDKgw"
    ),
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RSA_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
# RFC 7638 §3.1: the first octets of the SHA-256 hash, as printed in the RFC.
RSA_HASH_PREFIX = bytes([55, 54, 203, 177, 120, 124, 184, 48, 156, 119, 238, 140, 55, 5, 197, 225])

# RFC 8037 A.2 / A.3: the Ed25519 public key and its thumbprint.
OKP_KEY = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
OKP_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_rfc7638_rsa_example() -> None:
    key = JWK.from_dict(RSA_KEY)
    assert key.thumbprint() == RSA_THUMBPRINT
    canonical = json.dumps(
        {"e": RSA_KEY["e"], "kty": "RSA", "n": RSA_KEY["n"]}, separators=(",", ":")
    ).encode()
    assert hashlib.sha256(canonical).digest()[:16] == RSA_HASH_PREFIX
    assert b64url_bytes(hashlib.sha256(canonical).digest()).decode() == RSA_THUMBPRINT


def test_rfc8037_okp_example() -> None:
    assert JWK.from_dict(OKP_KEY).thumbprint() == OKP_THUMBPRINT


def test_optional_and_private_members_do_not_change_the_thumbprint() -> None:
    bare = {name: RSA_KEY[name] for name in ("kty", "n", "e")}
    assert JWK.from_dict(bare).thumbprint() == RSA_THUMBPRINT
    assert JWK.from_dict(dict(bare, use="sig", kid="other")).thumbprint() == RSA_THUMBPRINT
    private = JWK.generate("EC", crv="P-384")
    assert private.thumbprint() == private.public().thumbprint()


def test_generated_keys_use_their_thumbprint_as_kid() -> None:
    for kty, options in (("RSA", {}), ("EC", {"crv": "P-256"}), ("OKP", {"crv": "Ed448"})):
        key = JWK.generate(kty, **options)
        assert key.kid == key.thumbprint()
    assert JWK.generate("oct", kid="mine").kid == "mine"


def test_oct_thumbprint_covers_the_secret() -> None:
    """RFC 7638 §3.2: for "oct" the required member is "k"."""
    a = JWK.from_secret(b"a" * 32)
    b = JWK.from_secret(b"b" * 32)
    assert a.thumbprint() != b.thumbprint()
    expected = hashlib.sha256(
        ('{"k":"' + b64url_bytes(b"a" * 32).decode() + '","kty":"oct"}').encode()
    ).digest()
    assert a.thumbprint() == b64url_bytes(expected).decode()
