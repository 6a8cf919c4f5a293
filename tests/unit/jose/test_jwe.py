"""`jwe.encrypt` and `jwe.decrypt`: every algorithm pair, headers, key binding and key selection."""

from __future__ import annotations

from functools import cache

import pytest

from authgate.jose import (
    JWK,
    AlgorithmNotAllowed,
    DecryptionFailed,
    InvalidKey,
    JWKSet,
    KeyNotFound,
    MalformedToken,
    jwe,
)
from authgate.jose._algorithms import JWE_CONTENT_ALGORITHMS, JWE_KEY_ALGORITHMS
from authgate.jose._key_management import OPERATIONS
from authgate.jose.encoding import b64url_decode
from tests.support.tokens import header_of

ENCS = sorted(JWE_CONTENT_ALGORITHMS)
ECDH_ALGS = ["ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A192KW", "ECDH-ES+A256KW"]
CURVES = [("EC", "P-256"), ("EC", "P-384"), ("EC", "P-521"), ("OKP", "X25519"), ("OKP", "X448")]
SECRET_ALGS = {
    "A128KW": 16,
    "A192KW": 24,
    "A256KW": 32,
    "A128GCMKW": 16,
    "A192GCMKW": 24,
    "A256GCMKW": 32,
}


@cache
def rsa_key() -> JWK:
    return JWK.generate("RSA", size=2048)


@cache
def curve_key(kty: str, crv: str) -> JWK:
    return JWK.generate(kty, crv=crv)


def _roundtrip(recipient: JWK, sender: JWK, alg: str, enc: str) -> None:
    plaintext = f"{alg} {enc} \u2013 payload".encode()
    token = jwe.encrypt(plaintext, sender, alg, enc)
    result = jwe.decrypt(token, recipient, algorithms=[alg], encryptions=[enc])
    assert result.plaintext == plaintext
    assert result.header["alg"] == alg
    assert result.header["enc"] == enc
    assert result.header == header_of(token)


# -- every pair ------------------------------------------------------------------------------------


@pytest.mark.parametrize("enc", ENCS)
@pytest.mark.parametrize("alg", ["RSA-OAEP", "RSA-OAEP-256"])
def test_rsa_oaep(alg: str, enc: str) -> None:
    _roundtrip(rsa_key(), rsa_key().public(), alg, enc)


@pytest.mark.parametrize("enc", ENCS)
@pytest.mark.parametrize("alg", sorted(SECRET_ALGS))
def test_aes_key_wrap(alg: str, enc: str) -> None:
    key = JWK.generate("oct", size=SECRET_ALGS[alg] * 8)
    _roundtrip(key, key, alg, enc)


@pytest.mark.parametrize("enc", ENCS)
def test_dir(enc: str) -> None:
    key = JWK.generate("oct", size=JWE_CONTENT_ALGORITHMS[enc] * 8)
    _roundtrip(key, key, "dir", enc)
    assert jwe.encrypt(b"x", key, "dir", enc).split(".")[1] == ""


@pytest.mark.parametrize("enc", ENCS)
@pytest.mark.parametrize("alg", ECDH_ALGS)
@pytest.mark.parametrize(("kty", "crv"), CURVES)
def test_ecdh_es(kty: str, crv: str, alg: str, enc: str) -> None:
    key = curve_key(kty, crv)
    _roundtrip(key, key.public(), alg, enc)


@pytest.mark.parametrize(("kty", "crv"), CURVES)
def test_ecdh_es_header_carries_only_a_public_epk(kty: str, crv: str) -> None:
    token = jwe.encrypt(b"x", curve_key(kty, crv).public(), "ECDH-ES", "A256GCM")
    epk = header_of(token)["epk"]
    assert isinstance(epk, dict)
    assert set(epk) == ({"kty", "crv", "x", "y"} if kty == "EC" else {"kty", "crv", "x"})
    assert (epk["kty"], epk["crv"]) == (kty, crv)
    assert token.split(".")[1] == ""  # direct key agreement: no encrypted key


