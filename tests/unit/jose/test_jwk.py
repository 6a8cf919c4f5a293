"""`JWK` and `JWKSet`: construction, export, metadata binding (RFC 7517 §4.2-4.4), strict import."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from authgate.jose import (
    JWK,
    AlgorithmNotAllowed,
    InvalidKey,
    JWKSet,
    KeyNotFound,
    jws,
)
from authgate.jose.encoding import b64url_decode
from tests.support.tokens import b64url_bytes

EC = JWK.generate("EC", crv="P-256", kid="ec")


# -- generate --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kty", "options", "crv"),
    [
        ("EC", {}, "P-256"),
        ("EC", {"alg": "ES384"}, "P-384"),
        ("EC", {"alg": "ES512"}, "P-521"),
        ("EC", {"alg": "ES256K"}, "secp256k1"),
        ("OKP", {}, "Ed25519"),
        ("OKP", {"alg": "Ed448"}, "Ed448"),
        ("OKP", {"crv": "X25519"}, "X25519"),
        ("OKP", {"crv": "X448"}, "X448"),
    ],
)
def test_generate_picks_the_curve_the_algorithm_needs(
    kty: str, options: dict[str, Any], crv: str
) -> None:
    key = JWK.generate(kty, **options)
    assert (key.kty, key.crv, key.alg, key.is_private) == (kty, crv, options.get("alg"), True)


@pytest.mark.parametrize(("alg", "size"), [("HS256", 32), ("HS384", 48), ("HS512", 64)])
def test_generate_oct_sizes_follow_the_algorithm(alg: str, size: int) -> None:
    key = JWK.generate("oct", alg=alg)
    assert key._secret is not None
    assert len(key._secret) == size
    assert len(JWK.generate("oct", size=512)._secret or b"") == 64


@pytest.mark.parametrize(
    ("kty", "options"),
    [
        ("RSA", {"size": 1024}),
        ("EC", {"crv": "P-192"}),
        ("OKP", {"crv": "Ed1174"}),
        ("oct", {"size": 100}),
        ("oct", {"size": 120}),
        ("DSA", {}),
        ("EC", {"crv": "P-256", "alg": "ES384"}),
        ("RSA", {"alg": "ES256"}),
        ("oct", {"alg": "RS256"}),
    ],
)
def test_generate_refuses_bad_requests(kty: str, options: dict[str, Any]) -> None:
    with pytest.raises(InvalidKey):
        JWK.generate(kty, **options)


# -- immutability and representation ------------------------------------------------------------


def test_keys_are_immutable() -> None:
    key = JWK.generate("oct")
    for name, value in (("alg", "HS512"), ("kid", "x"), ("use", "enc"), ("_secret", b"x" * 64)):
        with pytest.raises(AttributeError):
            setattr(key, name, value)
    with pytest.raises(AttributeError):
        del key.kid


def test_repr_names_the_key_without_its_material() -> None:
    key = JWK.from_secret(b"k" * 32, kid="signing")
    assert repr(key) == "JWK(kty='oct', crv=None, kid='signing', alg=None, private)"
    assert repr(EC.public()).endswith("public)")


# -- export ----------------------------------------------------------------------------------------


def test_public_export_never_contains_private_members() -> None:
    for key in (EC, JWK.generate("OKP"), JWK.generate("RSA")):
        exported = key.to_dict()
        assert not {"d", "p", "q", "dp", "dq", "qi"} & exported.keys()
        assert key.public().to_dict() == exported
        assert b"PRIVATE" not in key.to_pem()


def test_symmetric_keys_have_no_public_form() -> None:
    key = JWK.generate("oct")
    for action in (key.to_dict, key.public, key.to_pem):
        with pytest.raises(InvalidKey):
            action()
    assert key.to_dict(private=True)["k"] == b64url_bytes(key._secret or b"").decode()


def test_private_export_of_a_public_key_is_refused() -> None:
    with pytest.raises(InvalidKey):
        EC.public().to_dict(private=True)
    with pytest.raises(InvalidKey):
        EC.public().to_pem(private=True)


def test_public_keeps_metadata_and_limits_key_ops() -> None:
    key = JWK.from_dict(dict(EC.to_dict(private=True), key_ops=["sign", "verify"], alg="ES256"))
    public = key.public()
    assert (public.kid, public.alg, public.key_ops) == ("ec", "ES256", ("verify",))


# -- PEM -------------------------------------------------------------------------------------------


def test_from_pem_private_public_encrypted_and_certificate() -> None:
    assert JWK.from_pem(EC.to_pem(private=True)).is_private
    encrypted = EC.to_pem(private=True, password=b"pw")
    assert b"ENCRYPTED" in encrypted
    assert JWK.from_pem(encrypted, password=b"pw").thumbprint() == EC.thumbprint()
    for password in (None, b"wrong"):
        with pytest.raises(InvalidKey):
            JWK.from_pem(encrypted, password=password)
    # A certificate yields its public key.
    assert EC._private is not None
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(EC._private.public_key())
        .serial_number(1)
        .not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))
        .not_valid_after(datetime.datetime(2040, 1, 1, tzinfo=datetime.UTC))
        .sign(EC._private, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    key = JWK.from_pem(pem.decode(), kid="cert", alg="ES256")
    assert (key.kid, key.alg, key.is_private) == ("cert", "ES256", False)
    assert key.thumbprint() == EC.thumbprint()


@pytest.mark.parametrize(
    "data",
    [b"", b"not a key", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "é"],
)
def test_from_pem_refuses_garbage(data: bytes | str) -> None:
    with pytest.raises(InvalidKey):
        JWK.from_pem(data)


# -- metadata and binding -----------------------------------------------------------------------


def test_alg_binds_the_key_to_one_algorithm() -> None:
    key = JWK.generate("RSA", alg="PS256")
    assert jws.verify(jws.sign(b"x", key, "PS256"), key.public(), ["PS256"]).payload == b"x"
    for other in ("RS256", "PS384"):
        with pytest.raises(InvalidKey, match="bound to PS256"):
            jws.sign(b"x", key, other)


def test_an_unknown_key_alg_imports_but_serves_nothing() -> None:
    key = JWK.from_dict(dict(EC.public().to_dict(), alg="ES999"))
    assert key.alg == "ES999"
    token = jws.sign(b"x", EC, "ES256")
    with pytest.raises(InvalidKey):
        jws.verify(token, key, ["ES256"])


@pytest.mark.parametrize(
    ("meta", "allowed"),
    [
        ({"use": "sig"}, True),
        ({"use": "enc"}, False),
        ({"use": "x-custom"}, False),  # RFC 7517 §4.2: other values may be used; none grant sig
        ({"key_ops": ["verify"]}, True),
        ({"key_ops": ["sign"]}, False),
        ({"key_ops": ["encrypt"]}, False),
        ({"key_ops": ["verify", "x-custom"]}, True),
        ({"key_ops": []}, False),
        ({"use": "sig", "key_ops": ["verify"]}, True),
    ],
)
def test_use_and_key_ops_are_enforced(meta: dict[str, Any], allowed: bool) -> None:
    key = JWK.from_dict(dict(EC.public().to_dict(), **meta))
    token = jws.sign(b"x", EC, "ES256")
    if allowed:
        assert jws.verify(token, key, ["ES256"]).payload == b"x"
    else:
        with pytest.raises(InvalidKey):
            jws.verify(token, key, ["ES256"])


@pytest.mark.parametrize(
    "meta",
    [
        {"key_ops": ["verify", "verify"]},  # RFC 7517 §4.3: no duplicates
        {"use": "sig", "key_ops": ["encrypt"]},  # §4.3: use and key_ops must agree
        {"use": "enc", "key_ops": ["verify"]},
        {"key_ops": "verify"},
        {"key_ops": [1]},
        {"kid": 1},
        {"alg": ["ES256"]},
        {"use": True},
        {"x5c": "MIIB"},
    ],
)
def test_malformed_metadata_is_refused(meta: dict[str, Any]) -> None:
    with pytest.raises(InvalidKey):
        JWK.from_dict(dict(EC.public().to_dict(), **meta))


def test_check_reports_unsupported_algorithms() -> None:
    with pytest.raises(AlgorithmNotAllowed):
        EC.check("ES999", "verify", private=False)
    with pytest.raises(InvalidKey):
        EC.public().check("ES256", "sign", private=True)


# -- strict import -------------------------------------------------------------------------------


def _ec(**change: Any) -> dict[str, Any]:
    return dict(EC.to_dict(private=True), **change)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"kty": "EC"},
        {"kty": 1},
        {"kty": "DSA"},
        _ec(crv="P-192"),
        _ec(x=EC.to_dict()["x"][:-2]),  # short coordinate (RFC 7518 §6.2.1.2)
        _ec(x="A" + EC.to_dict()["x"]),  # not canonical base64url / wrong length
        _ec(y=EC.to_dict()["x"]),  # not on the curve
        _ec(d="AA" + EC.to_dict(private=True)["d"][2:]),  # d does not match the point
        _ec(d=b64url_bytes(b"\x00" * 32).decode()),  # d = 0
        _ec(x=b64url_bytes(b"\xff" * 32).decode()),  # x >= p
        {"kty": "OKP", "crv": "Ed25519", "x": b64url_bytes(b"\x01" * 31).decode()},
        {"kty": "OKP", "crv": "X25519"},
        {"kty": "oct", "k": ""},
        {"kty": "oct", "k": "a=="},
        {"kty": "oct"},
        {"kty": "RSA", "n": "", "e": "AQAB"},
        {"kty": "RSA", "e": "AQAB"},
    ],
)
def test_strict_import_refuses_malformed_keys(data: dict[str, Any]) -> None:
    with pytest.raises(InvalidKey):
        JWK.from_dict(data)


def test_rsa_import_rules() -> None:
    key = JWK.generate("RSA")
    full = key.to_dict(private=True)
    # d alone (no CRT members) is enough: the primes are recovered.
    minimal = {name: full[name] for name in ("kty", "kid", "n", "e", "d")}
    assert JWK.from_dict(minimal).to_dict(private=True) == full
    partial = {name: full[name] for name in ("kty", "n", "e", "d", "p")}
    inconsistent = dict(full, dq=full["dp"])
    private_without_d = {name: full[name] for name in ("kty", "n", "e", "p", "q")}
    multi_prime = dict(full, oth=[])
    even_exponent = dict(key.to_dict(), e=b64url_bytes((65538).to_bytes(3, "big")).decode())
    for data in (partial, inconsistent, private_without_d, multi_prime, even_exponent):
        with pytest.raises(InvalidKey):
            JWK.from_dict(data)


@pytest.mark.parametrize("member", ["n", "e"])
def test_rsa_n_and_e_with_a_leading_zero_octet_are_refused(member: str) -> None:
    """RFC 7518 §6.3.1: n and e are Base64urlUInt, which uses the minimum number of octets (§2)."""
    key = JWK.generate("RSA", kid="rsa")
    for data in (key.to_dict(), key.to_dict(private=True)):
        padded = dict(
            data, **{member: b64url_bytes(b"\x00" + b64url_decode(data[member])).decode()}
        )
        with pytest.raises(InvalidKey, match="leading zero") as info:
            JWK.from_dict(padded)
        assert info.value.code == "ERR_JOSE_INVALID_KEY"
        # A set skips such a member (RFC 7517 §5), or refuses the set when strict.
        assert JWKSet.from_dict({"keys": [padded]}).skipped == 1
        with pytest.raises(InvalidKey, match="leading zero"):
            JWKSet.from_dict({"keys": [padded]}, strict=True)
        assert JWK.from_dict(data).thumbprint() == key.thumbprint()


def test_non_mapping_keys_are_refused() -> None:
    for data in (None, [], "kty", 1):
        with pytest.raises(InvalidKey):
            JWK.from_dict(data)  # type: ignore[arg-type]
    with pytest.raises(InvalidKey):
        JWK.from_secret("text")  # type: ignore[arg-type]


# -- JWKSet --------------------------------------------------------------------------------------


def test_set_lookup_iteration_and_export() -> None:
    other = JWK.generate("EC", kid="other")
    jwks = JWKSet([EC.public(), other.public()])
    assert len(jwks) == 2
    assert [k.kid for k in jwks] == ["ec", "other"]
    assert jwks.get("ec") is not None
    assert jwks.get("EC") is None
    assert JWKSet.from_dict(jwks.to_dict()).to_dict() == jwks.to_dict()
    assert repr(jwks) == "JWKSet(2 keys)"


def test_set_import_skips_unusable_members_unless_strict() -> None:
    data = {
        "keys": [
            EC.public().to_dict(),
            {"kty": "DSA", "kid": "dsa"},
            {"kty": "EC", "crv": "P-256", "kid": "broken"},
            {"kty": "RSA", "kid": "weak", "n": b64url_bytes(b"\xc1" * 128).decode(), "e": "AQAB"},
            "not an object",
        ]
    }
    jwks = JWKSet.from_dict(data)
    assert (len(jwks), jwks.skipped) == (1, 4)
    with pytest.raises(InvalidKey):
        JWKSet.from_dict(data, strict=True)


@pytest.mark.parametrize("data", [None, [], {}, {"keys": {}}, {"keys": "x"}])
def test_set_import_needs_a_keys_array(data: Any) -> None:
    with pytest.raises(InvalidKey):
        JWKSet.from_dict(data)


def test_set_selection_by_kid_and_by_family() -> None:
    rsa = JWK.generate("RSA", kid="rsa")
    jwks = JWKSet([EC.public(), rsa.public()])
    assert jws.verify(jws.sign(b"a", rsa, "RS256"), jwks, ["RS256"]).payload == b"a"
    # Without a kid every key of the right family is tried.
    untagged = jws.sign(b"b", JWK.from_dict(dict(rsa.to_dict(private=True), kid=None)), "PS256")
    assert jws.verify(untagged, jwks, ["PS256"]).payload == b"b"
    with pytest.raises(KeyNotFound):
        jws.verify(jws.sign(b"c", JWK.generate("OKP"), "EdDSA"), jwks, ["EdDSA"])
    with pytest.raises(KeyNotFound):
        jws.verify(jws.sign(b"c", JWK.generate("EC", kid="nope"), "ES256"), jwks, ["ES256"])
    with pytest.raises(InvalidKey):
        jws.verify(jws.sign(b"c", rsa, "RS256"), [rsa.public()], ["RS256"])  # type: ignore[arg-type]
