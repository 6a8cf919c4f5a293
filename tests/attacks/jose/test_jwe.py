"""Hostile JWE input: every rejection is a precise `JoseError`, decided before any cryptography
where it can be, and decryption failures are indistinguishable from one another (no oracle)."""

from __future__ import annotations

import hashlib
import hmac
import os
from functools import cache
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from authgate.jose import (
    JWK,
    AlgorithmNotAllowed,
    DecryptionFailed,
    InvalidKey,
    JoseError,
    MalformedToken,
    jwe,
    jws,
)
from authgate.jose._algorithms import JWE_CONTENT_ALGORITHMS, JWE_KEY_ALGORITHMS
from authgate.jose._content_encryption import CONTENT_CIPHERS
from authgate.jose._key_management import ecdh_shared_secret, unwrap, wrap
from authgate.jose.encoding import b64url_decode
from tests.support.tokens import b64url, b64url_bytes, compact_json

ALL_ALGS = sorted(JWE_KEY_ALGORITHMS)
ALL_ENCS = sorted(JWE_CONTENT_ALGORITHMS)
KEY = JWK.from_secret(bytes(range(16)), kid="k")


@cache
def rsa_key() -> JWK:
    return JWK.generate("RSA")


@cache
def x25519_key() -> JWK:
    return JWK.generate("OKP", crv="X25519")


def _seal(header: bytes | dict[str, Any], key: JWK, plaintext: bytes = b"x") -> str:
    """An authentic token with exactly this protected header, bypassing `encrypt`'s own checks."""
    params = header if isinstance(header, dict) else {}
    alg, enc = params.get("alg", "A128KW"), params.get("enc", "A128GCM")
    wrapped = wrap(alg, enc, key, params)
    raw = compact_json({**params, **wrapped.header}) if isinstance(header, dict) else header
    cipher = CONTENT_CIPHERS[enc]
    iv = os.urandom(cipher.iv_size)
    ciphertext, tag = cipher.encrypt(wrapped.cek, iv, plaintext, b64url_bytes(raw))
    return ".".join(map(b64url, (raw, wrapped.encrypted_key, iv, ciphertext, tag)))


def _decrypt(token: str | bytes, key: JWK = KEY, **kwargs: Any) -> jwe.DecryptedJWE:
    return jwe.decrypt(token, key, algorithms=ALL_ALGS, encryptions=ALL_ENCS, **kwargs)


def test_seal_helper_makes_authentic_tokens() -> None:
    token = _seal({"alg": "A128KW", "enc": "A128GCM", "x-custom": 1}, KEY)
    assert _decrypt(token).header["x-custom"] == 1


# -- allow-lists -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithms", "encryptions"),
    [
        ([], ["A128GCM"]),
        (["A128KW"], []),
        ("A128KW", ["A128GCM"]),
        (["A128KW"], "A128GCM"),
        (["HS256"], ["A128GCM"]),
        (["none"], ["A128GCM"]),
        (["RSA1_5"], ["A128GCM"]),
        (["PBES2-HS256+A128KW"], ["A128GCM"]),
        (["A128KW"], ["A128CBC+HS256"]),
        (["A128KW"], ["A128KW"]),
    ],
)
def test_allow_lists_are_explicit_non_empty_and_known(algorithms: Any, encryptions: Any) -> None:
    token = jwe.encrypt(b"x", KEY, "A128KW", "A128GCM")
    with pytest.raises(AlgorithmNotAllowed):
        jwe.decrypt(token, KEY, algorithms=algorithms, encryptions=encryptions)


def test_disallowed_alg_or_enc_is_refused_before_any_decoding_or_crypto() -> None:
    garbage = "!!!.%%%.***.~~~"  # no segment after the header is even base64url
    header = b64url(compact_json({"alg": "RSA-OAEP", "enc": "A128GCM"}))
    with pytest.raises(AlgorithmNotAllowed, match="RSA-OAEP"):
        jwe.decrypt(f"{header}.{garbage}", KEY, algorithms=["A128KW"], encryptions=["A128GCM"])
    header = b64url(compact_json({"alg": "A128KW", "enc": "A256GCM"}))
    with pytest.raises(AlgorithmNotAllowed, match="A256GCM"):
        jwe.decrypt(f"{header}.{garbage}", KEY, algorithms=["A128KW"], encryptions=["A128GCM"])