def test_ecdh_es_party_info_is_bound_into_the_key() -> None:
    key = curve_key("EC", "P-256")
    token = jwe.encrypt(b"x", key.public(), "ECDH-ES", "A128GCM", {"apu": "QWxpY2U", "apv": "Qm9i"})
    header = header_of(token)
    assert (header["apu"], header["apv"]) == ("QWxpY2U", "Qm9i")
    assert (
        jwe.decrypt(token, key, algorithms=["ECDH-ES"], encryptions=["A128GCM"]).plaintext == b"x"
    )


def test_gcm_key_wrap_header_carries_iv_and_tag() -> None:
    key = JWK.generate("oct", size=256)
    header = header_of(jwe.encrypt(b"x", key, "A256GCMKW", "A256GCM"))
    assert len(b64url_decode(str(header["iv"]))) == 12
    assert len(b64url_decode(str(header["tag"]))) == 16


def test_fresh_randomness_every_time() -> None:
    key = JWK.generate("oct", size=128)
    tokens = {jwe.encrypt(b"same", key, "A128KW", "A128GCM") for _ in range(5)}
    assert len(tokens) == 5
    ivs = {token.split(".")[2] for token in tokens}
    assert len(ivs) == 5


def test_empty_plaintext() -> None:
    key = JWK.generate("oct", size=128)
    for enc in ENCS:
        token = jwe.encrypt(b"", key, "A128KW", enc)
        assert jwe.decrypt(token, key, algorithms=["A128KW"], encryptions=[enc]).plaintext == b""


# -- headers ---------------------------------------------------------------------------------------


def test_kid_comes_from_the_key_and_header_members_are_kept() -> None:
    key = JWK.generate("oct", size=128, kid="k1")
    token = jwe.encrypt(b"x", key, "A128KW", "A128GCM", {"typ": "example+jwe", "cty": "text/plain"})
    assert header_of(token) == {
        "alg": "A128KW",
        "kid": "k1",
        "typ": "example+jwe",
        "cty": "text/plain",
        "enc": "A128GCM",
    }
    token = jwe.encrypt(b"x", key, "A128KW", "A128GCM", {"kid": "other"})
    assert header_of(token)["kid"] == "other"


def test_header_may_repeat_but_not_contradict_alg_and_enc() -> None:
    key = JWK.generate("oct", size=128)
    jwe.encrypt(b"x", key, "A128KW", "A128GCM", {"alg": "A128KW", "enc": "A128GCM"})
    with pytest.raises(MalformedToken, match="alg"):
        jwe.encrypt(b"x", key, "A128KW", "A128GCM", {"alg": "dir"})
    with pytest.raises(MalformedToken, match="enc"):
        jwe.encrypt(b"x", key, "A128KW", "A128GCM", {"enc": "A256GCM"})


@pytest.mark.parametrize("name", ["epk", "iv", "tag"])
def test_header_may_not_set_generated_members(name: str) -> None:
    key = JWK.generate("oct", size=128)
    with pytest.raises(MalformedToken, match=name):
        jwe.encrypt(b"x", key, "A128GCMKW", "A128GCM", {name: "AAAA"})


def test_encrypt_never_compresses_nor_sets_crit() -> None:
    key = JWK.generate("oct", size=128)
    with pytest.raises(AlgorithmNotAllowed, match="zip"):
        jwe.encrypt(b"x", key, "A128KW", "A128GCM", {"zip": "DEF"})
    with pytest.raises(MalformedToken, match="crit"):
        jwe.encrypt(b"x", key, "A128KW", "A128GCM", {"crit": ["exp"], "exp": 1})


def test_encrypt_refuses_bad_party_info() -> None:
    key = curve_key("OKP", "X25519").public()
    with pytest.raises(MalformedToken, match="apu"):
        jwe.encrypt(b"x", key, "ECDH-ES", "A128GCM", {"apu": 12})
    with pytest.raises(MalformedToken, match="apv"):
        jwe.encrypt(b"x", key, "ECDH-ES", "A128GCM", {"apv": "A" * 1000})
    with pytest.raises(MalformedToken, match="apu"):
        jwe.encrypt(b"x", key, "ECDH-ES", "A128GCM", {"apu": "QWxpY2U="})


