"""The signature and MAC primitives behind each JWS algorithm (RFC 7518 §3, RFC 8037 §3.1).

`signer(key, alg)` and `verifier(key, alg)` check the key's binding once (`JWK.check`), then build
and cache on the key a closure over the prepared `cryptography` objects, so that verifying a token
costs one dictionary lookup before the primitive itself.

- HMAC (§3.2): the tag is compared in constant time by `cryptography`; a keyed HMAC context is
  prepared once and copied per message (the copy skips re-keying).
- RSASSA-PKCS1-v1_5 and RSASSA-PSS (§3.3, §3.5): the signature must be exactly as long as the
  modulus (RFC 8017 §8.1.2, §8.2.2 step 1); PSS uses MGF1 with the same hash and a salt as long as
  the hash, and verification insists on exactly that salt length.
- ECDSA (§3.4): the signature is the fixed-size R || S form; R and S must both lie in [1, n-1]
  before the DER conversion, so that no out-of-range or non-canonical encoding ever reaches
  OpenSSL ("psychic signatures", CVE-2022-21449).
- EdDSA (RFC 8037 §3.1, RFC 9864): Ed25519 and Ed448, pure (no pre-hash, no context).
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from authgate.jose._algorithms import JWS_ALGORITHMS
from authgate.jose.errors import AlgorithmNotAllowed, InvalidKey
from authgate.jose.jwk import JWK

__all__ = ["Sign", "Verify", "signer", "verifier"]

Sign = Callable[[bytes], bytes]
Verify = Callable[[bytes, bytes], bool]

_SHA = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}
_PKCS1 = padding.PKCS1v15()
# The group orders n (SEC 2 §2.4.2, §2.5.1, §2.6.1 and §2.4.1 for secp256k1).
_P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_P384_N = int(
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
    16,
)
_P521_N = int(
    "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA"
    "51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
    16,
)
_K256_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def signer(key: JWK, alg: str) -> Sign:
    """The signing function of `key` for `alg`; raise unless the key may sign with it."""
    fn = key._signers.get(alg)
    if fn is None:
        _check(key, alg, private=True)
        fn = key._signers[alg] = _FACTORIES[alg][0](key)
    return fn


def verifier(key: JWK, alg: str) -> Verify:
    """The verification function of `key` for `alg`: `verify(signing_input, signature) -> bool`.

    Raises unless the key may verify with `alg`. The function never raises for a bad signature.
    """
    fn = key._verifiers.get(alg)
    if fn is None:
        _check(key, alg, private=False)
        fn = key._verifiers[alg] = _FACTORIES[alg][1](key)
    return fn


def _check(key: JWK, alg: str, *, private: bool) -> None:
    if alg not in JWS_ALGORITHMS:
        raise AlgorithmNotAllowed(f"unsupported JWS algorithm {alg!r}")
    key.check(alg, "sign" if private else "verify", private=private)


def _hmac(bits: str) -> tuple[Callable[[JWK], Sign], Callable[[JWK], Verify]]:
    algorithm = _SHA[bits]

    def keyed(key: JWK) -> hmac.HMAC:
        if key._secret is None:  # pragma: no cover - JWK.check admits oct keys only
            raise InvalidKey("HMAC needs a secret")
        return hmac.HMAC(key._secret, algorithm)

    def make_sign(key: JWK) -> Sign:
        base = keyed(key)

        def sign(data: bytes) -> bytes:
            mac = base.copy()
            mac.update(data)
            return mac.finalize()

        return sign

    def make_verify(key: JWK) -> Verify:
        base = keyed(key)

        def verify(data: bytes, signature: bytes) -> bool:
            mac = base.copy()
            mac.update(data)
            try:
                mac.verify(signature)  # constant-time comparison
            except InvalidSignature:
                return False
            return True

        return verify

    return make_sign, make_verify


def _rsa(pss: bool, bits: str) -> tuple[Callable[[JWK], Sign], Callable[[JWK], Verify]]:
    algorithm = _SHA[bits]
    # RFC 7518 §3.5: MGF1 with the same hash, and a salt as long as the hash output.
    pad = (
        padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)
        if pss
        else _PKCS1
    )

    def make_sign(key: JWK) -> Sign:
        private = key._private
        if not isinstance(private, rsa.RSAPrivateKey):  # pragma: no cover - see JWK.check
            raise InvalidKey("RSA signing needs an RSA private key")

        def sign(data: bytes) -> bytes:
            return private.sign(data, pad, algorithm)

        return sign

    def make_verify(key: JWK) -> Verify:
        public = key._public
        if not isinstance(public, rsa.RSAPublicKey):  # pragma: no cover - see JWK.check
            raise InvalidKey("RSA verification needs an RSA key")
        size = (public.key_size + 7) // 8

        def verify(data: bytes, signature: bytes) -> bool:
            if len(signature) != size:
                return False
            try:
                public.verify(signature, data, pad, algorithm)
            except InvalidSignature:
                return False
            return True

        return verify

    return make_sign, make_verify


def _ecdsa(
    bits: str, size: int, order: int
) -> tuple[Callable[[JWK], Sign], Callable[[JWK], Verify]]:
    scheme = ec.ECDSA(_SHA[bits])

    def make_sign(key: JWK) -> Sign:
        private = key._private
        if not isinstance(private, ec.EllipticCurvePrivateKey):  # pragma: no cover
            raise InvalidKey("ECDSA signing needs an EC private key")

        def sign(data: bytes) -> bytes:
            return _raw_signature(private.sign(data, scheme), size)

        return sign

    def make_verify(key: JWK) -> Verify:
        public = key._public
        if not isinstance(public, ec.EllipticCurvePublicKey):  # pragma: no cover
            raise InvalidKey("ECDSA verification needs an EC key")
        from_bytes = int.from_bytes

        def verify(data: bytes, signature: bytes) -> bool:
            if len(signature) != 2 * size:
                return False
            r = from_bytes(signature[:size], "big")
            s = from_bytes(signature[size:], "big")
            if not (0 < r < order and 0 < s < order):
                return False
            try:
                public.verify(encode_dss_signature(r, s), data, scheme)
            except InvalidSignature:
                return False
            return True

        return verify

    return make_sign, make_verify


def _raw_signature(der: bytes, size: int) -> bytes:
    """The fixed-size R || S form (RFC 7518 §3.4) of an ECDSA signature OpenSSL encoded in DER
    (SEQUENCE of two INTEGERs). Read here when every length fits one octet (P-256, P-384), which
    costs a third of `decode_dss_signature` and two `int.to_bytes`; anything else (P-521's long
    lengths) goes through `decode_dss_signature`."""
    end = len(der)
    if end < 128 and der[0] == 0x30 and der[1] == end - 2 and der[2] == 0x02:
        r_end = 4 + der[3]
        if (
            r_end + 2 < end
            and der[r_end] == 0x02
            and r_end + 2 + der[r_end + 1] == end
            and der[4] < 0x80  # both INTEGERs non-negative (R and S always are)
            and der[r_end + 2] < 0x80
        ):
            # A non-negative INTEGER gets a leading zero octet when its high bit is set.
            r = der[4:r_end].lstrip(b"\0")
            s = der[r_end + 2 :].lstrip(b"\0")
            if 0 < len(r) <= size and 0 < len(s) <= size:
                return r.rjust(size, b"\0") + s.rjust(size, b"\0")
    r_int, s_int = decode_dss_signature(der)
    return r_int.to_bytes(size, "big") + s_int.to_bytes(size, "big")


def _make_eddsa_sign(key: JWK) -> Sign:
    private = key._private
    if not isinstance(private, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        raise InvalidKey("EdDSA signing needs an Ed25519 or Ed448 private key")  # pragma: no cover
    return private.sign


def _make_eddsa_verify(key: JWK) -> Verify:
    public = key._public
    if not isinstance(public, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        raise InvalidKey("EdDSA verification needs an Ed25519 or Ed448 key")  # pragma: no cover

    def verify(data: bytes, signature: bytes) -> bool:
        try:
            public.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    return verify


_EDDSA = (_make_eddsa_sign, _make_eddsa_verify)
_FACTORIES: dict[str, tuple[Callable[[JWK], Sign], Callable[[JWK], Verify]]] = {
    "HS256": _hmac("256"),
    "HS384": _hmac("384"),
    "HS512": _hmac("512"),
    "RS256": _rsa(False, "256"),
    "RS384": _rsa(False, "384"),
    "RS512": _rsa(False, "512"),
    "PS256": _rsa(True, "256"),
    "PS384": _rsa(True, "384"),
    "PS512": _rsa(True, "512"),
    "ES256": _ecdsa("256", 32, _P256_N),
    "ES384": _ecdsa("384", 48, _P384_N),
    "ES512": _ecdsa("512", 66, _P521_N),
    "ES256K": _ecdsa("256", 32, _K256_N),
    "EdDSA": _EDDSA,
    "Ed25519": _EDDSA,
    "Ed448": _EDDSA,
}
