"""JSON Web Key (RFC 7517, RFC 7518 §6, RFC 8037 §2) and thumbprints (RFC 7638).

A `JWK` wraps one `cryptography` key (or one secret) with its JWK metadata. It is immutable. Imports
are strict: every member is type-checked, EC and OKP points are validated by `cryptography`, private
parts must match public parts, RSA keys under 2048 bits, weak exponents and ROCA moduli are refused.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from typing import Any, Literal, cast

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x448, x25519

from authgate.jose._b64 import b64decode, b64decode_uint, b64encode, uint_b64encode
from authgate.jose._json import dumps
from authgate.jose._key_checks import MIN_RSA_BITS, check_rsa_public_numbers
from authgate.jose.algorithms import ALL_KEY_ALGORITHMS, JWE_CONTENT_ALGORITHMS, KeyRequirement
from authgate.jose.errors import AlgorithmNotAllowed, InvalidKey, MalformedToken

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

_EC_CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
    "secp256k1": ec.SECP256K1(),
}
_EC_CRV_BY_NAME = {curve.name: crv for crv, curve in _EC_CURVES.items()}
# Coordinate sizes in bytes; RFC 7518 §6.2.1.2: x and y MUST be the full size of the coordinate.
_EC_SIZES = {"P-256": 32, "P-384": 48, "P-521": 66, "secp256k1": 32}
_OKP_SIZES = {"Ed25519": 32, "Ed448": 57, "X25519": 32, "X448": 56}
_OKP_PRIVATE: dict[str, Any] = {
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
_KEY_OPS = frozenset(
    {"sign", "verify", "encrypt", "decrypt", "wrapKey", "unwrapKey", "deriveKey", "deriveBits"}
)
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


Operation = Literal[
    "sign", "verify", "encrypt", "decrypt", "wrapKey", "unwrapKey", "deriveKey", "deriveBits"
]


class JWK:
    """One key with its JWK metadata (`kty`, `kid`, `alg`, `use`, `key_ops`).

    Build it with `generate`, `from_dict`, `from_pem` or `from_secret`; the constructor is private.
    """

    __slots__ = ("_checked", "_private", "_public", "_secret", "alg", "crv", "key_ops", "kid",
                 "kty", "use")

    kty: str
    crv: str | None
    kid: str | None
    alg: str | None
    use: str | None
    key_ops: tuple[str, ...] | None

    def __init__(
        self,
        *,
        _kty: str,
        _crv: str | None,
        _private: PrivateKey | None,
        _public: PublicKey | None,
        _secret: bytes | None,
        kid: str | None,
        alg: str | None,
        use: str | None,
        key_ops: tuple[str, ...] | None,
    ) -> None:
        self.kty = _kty
        self.crv = _crv
        self._private = _private
        self._public = _public
        self._secret = _secret
        self.kid = kid
        self.alg = alg
        self.use = use
        self.key_ops = key_ops
        self._checked: set[tuple[str, str, bool]] = set()
        _validate_metadata(kid, alg, use, key_ops)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def generate(
        cls,
        kty: str,
        *,
        size: int | None = None,
        crv: str | None = None,
        kid: str | None = None,
        alg: str | None = None,
        use: str | None = None,
    ) -> JWK:
        """Generate a new private key. `kid` defaults to the RFC 7638 thumbprint.

        RSA: `size` bits (default 2048, at least 2048). EC: `crv` P-256 (default), P-384, P-521,
        secp256k1. OKP: `crv` Ed25519 (default), Ed448, X25519, X448. oct: `size` bits (default
        256, or what `alg` needs).
        """
        private: PrivateKey | None = None
        secret: bytes | None = None
        if kty == "RSA":
            bits = size or 2048
            if bits < MIN_RSA_BITS:
                raise InvalidKey(f"RSA keys must be at least {MIN_RSA_BITS} bits")
            private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        elif kty == "EC":
            crv = crv or "P-256"
            if crv not in _EC_CURVES:
                raise InvalidKey(f"unsupported EC curve {crv!r}")
            private = ec.generate_private_key(_EC_CURVES[crv])
        elif kty == "OKP":
            crv = crv or "Ed25519"
            if crv not in _OKP_PRIVATE:
                raise InvalidKey(f"unsupported OKP curve {crv!r}")
            private = _OKP_PRIVATE[crv].generate()
        elif kty == "oct":
            bits = size or _default_secret_bits(alg)
            if bits % 8 or bits < 128:
                raise InvalidKey("oct key size must be a multiple of 8 and at least 128 bits")
            secret = secrets.token_bytes(bits // 8)
        else:
            raise InvalidKey(f"unsupported key type {kty!r}")
        key = cls._from_parts(kty, private=private, secret=secret, kid=kid, alg=alg, use=use)
        if kid is None:
            key.kid = key.thumbprint()
        return key

    @classmethod
    def from_secret(
        cls, secret: bytes, *, kid: str | None = None, alg: str | None = None, use: str | None = None
    ) -> JWK:
        """Wrap raw secret bytes as an `oct` key (for HMAC or AES algorithms)."""
        if not isinstance(secret, bytes) or not secret:
            raise InvalidKey("a secret must be non-empty bytes")
        return cls._from_parts("oct", secret=secret, kid=kid, alg=alg, use=use)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JWK:
        """Import a JWK from its JSON object form; raise `InvalidKey` on anything malformed."""
        if not isinstance(data, Mapping):
            raise InvalidKey("a JWK must be a JSON object")
        try:
            return _import_dict(cls, data)
        except MalformedToken as exc:
            raise InvalidKey(f"malformed JWK: {exc}") from None

    @classmethod
    def from_pem(
        cls,
        data: bytes | str,
        password: bytes | None = None,
        *,
        kid: str | None = None,
        alg: str | None = None,
        use: str | None = None,
    ) -> JWK:
        """Import a PEM private key (PKCS#8 or traditional), public key (SPKI) or certificate.

        A PEM is never read as an HMAC secret. `kid` defaults to the thumbprint.
        """
        raw = data.encode() if isinstance(data, str) else data
        private: PrivateKey | None = None
        public: PublicKey | None = None
        try:
            if b"PRIVATE KEY-----" in raw:
                loaded: Any = serialization.load_pem_private_key(raw, password=password)
                private = loaded
            elif b"BEGIN CERTIFICATE-----" in raw:
                from cryptography import x509

                public = cast(PublicKey, x509.load_pem_x509_certificate(raw).public_key())
            else:
                public = cast(PublicKey, serialization.load_pem_public_key(raw))
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise InvalidKey("not a supported PEM key") from None
        kty, crv = _kty_of(private or public)
        key = cls._from_parts(kty, crv=crv, private=private, public=public, kid=kid, alg=alg,
                              use=use)
        if kid is None:
            key.kid = key.thumbprint()
        return key

    @classmethod
    def _from_parts(
        cls,
        kty: str,
        *,
        crv: str | None = None,
        private: PrivateKey | None = None,
        public: PublicKey | None = None,
        secret: bytes | None = None,
        kid: str | None = None,
        alg: str | None = None,
        use: str | None = None,
        key_ops: tuple[str, ...] | None = None,
    ) -> JWK:
        if private is not None:
            public = cast(PublicKey, private.public_key())
        if public is not None:
            kty, crv = _kty_of(public)
            if isinstance(public, rsa.RSAPublicKey):
                check_rsa_public_numbers(public.public_numbers())
        return cls(_kty=kty, _crv=crv, _private=private, _public=public, _secret=secret, kid=kid,
                   alg=alg, use=use, key_ops=key_ops)

    # -- properties and export ----------------------------------------------------------------

    @property
    def is_private(self) -> bool:
        """True for private asymmetric keys and for secrets."""
        return self._private is not None or self._secret is not None

    def public(self) -> JWK:
        """The public part as a new JWK (same kid, alg, use)."""
        if self._public is None:
            raise InvalidKey("a symmetric key has no public part")
        ops = None
        if self.key_ops is not None:
            ops = tuple(op for op in self.key_ops if op in ("verify", "encrypt", "wrapKey"))
        return JWK(_kty=self.kty, _crv=self.crv, _private=None, _public=self._public, _secret=None,
                   kid=self.kid, alg=self.alg, use=self.use, key_ops=ops)

    def to_dict(self, private: bool = False) -> dict[str, Any]:
        """The JWK JSON object; private members only when `private=True`."""
        if self._secret is not None and not private:
            raise InvalidKey("a symmetric key has no public form; pass private=True")
        if private and not self.is_private:
            raise InvalidKey("this key holds no private part")
        out: dict[str, Any] = {"kty": self.kty}
        if self.kid is not None:
            out["kid"] = self.kid
        if self.alg is not None:
            out["alg"] = self.alg
        if self.use is not None:
            out["use"] = self.use
        if self.key_ops is not None:
            out["key_ops"] = list(self.key_ops)
        out.update(self._params(private))
        return out

    def to_pem(self, private: bool = False, password: bytes | None = None) -> bytes:
        """PEM: PKCS#8 for private keys (encrypted when `password` is given), SPKI otherwise."""
        if self._secret is not None:
            raise InvalidKey("a symmetric key has no PEM form")
        if private:
            if self._private is None:
                raise InvalidKey("this key holds no private part")
            enc: serialization.KeySerializationEncryption = (
                serialization.BestAvailableEncryption(password)
                if password
                else serialization.NoEncryption()
            )
            return self._private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc
            )
        assert self._public is not None
        return self._public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def thumbprint(self) -> str:
        """RFC 7638 JWK thumbprint with SHA-256, base64url-encoded."""
        params = self._params(private=self._secret is not None)
        required = {"RSA": ("e", "n"), "EC": ("crv", "x", "y"), "OKP": ("crv", "x"), "oct": ("k",)}
        members = {name: params[name] for name in required[self.kty]}
        members["kty"] = self.kty
        canonical = dumps(dict(sorted(members.items())))
        return b64encode(hashlib.sha256(canonical).digest()).decode("ascii")

    def _params(self, private: bool) -> dict[str, str]:
        if self._secret is not None:
            return {"k": b64encode(self._secret).decode("ascii")}
        pub = self._public
        if isinstance(pub, rsa.RSAPublicKey):
            nums = pub.public_numbers()
            out = {"n": uint_b64encode(nums.n), "e": uint_b64encode(nums.e)}
            if private and isinstance(self._private, rsa.RSAPrivateKey):
                p = self._private.private_numbers()
                out.update(d=uint_b64encode(p.d), p=uint_b64encode(p.p), q=uint_b64encode(p.q),
                           dp=uint_b64encode(p.dmp1), dq=uint_b64encode(p.dmq1),
                           qi=uint_b64encode(p.iqmp))
            return out
        assert self.crv is not None
        if isinstance(pub, ec.EllipticCurvePublicKey):
            size = _EC_SIZES[self.crv]
            en = pub.public_numbers()
            out = {"crv": self.crv, "x": uint_b64encode(en.x, size),
                   "y": uint_b64encode(en.y, size)}
            if private and isinstance(self._private, ec.EllipticCurvePrivateKey):
                out["d"] = uint_b64encode(self._private.private_numbers().private_value, size)
            return out
        assert pub is not None
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        out = {"crv": self.crv, "x": b64encode(raw).decode("ascii")}
        if private and self._private is not None:
            d = self._private.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
            out["d"] = b64encode(d).decode("ascii")
        return out

    # -- algorithm binding --------------------------------------------------------------------

    def check(self, alg: str, operation: Operation, *, private: bool) -> KeyRequirement:
        """Raise unless this key may perform `operation` with `alg` (RFC 8725 §3.1).

        `private` says whether the operation needs the private part of an asymmetric key.
        Results are cached per key: keys are immutable.
        """
        cache_key = (alg, operation, private)
        req = ALL_KEY_ALGORITHMS.get(alg)
        if req is None:
            raise AlgorithmNotAllowed(f"unsupported algorithm {alg!r}")
        if cache_key in self._checked:
            return req
        if (self.kty, self.crv) not in req.families:
            raise InvalidKey(f"a {self.kty} key cannot be used with {alg}")
        # A `dir` key may name the content algorithm it is the CEK for (RFC 7520 §5.6); jwe
        # then holds it to that `enc`.
        direct = alg == "dir" and self.alg in JWE_CONTENT_ALGORITHMS
        if self.alg is not None and self.alg != alg and not direct:
            raise InvalidKey(f"the key is bound to {self.alg}, not {alg}")
        if self.use is not None and self.use != req.use:
            raise InvalidKey(f"the key's use is {self.use!r}")
        if self.key_ops is not None and operation not in self.key_ops:
            raise InvalidKey(f"the key's key_ops do not allow {operation!r}")
        if self._secret is not None:
            if len(self._secret) < req.min_secret_bytes:
                raise InvalidKey(f"{alg} needs a key of at least {req.min_secret_bytes} bytes")
            if req.exact_secret_bytes and len(self._secret) != req.exact_secret_bytes:
                raise InvalidKey(f"{alg} needs a key of exactly {req.exact_secret_bytes} bytes")
        elif private and self._private is None:
            raise InvalidKey("the operation needs a private key")
        self._checked.add(cache_key)
        return req

    def __repr__(self) -> str:
        kind = "private" if self.is_private else "public"
        return f"JWK(kty={self.kty!r}, crv={self.crv!r}, kid={self.kid!r}, alg={self.alg!r}, {kind})"