@pytest.mark.parametrize(
    ("alg", "match"),
    [
        ("RSA1_5", "RSA1_5"),
        ("PBES2-HS256+A128KW", "PBES2"),
        ("PBES2-HS512+A256KW", "PBES2"),
        ("HS256", "unsupported"),
        ("none", "unsupported"),
        ("ECDH-1PU", "unsupported"),
    ],
)
def test_unsupported_algorithms_are_named(alg: str, match: str) -> None:
    header = b64url(compact_json({"alg": alg, "enc": "A128GCM", "p2c": 2**31, "p2s": "AAAA"}))
    with pytest.raises(AlgorithmNotAllowed, match=match):
        _decrypt(f"{header}.AAAA.AAAA.AAAA.AAAA")


def test_refusals_do_not_echo_unbounded_input() -> None:
    header = b64url(compact_json({"alg": "A" * 5000, "enc": "A128GCM"}))
    with pytest.raises(AlgorithmNotAllowed) as info:
        _decrypt(f"{header}....")
    assert len(str(info.value)) < 200


# -- compression and PBES2 are absent --------------------------------------------------------------


def test_authentic_compressed_token_is_refused() -> None:
    token = _seal({"alg": "A128KW", "enc": "A128GCM", "zip": "DEF"}, KEY, b"\x03\x00")
    with pytest.raises(AlgorithmNotAllowed, match="zip"):
        _decrypt(token)


def test_zip_is_refused_before_any_crypto() -> None:
    header = b64url(compact_json({"alg": "A128KW", "enc": "A128GCM", "zip": "DEF"}))
    with pytest.raises(AlgorithmNotAllowed, match="zip"):
        _decrypt(f"{header}.!.!.!.!")


# -- serialization ---------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 3, 4, 6, 7])
def test_wrong_segment_count(count: int) -> None:
    token = jwe.encrypt(b"x", KEY, "A128KW", "A128GCM")
    parts = token.split(".")
    forged = ".".join((parts * 2)[:count])
    with pytest.raises(MalformedToken):
        _decrypt(forged)


def test_json_serialization_is_refused() -> None:
    with pytest.raises(MalformedToken, match="compact"):
        _decrypt('{"protected":"eyJ9","ciphertext":"","iv":"","tag":""}')


@pytest.mark.parametrize(
    "token",
    [
        "",
        "....",
        "é.a.b.c.d",
        "a b.c.d.e.f",
        b"\xff\xfe.a.b.c.d",
    ],
)
def test_garbage(token: str | bytes) -> None:
    with pytest.raises(MalformedToken):
        _decrypt(token)


@pytest.mark.parametrize("token", [None, 12, ["a.b.c.d.e"], {"a": 1}])
def test_not_a_token(token: Any) -> None:
    with pytest.raises(MalformedToken):
        _decrypt(token)


@pytest.mark.parametrize("segment", [1, 2, 3, 4])
@pytest.mark.parametrize("bad", ["=", "+", "/", " ", "\n", "*"])
def test_strict_base64url_in_every_segment(segment: int, bad: str) -> None:
    parts = jwe.encrypt(b"x", KEY, "A128KW", "A128GCM").split(".")
    parts[segment] += bad
    with pytest.raises(MalformedToken):
        _decrypt(".".join(parts))


ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_non_canonical_trailing_bits_are_refused() -> None:
    """A 16-byte tag is 22 characters; the last one's 4 low bits are unused and must be zero."""
    parts = jwe.encrypt(b"x", KEY, "A128KW", "A128GCM").split(".")
    tag = parts[4]
    parts[4] = tag[:-1] + ALPHABET[ALPHABET.index(tag[-1]) | 1]
    with pytest.raises(MalformedToken):
        _decrypt(".".join(parts))