def test_encrypt_argument_checks() -> None:
    key = JWK.generate("oct", size=128)
    with pytest.raises(TypeError):
        jwe.encrypt("text", key, "A128KW", "A128GCM")  # type: ignore[arg-type]
    with pytest.raises(AlgorithmNotAllowed):
        jwe.encrypt(b"x", key, "A128KW", "A128CBC+HS256")
    with pytest.raises(AlgorithmNotAllowed, match="PBES2"):
        jwe.encrypt(b"x", key, "PBES2-HS256+A128KW", "A128GCM")


# -- keys are bound to algorithms ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "alg", "enc"),
    [
        # an HMAC key is not a content encryption key, whatever its length
        (JWK.from_secret(b"k" * 32, alg="HS256"), "dir", "A128CBC-HS256"),
        (JWK.from_secret(b"k" * 32, use="sig"), "dir", "A256GCM"),
        # dir needs exactly the enc's key length (RFC 7518 §4.5)
        (JWK.from_secret(b"k" * 32), "dir", "A128GCM"),
        (JWK.from_secret(b"k" * 16), "dir", "A128CBC-HS256"),
        # a dir key naming one content algorithm serves only that one
        (JWK.from_secret(b"k" * 32, alg="A256GCM"), "dir", "A128CBC-HS256"),
        # AES key wrap needs exactly its key size; a GCMKW key is not a KW key
        (JWK.from_secret(b"k" * 32), "A128KW", "A128GCM"),
        (JWK.from_secret(b"k" * 16, alg="A128GCMKW"), "A128KW", "A128GCM"),
        # key types
        (JWK.from_secret(b"k" * 16), "RSA-OAEP-256", "A128GCM"),
        (JWK.from_secret(b"k" * 16), "ECDH-ES", "A128GCM"),
    ],
)
def test_symmetric_key_misuse_is_refused(key: JWK, alg: str, enc: str) -> None:
    with pytest.raises(InvalidKey):
        jwe.encrypt(b"x", key, alg, enc)


def test_asymmetric_key_misuse_is_refused() -> None:
    rsa = rsa_key()
    with pytest.raises(InvalidKey):
        jwe.encrypt(b"x", rsa, "dir", "A128GCM")
    with pytest.raises(InvalidKey):
        jwe.encrypt(b"x", rsa, "ECDH-ES", "A128GCM")
    with pytest.raises(InvalidKey):
        jwe.encrypt(b"x", curve_key("EC", "P-256"), "RSA-OAEP", "A128GCM")
    with pytest.raises(InvalidKey):
        jwe.encrypt(b"x", JWK.generate("OKP", crv="Ed25519"), "ECDH-ES", "A128GCM")
    with pytest.raises(InvalidKey):
        jwe.encrypt(b"x", JWK.generate("EC", crv="secp256k1"), "ECDH-ES", "A128GCM")
    bound = JWK.generate("RSA", alg="RSA-OAEP-256")
    with pytest.raises(InvalidKey):
        jwe.encrypt(b"x", bound, "RSA-OAEP", "A128GCM")


def test_decryption_needs_the_private_key() -> None:
    for key, alg in ((rsa_key(), "RSA-OAEP-256"), (curve_key("EC", "P-256"), "ECDH-ES")):
        token = jwe.encrypt(b"x", key.public(), alg, "A128GCM")
        with pytest.raises(InvalidKey):
            jwe.decrypt(token, key.public(), algorithms=[alg], encryptions=["A128GCM"])


def test_key_ops_are_enforced() -> None:
    wrap_only = JWK.from_dict({"kty": "oct", "k": "GawgguFyGrWKav7AX4VKUg", "key_ops": ["wrapKey"]})
    token = jwe.encrypt(b"x", wrap_only, "A128KW", "A128GCM")
    with pytest.raises(InvalidKey, match="unwrapKey"):
        jwe.decrypt(token, wrap_only, algorithms=["A128KW"], encryptions=["A128GCM"])


def test_dir_key_bound_to_its_enc() -> None:
    key = JWK.from_secret(b"k" * 16, alg="A128GCM")
    token = jwe.encrypt(b"x", key, "dir", "A128GCM")
    assert jwe.decrypt(token, key, algorithms=["dir"], encryptions=["A128GCM"]).plaintext == b"x"


