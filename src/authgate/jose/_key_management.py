"""JWE key management: RFC 7518 §4.3-4.8 and RFC 8037 §3.2 (ECDH-ES on X25519 and X448).

How each `alg` produces the Content Encryption Key (CEK) on the sender's side and recovers it on the
recipient's side:

- RSA-OAEP, RSA-OAEP-256 (§4.3): the CEK encrypted to the recipient's RSA key.
- A128KW, A192KW, A256KW (§4.4): the CEK wrapped with AES Key Wrap (RFC 3394).
- dir (§4.5): the shared key is the CEK; it must be exactly as long as the `enc` needs.
- ECDH-ES (§4.6): ECDH with a fresh ephemeral key (`epk`) on the recipient key's curve, then the
  Concat KDF (§4.6.2) over the shared secret and `apu`/`apv`: the derived key is the CEK itself, or,
  for ECDH-ES+A128KW/A192KW/A256KW, the key that wraps a random CEK.
- A128GCMKW, A192GCMKW, A256GCMKW (§4.7): the CEK encrypted with AES-GCM (`iv` and `tag` headers).

The recipient never reports *why* an encrypted key did not yield a CEK: bad OAEP padding, a failed
key-wrap integrity check, a wrong GCM tag or a CEK of the wrong length all give a random CEK, and
the token then fails at the content tag like any other tampering (RFC 7516 §11.5, RFC 3218). An
`epk` must be a public key of the recipient key's own type and curve: EC points are validated on
import (invalid-curve attacks) and X25519/X448 low-order points, whose shared secret is all zeros,
are refused (RFC 8037 §4).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, x448, x25519
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_wrap,
)

from authgate.jose._algorithms import JWE_CONTENT_ALGORITHMS, JWE_KEY_ALGORITHMS
from authgate.jose._b64 import b64decode, b64encode
from authgate.jose._content_encryption import GCM_IV_SIZE, gcm_decrypt, gcm_encrypt
from authgate.jose.errors import (
    AlgorithmNotAllowed,
    DecryptionFailed,
    InvalidKey,
    JoseError,
    MalformedToken,
)
from authgate.jose.jwk import JWK, Operation, PrivateKey, PublicKey

__all__ = [
    "MAX_PARTY_INFO",
    "OPERATIONS",
    "WrappedKey",
    "aes_unwrap",
    "check_direct_key",
    "concat_kdf",
    "ecdh_shared_secret",
    "is_direct",
    "rsa_oaep_decrypt",
    "unwrap",
    "wrap",
]

# apu/apv are hashed into the key derivation; they name parties or carry nonces, never more.
MAX_PARTY_INFO = 512

_OAEP = {
    "RSA-OAEP": padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None),  # noqa: S303 - RFC 7518 §4.3 defines RSA-OAEP with SHA-1
    "RSA-OAEP-256": padding.OAEP(
        mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None
    ),
}
_KEY_WRAP = ("A128KW", "A192KW", "A256KW")
_GCM_KEY_WRAP = ("A128GCMKW", "A192GCMKW", "A256GCMKW")
_ECDH_KEY_WRAP = {
    "ECDH-ES+A128KW": "A128KW",
    "ECDH-ES+A192KW": "A192KW",
    "ECDH-ES+A256KW": "A256KW",
}

# The JWK operation (RFC 7517 §4.3 key_ops) each side performs, as (sender, recipient).
OPERATIONS: dict[str, tuple[Operation, Operation]] = {
    **dict.fromkeys((*_OAEP, *_KEY_WRAP, *_GCM_KEY_WRAP), ("wrapKey", "unwrapKey")),
    "dir": ("encrypt", "decrypt"),
    **dict.fromkeys(("ECDH-ES", *_ECDH_KEY_WRAP), ("deriveKey", "deriveKey")),
}


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """The sender's result: the CEK, the JWE Encrypted Key, and header members to protect."""

    cek: bytes
    encrypted_key: bytes
    header: dict[str, Any] = field(default_factory=dict)


def is_direct(alg: str) -> bool:
    """True when the JWE Encrypted Key is empty (RFC 7516 §5.2 step 10)."""
    return alg in ("dir", "ECDH-ES")


def check_direct_key(key: JWK, enc: str) -> None:
    """Raise `InvalidKey` unless `key` can be the CEK of `enc` (RFC 7518 §4.5)."""
    if key.alg not in (None, "dir", enc):
        raise InvalidKey(f"the key is bound to {key.alg}, not {enc}")
    size = JWE_CONTENT_ALGORITHMS[enc]
    if len(_secret(key)) != size:
        raise InvalidKey(f"dir with {enc} needs a key of exactly {size} bytes")


