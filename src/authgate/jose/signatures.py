"""The signature and MAC primitives behind each JWS algorithm (RFC 7518 §3, RFC 8037 §3.1).

Each algorithm maps to a `sign(key, data)` and a `verify(key, data, signature) -> bool`. Keys have been
checked against the algorithm before these run (`JWK.check`). ECDSA signatures are the fixed-size
R || S form (RFC 7518 §3.4); R and S must both lie in [1, n-1] before the DER conversion, so that no
out-of-range or non-canonical encoding ever reaches OpenSSL ("psychic signatures", CVE-2022-21449).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from authgate.jose.jwk import JWK

Signer = Callable[[JWK, bytes], bytes]
Verifier = Callable[[JWK, bytes, bytes], bool]

_HASHES = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}
_PKCS1 = padding.PKCS1v15()
_EC_ORDERS = {
    "ES256": (32, 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551),
    "ES384": (48, int("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973", 16)),  # noqa: E501
    "ES512": (66, int("01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409", 16)),  # noqa: E501
    "ES256K": (32, 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141),
}


def _hmac_pair(bits: str) -> tuple[Signer, Verifier]:
    algorithm = _HASHES[bits]

    def sign(key: JWK, data: bytes) -> bytes:
        assert key._secret is not None
        mac = hmac.HMAC(key._secret, algorithm)
        mac.update(data)
        return mac.finalize()

    def verify(key: JWK, data: bytes, signature: bytes) -> bool:
        assert key._secret is not None
        mac = hmac.HMAC(key._secret, algorithm)
        mac.update(data)
        try:
            mac.verify(signature)  # constant-time comparison
        except InvalidSignature:
            return False
        return True

    return sign, verify


def _rsa_pair(pad: Any, algorithm: hashes.HashAlgorithm) -> tuple[Signer, Verifier]:
    def sign(key: JWK, data: bytes) -> bytes:
        signature: bytes = key._private.sign(data, pad, algorithm)  # type: ignore[union-attr,call-arg,arg-type]
        return signature

    def verify(key: JWK, data: bytes, signature: bytes) -> bool:
        try:
            key._public.verify(signature, data, pad, algorithm)  # type: ignore[union-attr,call-arg,arg-type]
        except InvalidSignature:
            return False
        return True

    return sign, verify


def _pss(bits: str) -> Any:
    algorithm = _HASHES[bits]
    # RFC 7518 §3.5: the salt is as long as the hash output; verification insists on exactly that.
    return padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)


def _ecdsa_pair(alg: str, bits: str) -> tuple[Signer, Verifier]:
    size, order = _EC_ORDERS[alg]
    scheme = ec.ECDSA(_HASHES[bits])

    def sign(key: JWK, data: bytes) -> bytes:
        der = key._private.sign(data, scheme)  # type: ignore[union-attr,call-arg,arg-type]
        r, s = decode_dss_signature(der)
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")

    def verify(key: JWK, data: bytes, signature: bytes) -> bool:
        if len(signature) != 2 * size:
            return False
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        if not (0 < r < order and 0 < s < order):
            return False
        try:
            key._public.verify(encode_dss_signature(r, s), data, scheme)  # type: ignore[union-attr,call-arg,arg-type]
        except InvalidSignature:
            return False
        return True

    return sign, verify


def _eddsa_sign(key: JWK, data: bytes) -> bytes:
    signature: bytes = key._private.sign(data)  # type: ignore[union-attr,call-arg]
    return signature


def _eddsa_verify(key: JWK, data: bytes, signature: bytes) -> bool:
    try:
        key._public.verify(signature, data)  # type: ignore[union-attr,call-arg]
    except InvalidSignature:
        return False
    return True


ALGORITHMS: dict[str, tuple[Signer, Verifier]] = {
    "HS256": _hmac_pair("256"),
    "HS384": _hmac_pair("384"),
    "HS512": _hmac_pair("512"),
    "RS256": _rsa_pair(_PKCS1, _HASHES["256"]),
    "RS384": _rsa_pair(_PKCS1, _HASHES["384"]),
    "RS512": _rsa_pair(_PKCS1, _HASHES["512"]),
    "PS256": _rsa_pair(_pss("256"), _HASHES["256"]),
    "PS384": _rsa_pair(_pss("384"), _HASHES["384"]),
    "PS512": _rsa_pair(_pss("512"), _HASHES["512"]),
    "ES256": _ecdsa_pair("ES256", "256"),
    "ES384": _ecdsa_pair("ES384", "384"),
    "ES512": _ecdsa_pair("ES512", "512"),
    "ES256K": _ecdsa_pair("ES256K", "256"),
    "EdDSA": (_eddsa_sign, _eddsa_verify),
    "Ed25519": (_eddsa_sign, _eddsa_verify),
    "Ed448": (_eddsa_sign, _eddsa_verify),
}