def _default_secret_bits(alg: str | None) -> int:
    req = ALL_KEY_ALGORITHMS.get(alg or "")
    if req is not None:
        nbytes = req.exact_secret_bytes or req.min_secret_bytes
        if nbytes:
            return nbytes * 8
    return 256


def _kty_of(key: PrivateKey | PublicKey | None) -> tuple[str, str | None]:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "RSA", None
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        crv = _EC_CRV_BY_NAME.get(key.curve.name)
        if crv is None:
            raise InvalidKey(f"unsupported EC curve {key.curve.name}")
        return "EC", crv
    for crv, cls in _OKP_PRIVATE.items():
        if isinstance(key, cls | _OKP_PUBLIC[crv]):
            return "OKP", crv
    raise InvalidKey("unsupported key type")


def _validate_metadata(
    kid: object, alg: object, use: object, key_ops: tuple[str, ...] | None
) -> None:
    if kid is not None and not isinstance(kid, str):
        raise InvalidKey("kid must be a string")
    if alg is not None and not isinstance(alg, str):
        raise InvalidKey("alg must be a string")
    if use is not None and use not in ("sig", "enc"):
        raise InvalidKey("use must be 'sig' or 'enc'")
    if key_ops is not None:
        if len(set(key_ops)) != len(key_ops) or not set(key_ops) <= _KEY_OPS:
            raise InvalidKey("key_ops must hold distinct registered operations")
        if use is not None:
            # RFC 7517 §4.3: use and key_ops SHOULD NOT both be present; if so they must agree.
            sig_ops = {"sign", "verify"}
            if (use == "sig") != set(key_ops) <= sig_ops:
                raise InvalidKey("use and key_ops disagree")