def concat_kdf(shared_secret: bytes, algorithm_id: str, apu: bytes, apv: bytes, size: int) -> bytes:
    """The Concat KDF of RFC 7518 §4.6.2 (NIST SP 800-56A) with SHA-256; `size` in bytes."""
    other_info = b"".join(
        (
            _length_prefixed(algorithm_id.encode("ascii")),
            _length_prefixed(apu),
            _length_prefixed(apv),
            (size * 8).to_bytes(4, "big"),  # SuppPubInfo: keydatalen in bits
        )
    )
    return ConcatKDFHash(hashes.SHA256(), size, other_info).derive(shared_secret)


def wrap(
    alg: str,
    enc: str,
    key: JWK,
    header: Mapping[str, Any],
    *,
    cek: bytes | None = None,
    ephemeral_key: JWK | None = None,
    wrap_iv: bytes | None = None,
) -> WrappedKey:
    """Produce the CEK and the encrypted key for `alg` (the key has been checked for `alg`).

    `header` is the caller's header (read for `apu`/`apv`). `cek`, `ephemeral_key` and `wrap_iv`
    replace fresh random values; they exist so that tests can reproduce published examples.
    """
    cek_size = JWE_CONTENT_ALGORITHMS[enc]
    if alg == "dir":
        check_direct_key(key, enc)
        return WrappedKey(_secret(key), b"")
    if alg == "ECDH-ES" or alg in _ECDH_KEY_WRAP:
        epk = ephemeral_key or JWK.generate(key.kty, crv=key.crv)
        shared = _shared_secret(epk._private, key._public)
        if shared is None:
            raise InvalidKey("the recipient's key is not a usable ECDH public key")
        members = epk.public().to_dict()
        added: dict[str, Any] = {
            "epk": {name: members[name] for name in ("kty", "crv", "x", "y") if name in members}
        }
        apu, apv = _party_info(header)
        if alg == "ECDH-ES":
            return WrappedKey(concat_kdf(shared, enc, apu, apv, cek_size), b"", added)
        kek = concat_kdf(shared, alg, apu, apv, _secret_size(_ECDH_KEY_WRAP[alg]))
        cek = cek or secrets.token_bytes(cek_size)
        return WrappedKey(cek, aes_key_wrap(kek, cek), added)
    cek = cek or secrets.token_bytes(cek_size)
    if alg in _OAEP:
        if not isinstance(key._public, rsa.RSAPublicKey):
            raise InvalidKey(f"{alg} needs an RSA key")
        return WrappedKey(cek, key._public.encrypt(cek, _OAEP[alg]))
    if alg in _KEY_WRAP:
        return WrappedKey(cek, aes_key_wrap(_secret(key), cek))
    _require(alg in _GCM_KEY_WRAP, alg)
    iv = wrap_iv or secrets.token_bytes(GCM_IV_SIZE)
    encrypted_key, tag = gcm_encrypt(_secret(key), iv, cek, b"")
    # Member order as in RFC 7520 §5.7, so that the example can be reproduced byte for byte.
    params = {"tag": b64encode(tag).decode("ascii"), "iv": b64encode(iv).decode("ascii")}
    return WrappedKey(cek, encrypted_key, params)


def unwrap(alg: str, enc: str, key: JWK, header: Mapping[str, Any], encrypted_key: bytes) -> bytes:
    """Recover the CEK for `enc` (the key has been checked for `alg`; `dir` keys by
    `check_direct_key`). Failures that depend on the key yield a random CEK (see the module doc)."""
    cek_size = JWE_CONTENT_ALGORITHMS[enc]
    if is_direct(alg) and encrypted_key:
        raise MalformedToken(f"the encrypted key must be empty with {alg}")
    if alg == "dir":
        return _secret(key)
    if alg == "ECDH-ES" or alg in _ECDH_KEY_WRAP:
        shared = ecdh_shared_secret(key, header.get("epk"))
        apu, apv = _party_info(header)
        if alg == "ECDH-ES":
            return concat_kdf(shared, enc, apu, apv, cek_size)
        kek = concat_kdf(shared, alg, apu, apv, _secret_size(_ECDH_KEY_WRAP[alg]))
        return _or_random(aes_unwrap(kek, encrypted_key), cek_size)
    if alg in _OAEP:
        return _or_random(rsa_oaep_decrypt(key, alg, encrypted_key), cek_size)
    if alg in _KEY_WRAP:
        return _or_random(aes_unwrap(_secret(key), encrypted_key), cek_size)
    _require(alg in _GCM_KEY_WRAP, alg)
    iv = _header_bytes(header, "iv")
    tag = _header_bytes(header, "tag")
    try:
        cek = gcm_decrypt(_secret(key), iv, encrypted_key, tag, b"")
    except DecryptionFailed:
        cek = None
    return _or_random(cek, cek_size)


