"""The key-type-specific JWK members: RSA (RFC 7518 §6.3), EC (§6.2), oct (§6.4), OKP (RFC 8037 §2).

`parse_params` turns the members of one JWK into a `cryptography` key (or a secret), strictly:
every member is type-checked, coordinates and private values have the exact sizes the RFCs fix,
EC points must lie on the curve, private parts must match the public parts and weak RSA keys are
refused. `export_params` is the inverse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x448, x25519

from authgate.jose._b64 import b64decode, b64decode_uint, b64encode, uint_b64encode
from authgate.jose._key_checks import check_rsa_public_numbers, check_secret
from authgate.jose.errors import InvalidKey

PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
    | x25519.X25519PrivateKey
    | x448.X448PrivateKey
)
PublicKey = (
    rsa.RSAPublicKey
    | ec.EllipticCurvePublicKey
    | ed25519.Ed25519PublicKey
    | ed448.Ed448PublicKey
    | x25519.X25519PublicKey
    | x448.X448PublicKey
)

EC_CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
    "secp256k1": ec.SECP256K1(),
}
_EC_CRV_BY_NAME = {curve.name: crv for crv, curve in EC_CURVES.items()}
# RFC 7518 §6.2.1.2-3 and §6.2.2.1: x, y and d are exactly the size of the curve's coordinates.
_EC_SIZES = {"P-256": 32, "P-384": 48, "P-521": 66, "secp256k1": 32}
_OKP_SIZES = {"Ed25519": 32, "Ed448": 57, "X25519": 32, "X448": 56}
OKP_PRIVATE: dict[str, Any] = {
    "Ed25519": ed25519.Ed25519PrivateKey,
    "Ed448": ed448.Ed448PrivateKey,
    "X25519": x25519.X25519PrivateKey,
    "X448": x448.X448PrivateKey,
}
_OKP_PUBLIC: dict[str, Any] = {
    "Ed25519": ed25519.Ed25519PublicKey,
    "Ed448": ed448.Ed448PublicKey,
    "X25519": x25519.X25519PublicKey,
    "X448": x448.X448PublicKey,
}
_RSA_PRIVATE = ("d", "p", "q", "dp", "dq", "qi", "oth")
_RAW = serialization.Encoding.Raw


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    """What one JWK holds: an asymmetric key pair (or its public half) or a secret."""

    kty: str
    crv: str | None
    private: PrivateKey | None = None
    public: PublicKey | None = None
    secret: bytes | None = None


def material_of(
    private: PrivateKey | None = None,
    public: PublicKey | None = None,
    secret: bytes | None = None,
) -> KeyMaterial:
    """Describe a `cryptography` key (or a secret), refusing weak RSA keys and disguised secrets."""
    if secret is not None:
        check_secret(secret)
        return KeyMaterial("oct", None, secret=secret)
    if private is not None:
        public = private.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        check_rsa_public_numbers(public.public_numbers())
        return KeyMaterial("RSA", None, private, public)
    if isinstance(public, ec.EllipticCurvePublicKey):
        crv = _EC_CRV_BY_NAME.get(public.curve.name)
        if crv is None:
            raise InvalidKey(f"unsupported EC curve {public.curve.name}")
        return KeyMaterial("EC", crv, private, public)
    for crv, cls in _OKP_PUBLIC.items():
        if isinstance(public, cls):
            return KeyMaterial("OKP", crv, private, public)
    raise InvalidKey("unsupported key type")


def parse_params(kty: str, data: Mapping[str, Any]) -> KeyMaterial:
    """Import the key members of a JWK of type `kty`; raise `InvalidKey` or `MalformedToken`."""
    if kty == "oct":
        return material_of(secret=b64decode(_string(data, "k"), "k"))
    if kty == "RSA":
        return _parse_rsa(data)
    if kty == "EC":
        return _parse_ec(data)
    if kty == "OKP":
        return _parse_okp(data)
    raise InvalidKey(f"unsupported key type {kty!r}")


def export_params(material: KeyMaterial, private: bool) -> dict[str, str]:
    """The key members of the JWK, private ones only when `private` is true."""
    if material.secret is not None:
        return {"k": _text(material.secret)}
    pub, priv = material.public, material.private if private else None
    if isinstance(pub, rsa.RSAPublicKey):
        nums = pub.public_numbers()
        out = {"n": uint_b64encode(nums.n), "e": uint_b64encode(nums.e)}
        if isinstance(priv, rsa.RSAPrivateKey):
            p = priv.private_numbers()
            out.update(
                d=uint_b64encode(p.d),
                p=uint_b64encode(p.p),
                q=uint_b64encode(p.q),
                dp=uint_b64encode(p.dmp1),
                dq=uint_b64encode(p.dmq1),
                qi=uint_b64encode(p.iqmp),
            )
        return out
    crv = str(material.crv)
    if isinstance(pub, ec.EllipticCurvePublicKey):
        size = _EC_SIZES[crv]
        en = pub.public_numbers()
        out = {"crv": crv, "x": uint_b64encode(en.x, size), "y": uint_b64encode(en.y, size)}
        if isinstance(priv, ec.EllipticCurvePrivateKey):
            out["d"] = uint_b64encode(priv.private_numbers().private_value, size)
        return out
    if pub is None:  # pragma: no cover - every asymmetric JWK has a public key
        raise InvalidKey("key has no public part")
    out = {"crv": crv, "x": _text(pub.public_bytes(_RAW, serialization.PublicFormat.Raw))}
    if priv is not None:
        out["d"] = _text(
            priv.private_bytes(_RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption())
        )
    return out


def _text(raw: bytes) -> str:
    return b64encode(raw).decode("ascii")


def _string(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise InvalidKey(f"JWK member {name!r} must be a string")
    return value


def _parse_rsa(data: Mapping[str, Any]) -> KeyMaterial:
    # RFC 7518 §6.3.1.1-2: n and e in the minimum number of octets, so that one key has one
    # encoding (and one RFC 7638 thumbprint). The private members are decoded leniently: some
    # exporters pad them to a fixed length, and they never name the key.
    public = rsa.RSAPublicNumbers(
        b64decode_uint(data.get("e"), "e", minimal=True),
        b64decode_uint(data.get("n"), "n", minimal=True),
    )
    check_rsa_public_numbers(public)
    if "d" not in data:
        if any(m in data for m in _RSA_PRIVATE):
            raise InvalidKey("RSA private members without 'd'")
        return material_of(public=public.public_key())
    if "oth" in data:
        raise InvalidKey("multi-prime RSA keys are not supported")
    d = b64decode_uint(data.get("d"), "d")
    crt = ("p", "q", "dp", "dq", "qi")
    present = [m in data for m in crt]
    try:
        if all(present):
            p, q, dp, dq, qi = (b64decode_uint(data[m], m) for m in crt)
        elif not any(present):
            p, q = rsa.rsa_recover_prime_factors(public.n, public.e, d)
            dp, dq, qi = rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q)
        else:
            raise InvalidKey("RSA private key with some but not all CRT members")
        # cryptography checks that the parts are consistent (p * q = n, d, CRT values).
        private = rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, public).private_key()
    except ValueError:
        raise InvalidKey("inconsistent RSA private key") from None
    return material_of(private=private)


def _parse_ec(data: Mapping[str, Any]) -> KeyMaterial:
    crv = _string(data, "crv")
    curve = EC_CURVES.get(crv)
    if curve is None:
        raise InvalidKey(f"unsupported EC curve {crv!r}")
    size = _EC_SIZES[crv]
    x, y = (_fixed(data, name, size, crv) for name in ("x", "y"))
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(x, "big"), int.from_bytes(y, "big"), curve
    )
    try:
        public = numbers.public_key()  # refuses points off the curve (invalid-curve attacks)
    except ValueError:
        raise InvalidKey("EC point is not on the curve") from None
    if "d" not in data:
        return material_of(public=public)
    d = int.from_bytes(_fixed(data, "d", size, crv), "big")
    try:
        private = ec.derive_private_key(d, curve)
    except ValueError:
        raise InvalidKey("EC private value out of range") from None
    if private.public_key().public_numbers() != numbers:
        raise InvalidKey("EC private key does not match its public key")
    return material_of(private=private)


def _parse_okp(data: Mapping[str, Any]) -> KeyMaterial:
    crv = _string(data, "crv")
    if crv not in _OKP_PUBLIC:
        raise InvalidKey(f"unsupported OKP curve {crv!r}")
    x = _fixed(data, "x", _OKP_SIZES[crv], crv)
    try:
        public = _OKP_PUBLIC[crv].from_public_bytes(x)
    except ValueError:
        raise InvalidKey(f"invalid {crv} public key") from None
    if "d" not in data:
        return material_of(public=public)
    private = OKP_PRIVATE[crv].from_private_bytes(_fixed(data, "d", _OKP_SIZES[crv], crv))
    if private.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw) != x:
        raise InvalidKey("OKP private key does not match its public key")
    return material_of(private=private)


def _fixed(data: Mapping[str, Any], name: str, size: int, crv: str) -> bytes:
    raw = b64decode(_string(data, name), name)
    if len(raw) != size:
        raise InvalidKey(f"{name} must be {size} bytes for {crv}")
    return raw