def _member(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise InvalidKey(f"JWK member {name!r} must be a string")
    return value


def _optional_str(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidKey(f"JWK member {name!r} must be a string")
    return value


def _import_dict(cls: type[JWK], data: Mapping[str, Any]) -> JWK:
    kty = _member(data, "kty")
    kid = _optional_str(data, "kid")
    alg = _optional_str(data, "alg")
    use = _optional_str(data, "use")
    ops_raw = data.get("key_ops")
    key_ops: tuple[str, ...] | None = None
    if ops_raw is not None:
        if not isinstance(ops_raw, list) or not all(isinstance(o, str) for o in ops_raw):
            raise InvalidKey("key_ops must be an array of strings")
        key_ops = tuple(ops_raw)
    meta: dict[str, Any] = {"kid": kid, "alg": alg, "use": use, "key_ops": key_ops}

    if kty == "oct":
        secret = b64decode(_member(data, "k"), "k")
        if not secret:
            raise InvalidKey("an oct key must not be empty")
        return cls._from_parts("oct", secret=secret, **meta)
    if kty == "RSA":
        return cls._from_parts("RSA", **_import_rsa(data), **meta)
    if kty == "EC":
        return cls._from_parts("EC", **_import_ec(data), **meta)
    if kty == "OKP":
        return cls._from_parts("OKP", **_import_okp(data), **meta)
    raise InvalidKey(f"unsupported key type {kty!r}")


def _import_rsa(data: Mapping[str, Any]) -> dict[str, Any]:
    public = rsa.RSAPublicNumbers(b64decode_uint(data.get("e"), "e"),
                                  b64decode_uint(data.get("n"), "n"))
    check_rsa_public_numbers(public)
    if "d" not in data:
        if any(m in data for m in _PRIVATE_MEMBERS):
            raise InvalidKey("RSA private members without 'd'")
        return {"public": public.public_key()}
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
        private = rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, public).private_key()
    except ValueError:
        raise InvalidKey("inconsistent RSA private key") from None
    return {"private": private}


def _import_ec(data: Mapping[str, Any]) -> dict[str, Any]:
    crv = _member(data, "crv")
    if crv not in _EC_CURVES:
        raise InvalidKey(f"unsupported EC curve {crv!r}")
    size = _EC_SIZES[crv]
    coords = []
    for name in ("x", "y"):
        raw = b64decode(_member(data, name), name)
        if len(raw) != size:
            raise InvalidKey(f"EC {name} must be {size} bytes for {crv}")
        coords.append(int.from_bytes(raw, "big"))
    numbers = ec.EllipticCurvePublicNumbers(coords[0], coords[1], _EC_CURVES[crv])
    try:
        public = numbers.public_key()  # validates that the point lies on the curve
    except ValueError:
        raise InvalidKey("EC point is not on the curve") from None
    if "d" not in data:
        return {"public": public}
    d_raw = b64decode(_member(data, "d"), "d")
    if len(d_raw) != size:
        raise InvalidKey(f"EC d must be {size} bytes for {crv}")
    try:
        private = ec.derive_private_key(int.from_bytes(d_raw, "big"), _EC_CURVES[crv])
    except ValueError:
        raise InvalidKey("EC private value out of range") from None
    if private.public_key().public_numbers() != numbers:
        raise InvalidKey("EC private key does not match its public key")
    return {"private": private}


def _import_okp(data: Mapping[str, Any]) -> dict[str, Any]:
    crv = _member(data, "crv")
    if crv not in _OKP_PUBLIC:
        raise InvalidKey(f"unsupported OKP curve {crv!r}")
    size = _OKP_SIZES[crv]
    x = b64decode(_member(data, "x"), "x")
    if len(x) != size:
        raise InvalidKey(f"OKP x must be {size} bytes for {crv}")
    public = _OKP_PUBLIC[crv].from_public_bytes(x)
    if "d" not in data:
        return {"public": public}
    d = b64decode(_member(data, "d"), "d")
    if len(d) != size:
        raise InvalidKey(f"OKP d has the wrong length for {crv}")
    private = _OKP_PRIVATE[crv].from_private_bytes(d)
    derived = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    if derived != x:
        raise InvalidKey("OKP private key does not match its public key")
    return {"private": private}