def test_size_cap_comes_first() -> None:
    with pytest.raises(MalformedToken, match="exceeds"):
        _decrypt("A" * (jws.MAX_TOKEN_SIZE + 1))
    big = jwe.encrypt(os.urandom(70_000), KEY, "A128KW", "A128GCM")
    with pytest.raises(MalformedToken, match="exceeds"):
        _decrypt(big)
    assert len(_decrypt(big, max_size=200_000).plaintext) == 70_000
    small = jwe.encrypt(b"x", KEY, "A128KW", "A128GCM")
    with pytest.raises(MalformedToken, match="exceeds"):
        _decrypt(small, max_size=len(small) - 1)


# -- header ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"[]",
        b'"A128KW"',
        b"1",
        b"null",
        b"not json",
        b'{"alg":"A128KW","enc":"A128GCM"',
        b'{"alg":"A128KW","enc":"A128GCM"}x',
        b"\xff\xfe",
        b'{"alg":"A128KW","enc":"A128GCM","n":NaN}',
        b'{"alg":"A128KW","alg":"A128KW","enc":"A128GCM"}',
        b'{"alg":"A128KW","enc":"A128GCM","enc":"A256GCM"}',
        b'{"alg":"A128KW","enc":"A128GCM","kid":"a","kid":"b"}',
    ],
)
def test_malformed_header_even_when_authentic(raw: bytes) -> None:
    with pytest.raises(MalformedToken):
        _decrypt(_seal(raw, KEY))


@pytest.mark.parametrize(
    "header",
    [
        {"enc": "A128GCM"},
        {"alg": "A128KW"},
        {"alg": 1, "enc": "A128GCM"},
        {"alg": None, "enc": "A128GCM"},
        {"alg": ["A128KW"], "enc": "A128GCM"},
        {"alg": "A128KW", "enc": {"v": "A128GCM"}},
        {"alg": "A128KW", "enc": "A128GCM", "kid": 7},
        {"alg": "A128KW", "enc": "A128GCM", "typ": ["JWT"]},
        {"alg": "A128KW", "enc": "A128GCM", "cty": None},
    ],
)
def test_header_member_types(header: dict[str, Any]) -> None:
    with pytest.raises(MalformedToken):
        _decrypt(b64url(compact_json(header)) + ".AAAA.AAAA.AAAA.AAAA")


@pytest.mark.parametrize(
    "extra",
    [
        {"crit": ["exp"], "exp": 1},
        {"crit": ["b64"], "b64": False},
        {"crit": ["alg"]},
        {"crit": []},
        {"crit": "exp", "exp": 1},
        {"crit": ["missing"]},
    ],
)
def test_crit_is_always_refused(extra: dict[str, Any]) -> None:
    token = _seal({"alg": "A128KW", "enc": "A128GCM", **extra}, KEY)
    with pytest.raises(MalformedToken, match="crit"):
        _decrypt(token)


def test_header_keys_and_urls_are_ignored() -> None:
    attacker = JWK.from_secret(os.urandom(16))
    header = {
        "alg": "A128KW",
        "enc": "A128GCM",
        "jwk": {"kty": "oct", "k": b64url(attacker._secret or b"")},
        "jku": "https://attacker.invalid/jwks",
        "x5u": "https://attacker.invalid/cert",
    }
    with pytest.raises(DecryptionFailed):
        _decrypt(_seal(header, attacker))
    assert _decrypt(_seal(header, KEY)).plaintext == b"x"


def test_protected_header_is_authenticated() -> None:
    token = jwe.encrypt(b"x", KEY, "A128KW", "A128GCM", {"typ": "a"})
    parts = token.split(".")
    parts[0] = b64url(compact_json({"alg": "A128KW", "kid": "k", "typ": "b", "enc": "A128GCM"}))
    with pytest.raises(DecryptionFailed):
        _decrypt(".".join(parts))