# -- key selection ---------------------------------------------------------------------------------


def test_kid_selects_the_key_in_a_set() -> None:
    keys = [JWK.generate("oct", size=128, kid=f"k{i}") for i in range(3)]
    token = jwe.encrypt(b"x", keys[2], "A128KW", "A128GCM")
    result = jwe.decrypt(token, JWKSet(keys), algorithms=["A128KW"], encryptions=["A128GCM"])
    assert result.plaintext == b"x"
    assert result.header["kid"] == "k2"


def test_unknown_kid_is_key_not_found() -> None:
    sender = JWK.generate("oct", size=128, kid="elsewhere")
    token = jwe.encrypt(b"x", sender, "A128KW", "A128GCM")
    keys = JWKSet([JWK.generate("oct", size=128, kid="k1")])
    with pytest.raises(KeyNotFound):
        jwe.decrypt(token, keys, algorithms=["A128KW"], encryptions=["A128GCM"])


def _anonymous(key: JWK) -> JWK:
    """The same key without a `kid`, so that its tokens name no key."""
    data = key.to_dict(private=key.kty == "oct")
    data.pop("kid", None)
    return JWK.from_dict(data)


def test_without_kid_every_fitting_key_is_tried() -> None:
    keys = [JWK.generate("oct", size=128, kid=f"k{i}") for i in range(3)]
    token = jwe.encrypt(b"x", _anonymous(keys[1]), "A128KW", "A128GCM")
    assert "kid" not in header_of(token)
    result = jwe.decrypt(token, JWKSet(keys), algorithms=["A128KW"], encryptions=["A128GCM"])
    assert result.plaintext == b"x"


def test_without_kid_keys_on_other_curves_are_skipped() -> None:
    p256, x25519 = curve_key("EC", "P-256"), curve_key("OKP", "X25519")
    token = jwe.encrypt(b"x", _anonymous(x25519.public()), "ECDH-ES", "A128GCM")
    keys = JWKSet([p256, x25519])  # the P-256 key is tried first, and fails
    result = jwe.decrypt(token, keys, algorithms=["ECDH-ES"], encryptions=["A128GCM"])
    assert result.plaintext == b"x"


def test_dir_in_a_set_without_kid_picks_keys_of_the_right_length() -> None:
    short, long_ = JWK.from_secret(b"s" * 16), JWK.from_secret(b"l" * 32)
    token = jwe.encrypt(b"x", long_, "dir", "A256GCM")
    keys = JWKSet([short, long_])
    assert jwe.decrypt(token, keys, algorithms=["dir"], encryptions=["A256GCM"]).plaintext == b"x"
    token = jwe.encrypt(b"x", JWK.from_secret(b"m" * 24), "dir", "A192GCM")
    with pytest.raises(KeyNotFound):
        jwe.decrypt(token, keys, algorithms=["dir"], encryptions=["A192GCM"])


def test_wrong_key_is_a_decryption_failure() -> None:
    for alg, size in (("A128KW", 16), ("A256GCMKW", 32), ("dir", 16)):
        token = jwe.encrypt(b"x", JWK.generate("oct", size=size * 8), alg, "A128GCM")
        with pytest.raises(DecryptionFailed):
            jwe.decrypt(
                token, JWK.generate("oct", size=size * 8), algorithms=[alg], encryptions=["A128GCM"]
            )
    token = jwe.encrypt(b"x", JWK.generate("RSA").public(), "RSA-OAEP-256", "A128GCM")
    with pytest.raises(DecryptionFailed):
        jwe.decrypt(token, rsa_key(), algorithms=["RSA-OAEP-256"], encryptions=["A128GCM"])
    token = jwe.encrypt(b"x", JWK.generate("OKP", crv="X448").public(), "ECDH-ES", "A128GCM")
    with pytest.raises(DecryptionFailed):
        jwe.decrypt(
            token, curve_key("OKP", "X448"), algorithms=["ECDH-ES"], encryptions=["A128GCM"]
        )


def test_every_key_management_algorithm_has_its_key_operations() -> None:
    assert OPERATIONS.keys() == JWE_KEY_ALGORITHMS.keys()