def _require(supported: bool, alg: str) -> None:
    if not supported:
        raise AlgorithmNotAllowed(f"unsupported JWE algorithm {alg!r}")


def _or_random(cek: bytes | None, size: int) -> bytes:
    # RFC 7516 §11.5: never distinguish a bad encrypted key; carry on with a random CEK.
    if cek is None or len(cek) != size:
        return secrets.token_bytes(size)
    return cek


def _secret(key: JWK) -> bytes:
    if key._secret is None:
        raise InvalidKey("a symmetric (oct) key is required")
    return key._secret


def rsa_oaep_decrypt(key: JWK, alg: str, ciphertext: bytes) -> bytes | None:
    """RSAES-OAEP decryption for RSA-OAEP (SHA-1) or RSA-OAEP-256; None on any failure."""
    if not isinstance(key._private, rsa.RSAPrivateKey):
        raise InvalidKey(f"{alg} needs an RSA private key")
    try:
        return key._private.decrypt(ciphertext, _OAEP[alg])
    except ValueError:
        return None


def aes_unwrap(kek: bytes, wrapped: bytes) -> bytes | None:
    """AES Key Unwrap (RFC 3394); None when the integrity check or the sizes fail."""
    try:
        return aes_key_unwrap(kek, wrapped)
    except (InvalidUnwrap, ValueError):
        return None


def ecdh_shared_secret(key: JWK, epk: object) -> bytes:
    """The recipient's ECDH shared secret Z from its private `key` and the header's `epk`.

    Raises `MalformedToken` when `epk` is not a JSON object and `DecryptionFailed` when it is not
    a valid public key on the recipient key's curve or gives no usable secret.
    """
    shared = _shared_secret(key._private, _ephemeral_public(key, epk))
    if shared is None:
        raise DecryptionFailed()
    return shared


def _secret_size(alg: str) -> int:
    return JWE_KEY_ALGORITHMS[alg].exact_secret_bytes


def _length_prefixed(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def _party_info(header: Mapping[str, Any]) -> tuple[bytes, bytes]:
    values = []
    for name in ("apu", "apv"):
        raw = header.get(name)
        if raw is None:
            values.append(b"")
            continue
        if not isinstance(raw, str):
            raise MalformedToken(f"header {name!r} must be a base64url string")
        decoded = b64decode(raw, name)
        if len(decoded) > MAX_PARTY_INFO:
            raise MalformedToken(f"header {name!r} is longer than {MAX_PARTY_INFO} bytes")
        values.append(decoded)
    return values[0], values[1]


def _header_bytes(header: Mapping[str, Any], name: str) -> bytes:
    raw = header.get(name)
    if not isinstance(raw, str):
        raise MalformedToken(f"header {name!r} is required and must be a base64url string")
    return b64decode(raw, name)


def _ephemeral_public(key: JWK, epk: object) -> PublicKey:
    if not isinstance(epk, dict):
        raise MalformedToken("header 'epk' is required and must be a JWK object")
    # Same type and curve as the recipient's key, public members only: a point on another curve
    # is the invalid-curve attack; checked before import so no foreign key type is ever parsed.
    if epk.get("kty") != key.kty or epk.get("crv") != key.crv or "d" in epk:
        raise DecryptionFailed()
    try:
        public = JWK.from_dict(epk)._public
    except (JoseError, ValueError, TypeError):
        raise DecryptionFailed() from None
    if public is None:
        raise DecryptionFailed()
    return public


def _shared_secret(private: PrivateKey | None, public: PublicKey | None) -> bytes | None:
    """ECDH: the x-coordinate (EC) or the X25519/X448 output; None when there is none."""
    try:
        if isinstance(private, ec.EllipticCurvePrivateKey) and isinstance(
            public, ec.EllipticCurvePublicKey
        ):
            return private.exchange(ec.ECDH(), public)
        if isinstance(private, x25519.X25519PrivateKey) and isinstance(
            public, x25519.X25519PublicKey
        ):
            return private.exchange(public)
        if isinstance(private, x448.X448PrivateKey) and isinstance(public, x448.X448PublicKey):
            return private.exchange(public)
    except ValueError:  # a low-order X25519/X448 point: the shared secret would be all zeros
        return None
    return None