# -- key management specifics ----------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["dir", "ECDH-ES"])
def test_encrypted_key_must_be_empty_for_direct_algorithms(alg: str) -> None:
    key = KEY if alg == "dir" else x25519_key()
    parts = jwe.encrypt(b"x", key if alg == "dir" else key.public(), alg, "A128GCM").split(".")
    parts[1] = "AAAAAAAAAAAAAAAAAAAAAA"
    with pytest.raises(MalformedToken, match="encrypted key must be empty"):
        _decrypt(".".join(parts), key)


@pytest.mark.parametrize(
    "change",
    [
        {"iv": None},
        {"tag": None},
        {"iv": 12},
        {"tag": ["x"]},
        {"iv": "AAAA="},
    ],
)
def test_gcm_key_wrap_needs_iv_and_tag(change: dict[str, Any]) -> None:
    key = JWK.from_secret(bytes(range(16)))
    token = jwe.encrypt(b"x", key, "A128GCMKW", "A128GCM")
    wrapped_header = _decrypt(token, key).header
    header = {k: v for k, v in {**wrapped_header, **change}.items() if v is not None}
    forged = ".".join([b64url(compact_json(header)), *token.split(".")[1:]])
    with pytest.raises(MalformedToken):
        _decrypt(forged, key)


@pytest.mark.parametrize("member", ["iv", "tag"])
def test_gcm_key_wrap_iv_and_tag_are_sized(member: str) -> None:
    key = JWK.from_secret(bytes(range(16)))
    token = jwe.encrypt(b"x", key, "A128GCMKW", "A128GCM")
    header = dict(_decrypt(token, key).header)
    header[member] = b64url(os.urandom(8))
    forged = ".".join([b64url(compact_json(header)), *token.split(".")[1:]])
    with pytest.raises(DecryptionFailed):
        _decrypt(forged, key)


def _ecdh_token_with(epk: Any) -> str:
    header = {"alg": "ECDH-ES", "enc": "A128GCM"}
    if epk is not ...:
        header["epk"] = epk
    return b64url(compact_json(header)) + "..AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA"


@pytest.mark.parametrize("epk", [..., None, "key", [1], 7])
def test_epk_must_be_an_object(epk: Any) -> None:
    with pytest.raises(MalformedToken, match="epk"):
        _decrypt(_ecdh_token_with(epk), x25519_key())


