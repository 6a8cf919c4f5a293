"""JSON Web Key (RFC 7517, RFC 7518 §6, RFC 8037 §2) and thumbprints (RFC 7638).

A `JWK` wraps one `cryptography` key (or one secret) with its JWK metadata, and it is immutable:
what a key may do is decided once, by its type, curve and metadata, and is then cached. Imports are
strict (see `_jwk_params`); `alg`, `use` and `key_ops` bind the key (RFC 7517 §4.2-4.4).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from collections.abc import Callable, Mapping
from typing import Any, Literal, get_args

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from authgate.jose._algorithms import ALL_KEY_ALGORITHMS, JWE_CONTENT_ALGORITHMS, KeyRequirement
from authgate.jose._b64 import b64encode
from authgate.jose._json import dumps
from authgate.jose._jwk_params import (
    EC_CURVES,
    OKP_PRIVATE,
    KeyMaterial,
    PrivateKey,
    PublicKey,
    export_params,
    material_of,
    parse_params,
)
from authgate.jose._key_checks import MIN_RSA_BITS
from authgate.jose.errors import AlgorithmNotAllowed, InvalidKey, MalformedToken

__all__ = [
    "JWK",
    "KeyRequirement",
    "Operation",
    "PrivateKey",
    "PublicKey",
    "algorithms_for",
    "key_requirement",
]

Operation = Literal[
    "sign", "verify", "encrypt", "decrypt", "wrapKey", "unwrapKey", "deriveKey", "deriveBits"
]
_SIG_OPS = frozenset({"sign", "verify"})
_REGISTERED_OPS = frozenset(get_args(Operation))
_PUBLIC_OPS = frozenset({"verify", "encrypt", "wrapKey"})
# RFC 7638 §3.2: the required members of each key type, in lexicographic order.
_THUMBPRINT_MEMBERS = {
    "EC": ("crv", "x", "y"),
    "OKP": ("crv", "x"),
    "RSA": ("e", "n"),
    "oct": ("k",),
}
_DER = serialization.Encoding.DER
_SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
_DEFAULT_CRV = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521", "ES256K": "secp256k1"}


class JWK:
    """One key with its JWK metadata (`kty`, `crv`, `kid`, `alg`, `use`, `key_ops`, `x5c`).

    Build it with `generate`, `from_dict`, `from_pem` or `from_secret`; the constructor is private.
    Instances are immutable.
    """

    __slots__ = (
        "_checked",
        "_private",
        "_public",
        "_secret",
        "_signers",
        "_verifiers",
        "alg",
        "crv",
        "key_ops",
        "kid",
        "kty",
        "use",
        "x5c",
    )

    kty: str
    crv: str | None
    kid: str | None
    alg: str | None
    use: str | None
    key_ops: tuple[str, ...] | None
    x5c: tuple[str, ...] | None
    _private: PrivateKey | None
    _public: PublicKey | None
    _secret: bytes | None
    # Per-algorithm prepared operations (see `_signatures`), filled once the binding is checked.
    _verifiers: dict[str, Callable[[bytes, bytes], bool]]
    _signers: dict[str, Callable[[bytes], bytes]]
    _checked: set[tuple[str, str, bool]]

    def __init__(
        self,
        material: KeyMaterial,
        *,
        kid: str | None = None,
        alg: str | None = None,
        use: str | None = None,
        key_ops: tuple[str, ...] | None = None,
        x5c: tuple[str, ...] | None = None,
    ) -> None:
        _validate_metadata(kid, alg, use, key_ops)
        init = object.__setattr__
        init(self, "kty", material.kty)
        init(self, "crv", material.crv)
        init(self, "_private", material.private)
        init(self, "_public", material.public)
        init(self, "_secret", material.secret)
        init(self, "kid", kid)
        init(self, "alg", alg)
        init(self, "use", use)
        init(self, "key_ops", key_ops)
        init(self, "x5c", x5c)
        init(self, "_verifiers", {})
        init(self, "_signers", {})
        init(self, "_checked", set())

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("JWK objects are immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("JWK objects are immutable")

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

        RSA: `size` bits (default 2048, at least 2048). EC: `crv` P-256, P-384, P-521, secp256k1
        (default: the curve `alg` needs, else P-256). OKP: `crv` Ed25519 (default), Ed448, X25519,
        X448. oct: `size` bits (default: what `alg` needs, else 256). A given `alg` must suit the
        key.
        """
        if kty == "RSA":
            bits = size or 2048
            if bits < MIN_RSA_BITS:
                raise InvalidKey(f"RSA keys must be at least {MIN_RSA_BITS} bits")
            material = material_of(rsa.generate_private_key(public_exponent=65537, key_size=bits))
        elif kty == "EC":
            crv = crv or _DEFAULT_CRV.get(alg or "", "P-256")
            if crv not in EC_CURVES:
                raise InvalidKey(f"unsupported EC curve {crv!r}")
            material = material_of(ec.generate_private_key(EC_CURVES[crv]))
        elif kty == "OKP":
            crv = crv or ("Ed448" if alg == "Ed448" else "Ed25519")
            if crv not in OKP_PRIVATE:
                raise InvalidKey(f"unsupported OKP curve {crv!r}")
            material = material_of(OKP_PRIVATE[crv].generate())
        elif kty == "oct":
            bits = size or _default_secret_bits(alg)
            if bits % 8 or bits < 128:
                raise InvalidKey("oct key size must be a multiple of 8 and at least 128 bits")
            material = material_of(secret=secrets.token_bytes(bits // 8))
        else:
            raise InvalidKey(f"unsupported key type {kty!r}")
        req = ALL_KEY_ALGORITHMS.get(alg or "")
        if req is not None and (material.kty, material.crv) not in req.families:
            raise InvalidKey(f"a {material.kty} key cannot be used with {alg}")
        return cls._with_default_kid(material, kid=kid, alg=alg, use=use)

    @classmethod
    def from_secret(
        cls,
        secret: bytes,
        *,
        kid: str | None = None,
        alg: str | None = None,
        use: str | None = None,
    ) -> JWK:
        """Wrap raw secret bytes as an `oct` key (for HMAC or AES algorithms).

        An asymmetric key in any encoding an operator might have stored it in (PEM, DER, base64 or
        hex of them, OpenSSH, X.509, JWK JSON...) is refused (key confusion), as is a secret longer
        than 8192 bytes.
        """
        if not isinstance(secret, bytes):
            raise InvalidKey("a secret must be bytes")
        return cls(material_of(secret=secret), kid=kid, alg=alg, use=use)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JWK:
        """Import a JWK from its JSON object form; raise `InvalidKey` on anything malformed."""
        if not isinstance(data, Mapping):
            raise InvalidKey("a JWK must be a JSON object")
        try:
            kty = data.get("kty")
            if not isinstance(kty, str):
                raise InvalidKey("JWK member 'kty' must be a string")
            material = parse_params(kty, data)
            ops = data.get("key_ops")
            if ops is not None and not (
                isinstance(ops, list) and all(isinstance(op, str) for op in ops)
            ):
                raise InvalidKey("key_ops must be an array of strings")
            x5c = data.get("x5c")
            return cls(
                material,
                kid=_optional_str(data, "kid"),
                alg=_optional_str(data, "alg"),
                use=_optional_str(data, "use"),
                key_ops=None if ops is None else tuple(ops),
                x5c=None if x5c is None else _check_x5c(x5c, material),
            )
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
        try:
            if b"PRIVATE KEY-----" in raw:
                loaded: Any = serialization.load_pem_private_key(raw, password=password)
                material = material_of(private=loaded)
            else:
                if b"BEGIN CERTIFICATE-----" in raw:
                    loaded = x509.load_pem_x509_certificate(raw).public_key()
                else:
                    loaded = serialization.load_pem_public_key(raw)
                material = material_of(public=loaded)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise InvalidKey("not a supported PEM key") from None
        return cls._with_default_kid(material, kid=kid, alg=alg, use=use)

    @classmethod
    def _with_default_kid(
        cls, material: KeyMaterial, *, kid: str | None, alg: str | None, use: str | None
    ) -> JWK:
        if kid is None:
            kid = _thumbprint(material)
        return cls(material, kid=kid, alg=alg, use=use)

    # -- properties and export ----------------------------------------------------------------

    @property
    def is_private(self) -> bool:
        """True for private asymmetric keys and for secrets."""
        return self._private is not None or self._secret is not None

    @property
    def _material(self) -> KeyMaterial:
        return KeyMaterial(self.kty, self.crv, self._private, self._public, self._secret)

    def public(self) -> JWK:
        """The public part as a new JWK (same kid, alg, use; key_ops limited to public ones)."""
        if self._public is None:
            raise InvalidKey("a symmetric key has no public part")
        ops = None
        if self.key_ops is not None:
            ops = tuple(op for op in self.key_ops if op in _PUBLIC_OPS)
        return JWK(
            KeyMaterial(self.kty, self.crv, None, self._public, None),
            kid=self.kid,
            alg=self.alg,
            use=self.use,
            key_ops=ops,
            x5c=self.x5c,
        )

    def to_dict(self, private: bool = False) -> dict[str, Any]:
        """The JWK JSON object; private members only when `private=True`."""
        if self._secret is not None and not private:
            raise InvalidKey("a symmetric key has no public form; pass private=True")
        if private and not self.is_private:
            raise InvalidKey("this key holds no private part")
        out: dict[str, Any] = {"kty": self.kty}
        for name in ("kid", "alg", "use"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.key_ops is not None:
            out["key_ops"] = list(self.key_ops)
        if self.x5c is not None:
            out["x5c"] = list(self.x5c)
        out.update(export_params(self._material, private))
        return out

    def to_pem(self, private: bool = False, password: bytes | None = None) -> bytes:
        """PEM: PKCS#8 for private keys (encrypted when `password` is given), SPKI otherwise."""
        if self._secret is not None or self._public is None:
            raise InvalidKey("a symmetric key has no PEM form")
        if not private:
            return self._public.public_bytes(serialization.Encoding.PEM, _SPKI)
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

    def thumbprint(self) -> str:
        """RFC 7638 JWK thumbprint with SHA-256, base64url-encoded."""
        return _thumbprint(self._material)

    # -- algorithm binding --------------------------------------------------------------------

    def check(self, alg: str, operation: Operation, *, private: bool) -> KeyRequirement:
        """Raise unless this key may perform `operation` with `alg` (RFC 8725 §3.1).

        `private` says whether the operation needs the private part of an asymmetric key.
        Results are cached per key: keys are immutable.
        """
        req = ALL_KEY_ALGORITHMS.get(alg)
        if req is None:
            raise AlgorithmNotAllowed(f"unsupported algorithm {alg!r}")
        cache_key = (alg, operation, private)
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
        return (
            f"JWK(kty={self.kty!r}, crv={self.crv!r}, kid={self.kid!r}, alg={self.alg!r}, {kind})"
        )


def _thumbprint(material: KeyMaterial) -> str:
    params = export_params(material, private=material.secret is not None)
    members = {name: params[name] for name in _THUMBPRINT_MEMBERS[material.kty]}
    members["kty"] = material.kty
    canonical = dumps(dict(sorted(members.items())))
    return b64encode(hashlib.sha256(canonical).digest()).decode("ascii")


def _default_secret_bits(alg: str | None) -> int:
    req = ALL_KEY_ALGORITHMS.get(alg or "")
    if req is not None and (req.exact_secret_bytes or req.min_secret_bytes):
        return (req.exact_secret_bytes or req.min_secret_bytes) * 8
    if alg in JWE_CONTENT_ALGORITHMS:  # a `dir` key for this content encryption
        return JWE_CONTENT_ALGORITHMS[alg] * 8
    return 256


def _optional_str(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidKey(f"JWK member {name!r} must be a string")
    return value


def _validate_metadata(
    kid: object, alg: object, use: object, key_ops: tuple[str, ...] | None
) -> None:
    # Unregistered `use` and `key_ops` values are allowed (RFC 7517 §4.2, §4.3: "Other values MAY
    # be used"); they never grant a registered operation. An unknown `alg` leaves the key unusable.
    for name, value in (("kid", kid), ("alg", alg), ("use", use)):
        if value is not None and not isinstance(value, str):
            raise InvalidKey(f"{name} must be a string")
    if key_ops is None:
        return
    if len(set(key_ops)) != len(key_ops):
        raise InvalidKey("key_ops must not repeat an operation")  # RFC 7517 §4.3
    registered = set(key_ops) & _REGISTERED_OPS
    # RFC 7517 §4.3: when both are present, use and key_ops must agree.
    if (use == "sig" and registered - _SIG_OPS) or (use == "enc" and registered & _SIG_OPS):
        raise InvalidKey("use and key_ops disagree")


def _check_x5c(value: object, material: KeyMaterial) -> tuple[str, ...]:
    """RFC 7517 §4.7: standard-base64 DER certificates; the first one certifies this very key."""
    if not (isinstance(value, list) and value and all(isinstance(c, str) for c in value)):
        raise InvalidKey("x5c must be a non-empty array of strings")
    if material.public is None:
        raise InvalidKey("x5c is only meaningful for asymmetric keys")
    try:
        certificate = x509.load_der_x509_certificate(base64.b64decode(value[0], validate=True))
        certified = certificate.public_key().public_bytes(_DER, _SPKI)
    except (binascii.Error, ValueError, UnsupportedAlgorithm):
        raise InvalidKey("x5c[0] is not a DER certificate") from None
    if certified != material.public.public_bytes(_DER, _SPKI):
        raise InvalidKey("x5c[0] certifies a different key")
    return tuple(value)


# -- the algorithm table, read-only ---------------------------------------------------------------


def key_requirement(alg: str) -> KeyRequirement:
    """What a key must be to serve `alg`, a JWS or JWE key management algorithm.

    Its `use` ("sig" or "enc"), the `families` ((kty, crv) pairs) it accepts and, for `oct` keys,
    `min_secret_bytes`/`exact_secret_bytes`. `AlgorithmNotAllowed` for any other name. A JWK's
    own `alg`, `use` and `key_ops` narrow what it may do further (`JWK.check`).
    """
    requirement = ALL_KEY_ALGORITHMS.get(alg) if isinstance(alg, str) else None
    if requirement is None:
        raise AlgorithmNotAllowed(f"unsupported algorithm {alg!r}")
    return requirement


def algorithms_for(kty: str, crv: str | None = None, *, use: str | None = None) -> tuple[str, ...]:
    """The algorithms a key of type `kty` (and curve `crv`) can serve, in a fixed order.

    `use` ("sig" or "enc") keeps one kind. A JWK's own `alg`, `use` and `key_ops` narrow the list
    further (`JWK.check`).
    """
    family = (kty, crv)
    return tuple(
        alg
        for alg, requirement in ALL_KEY_ALGORITHMS.items()
        if family in requirement.families and (use is None or requirement.use == use)
    )