P256_POINT = {
    "kty": "EC",
    "crv": "P-256",
    "x": "gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0",
    "y": "SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps",
}
BAD_EPKS = {
    "another curve": {**P256_POINT, "crv": "P-384"},
    "another key type": {"kty": "OKP", "crv": "X25519", "x": b64url(bytes(range(32)))},
    "an RSA key": {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
    "a private key": {**P256_POINT, "d": "0_NxaRPUMQoAJt50Gz8YiTr8gRTwyEaCumd-MToTmIo"},
    "a point off the curve": {**P256_POINT, "y": P256_POINT["x"]},
    "the point at zero": {**P256_POINT, "x": b64url(bytes(32)), "y": b64url(bytes(32))},
    "a short coordinate": {**P256_POINT, "x": b64url(bytes(31))},
    "a coordinate that is not base64url": {**P256_POINT, "x": "!!"},
    "no coordinates": {"kty": "EC", "crv": "P-256"},
}


@pytest.mark.parametrize("name", sorted(BAD_EPKS))
def test_bad_epk_is_a_decryption_failure(name: str) -> None:
    recipient = JWK.generate("EC", crv="P-256")
    with pytest.raises(DecryptionFailed):
        ecdh_shared_secret(recipient, BAD_EPKS[name])
    with pytest.raises(DecryptionFailed):
        _decrypt(_ecdh_token_with(BAD_EPKS[name]), recipient)


# Low-order points of Curve25519 and Curve448 (RFC 7748 §6, the Wycheproof ZeroSharedSecret cases).
LOW_ORDER = {
    "X25519": [
        bytes(32),
        (1).to_bytes(32, "little"),
        bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    ],
    "X448": [bytes(56), (1).to_bytes(56, "little")],
}


@pytest.mark.parametrize(("crv", "index"), [("X25519", 0), ("X25519", 1), ("X25519", 2),
                                            ("X448", 0), ("X448", 1)])  # fmt: skip
def test_low_order_points_are_refused(crv: str, index: int) -> None:
    recipient = JWK.generate("OKP", crv=crv)
    epk = {"kty": "OKP", "crv": crv, "x": b64url(LOW_ORDER[crv][index])}
    with pytest.raises(DecryptionFailed):
        ecdh_shared_secret(recipient, epk)
    with pytest.raises(DecryptionFailed):
        _decrypt(_ecdh_token_with(epk), recipient)


def test_oversized_party_info_is_refused() -> None:
    header = {"alg": "ECDH-ES", "enc": "A128GCM", "epk": P256_POINT, "apu": b64url(bytes(513))}
    with pytest.raises(MalformedToken, match="apu"):
        _decrypt(b64url(compact_json(header)) + "..AAAA.AAAA.AAAA", JWK.generate("EC", crv="P-256"))


# -- algorithm confusion ---------------------------------------------------------------------------


def test_jws_alg_in_a_jwe_is_refused() -> None:
    header = b64url(compact_json({"alg": "HS256", "enc": "A128GCM"}))
    with pytest.raises(AlgorithmNotAllowed):
        _decrypt(f"{header}.AAAA.AAAA.AAAA.AAAA")


def test_an_hmac_key_cannot_decrypt() -> None:
    hs_key = JWK.from_secret(bytes(range(32)), alg="HS256")
    token = jwe.encrypt(b"x", JWK.from_secret(bytes(range(32))), "dir", "A128CBC-HS256")
    with pytest.raises(InvalidKey):
        jwe.decrypt(token, hs_key, algorithms=["dir"], encryptions=["A128CBC-HS256"])


def test_an_rsa_key_cannot_serve_symmetric_algorithms() -> None:
    token = jwe.encrypt(b"x", JWK.from_secret(bytes(range(16))), "A128KW", "A128GCM")
    with pytest.raises(InvalidKey):
        _decrypt(token, rsa_key())
    token = jwe.encrypt(b"x", JWK.from_secret(bytes(range(16))), "dir", "A128GCM")
    with pytest.raises(InvalidKey):
        _decrypt(token, rsa_key())


def test_a_jws_is_not_a_jwe_and_back() -> None:
    signed = jws.sign(b"x", JWK.from_secret(bytes(range(32))), "HS256")
    with pytest.raises(MalformedToken):
        _decrypt(signed)
    encrypted = jwe.encrypt(b"x", KEY, "A128KW", "A128GCM")
    with pytest.raises(JoseError):
        jws.verify(encrypted, JWK.from_secret(bytes(range(32))), ["HS256"])


# -- no oracle -------------------------------------------------------------------------------------


def _flip(token: str, segment: int, position: int = 0) -> str:
    parts = token.split(".")
    raw = bytearray(b64url_decode(parts[segment]))
    raw[position] ^= 0x01
    parts[segment] = b64url(bytes(raw))
    return ".".join(parts)


def _cbc_token(key: bytes, padded_plaintext: bytes) -> str:
    """dir + A128CBC-HS256 built by hand (RFC 7518 §5.2.2.1) around any padded plaintext."""
    header = b64url_bytes(compact_json({"alg": "dir", "enc": "A128CBC-HS256"}))
    iv = os.urandom(16)
    encryptor = Cipher(algorithms.AES(key[16:]), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded_plaintext) + encryptor.finalize()
    al = (len(header) * 8).to_bytes(8, "big")
    tag = hmac.new(key[:16], header + iv + ciphertext + al, hashlib.sha256).digest()[:16]
    return ".".join([header.decode(), "", b64url(iv), b64url(ciphertext), b64url(tag)])


def test_hand_built_cbc_token_is_right() -> None:
    """The control for the padding case below: with valid padding, the same construction opens."""
    key = bytes(range(32))
    token = _cbc_token(key, b"sixteen bytes ok" + bytes([16] * 16))
    assert _decrypt(token, JWK.from_secret(key)).plaintext == b"sixteen bytes ok"


def test_every_decryption_failure_looks_the_same() -> None:
    rsa = rsa_key()
    kw_key = JWK.from_secret(bytes(range(16)))
    gcmkw_key = JWK.from_secret(bytes(range(32)))
    cbc_key = JWK.from_secret(bytes(range(32)))
    p256 = JWK.generate("EC", crv="P-256")
    failures: list[tuple[str, JWK]] = [
        (_flip(jwe.encrypt(b"x", kw_key, "A128KW", "A128GCM"), 4), kw_key),  # tag
        (_flip(jwe.encrypt(b"x", kw_key, "A128KW", "A128GCM"), 1), kw_key),  # key unwrap
        (_flip(jwe.encrypt(b"x", rsa.public(), "RSA-OAEP", "A128GCM"), 1, 5), rsa),  # OAEP
        (_flip(jwe.encrypt(b"x", rsa.public(), "RSA-OAEP-256", "A128GCM"), 1, 0), rsa),  # OAEP
        (_flip(jwe.encrypt(b"x", gcmkw_key, "A256GCMKW", "A128GCM"), 1), gcmkw_key),  # GCM unwrap
        (_flip(jwe.encrypt(b"x", cbc_key, "dir", "A128CBC-HS256"), 3), cbc_key),  # CBC MAC
        # a right MAC over a plaintext whose last byte (0x67) is not PKCS #7 padding
        (_cbc_token(cbc_key._secret or b"", b"no valid padding"), cbc_key),
        (_ecdh_token_with(BAD_EPKS["a point off the curve"]), p256),  # invalid curve
        (_ecdh_token_with(BAD_EPKS["another curve"]), p256),
        (_flip(jwe.encrypt(b"x", p256.public(), "ECDH-ES", "A128GCM"), 3), p256),  # ciphertext
    ]
    seen = set()
    for token, key in failures:
        with pytest.raises(DecryptionFailed) as info:
            _decrypt(token, key)
        seen.add((type(info.value), str(info.value), info.value.code, info.value.args))
    assert len(seen) == 1, seen


def test_only_jose_errors_escape() -> None:
    keys = [KEY, rsa_key(), x25519_key(), JWK.generate("EC", crv="P-521")]
    valid = jwe.encrypt(b"x", KEY, "A128KW", "A128GCM")
    hostile = [
        valid.replace(".", ".."),
        valid[:-1],
        valid + "A",
        b64url(compact_json({"alg": "A128KW", "enc": "A128GCM"})) + "." * 4,
        b64url(compact_json({"alg": "RSA-OAEP", "enc": "A128GCM"})) + ".AA.AA.AA.AA",
        b64url(compact_json({"alg": "RSA-OAEP", "enc": "A128GCM"})) + "." + "A" * 2000 + ".A.A.A",
        b64url(compact_json({"alg": "ECDH-ES+A128KW", "enc": "A128GCM", "epk": {}}))
        + ".AA.AA.AA.AA",
        b64url(compact_json({"alg": "A128GCMKW", "enc": "A128GCM", "iv": "", "tag": ""}))
        + ".AA.AA.AA.AA",
        b64url(compact_json({"alg": "dir", "enc": "A128CBC-HS256"})) + "..AAAA.AAAA.AAAA",
        b64url(compact_json({"alg": "A128KW", "enc": "A128CBC-HS256"})) + "." + "A" * 43 + "..A.",
    ]
    for token in hostile:
        for key in keys:
            with pytest.raises(JoseError):
                _decrypt(token, key)


def test_key_management_itself_refuses_unknown_algorithms() -> None:
    """Defence in depth: the internal layer never falls through to some other algorithm."""
    for alg in ("RSA1_5", "PBES2-HS256+A128KW", "A128GCM"):
        with pytest.raises(AlgorithmNotAllowed):
            wrap(alg, "A128GCM", KEY, {})
        with pytest.raises(AlgorithmNotAllowed):
            unwrap(alg, "A128GCM", KEY, {}, b"")
