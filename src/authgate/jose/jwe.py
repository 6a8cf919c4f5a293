"""JSON Web Encryption, compact serialization: RFC 7516 §3.1, §5.1, §5.2 and §7.1, with the
algorithms of RFC 7518 §4-5 and ECDH-ES on X25519/X448 (RFC 8037 §3.2).

Decryption is driven by the caller: `algorithms` (key management) and `encryptions` (content
encryption) are required, explicit, non-empty allow-lists, and the header's `alg` and `enc` are held
to them before any cryptography. The key comes from the caller (`JWK` or `JWKSet`); the header's
`kid` only looks a key up by exact match, and `jwk`, `jku`, `x5u` and `x5c` never select or supply a
key (RFC 8725 §3.10). Tokens over `max_size` are rejected before any decoding. The protected header
is the additional authenticated data (RFC 7516 §5.1 step 14). Every failure to recover the content
raises the same `DecryptionFailed`, whatever its cause (RFC 7516 §11.4-11.5).

Deliberately absent, and rejected with `AlgorithmNotAllowed`:

- RSA1_5 (RSAES-PKCS1-v1_5): its padding is an oracle for Bleichenbacher's attack (RFC 8725 §3.2).
- PBES2-*: the token's `p2c` would set the recipient's PBKDF2 work factor, so one token could cost
  seconds of CPU to reject (CVE-2022-36083, CVE-2023-6681).
- `zip` (compressed content): a small token can inflate to gigabytes (CVE-2024-28102,
  CVE-2024-28176), and compressing secrets next to attacker-chosen data leaks them (CRIME). A token
  carrying `zip` is rejected before any cryptography; `encrypt` never compresses.

Also out of scope: the JSON serializations (general and flattened) and multiple recipients. No JWE
extension is understood, so a `crit` header is always rejected (RFC 7516 §4.1.13).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from authgate.jose import _key_management
from authgate.jose._algorithms import JWE_KEY_ALGORITHMS
from authgate.jose._b64 import b64decode, b64encode
from authgate.jose._content_encryption import CONTENT_CIPHERS
from authgate.jose._json import dumps, loads_object
from authgate.jose.errors import (
    AlgorithmNotAllowed,
    DecryptionFailed,
    InvalidKey,
    KeyNotFound,
    MalformedToken,
)
from authgate.jose.jwk import JWK
from authgate.jose.jwkset import JWKSet, candidate_keys
from authgate.jose.jws import MAX_TOKEN_SIZE, _as_ascii

__all__ = ["MAX_TOKEN_SIZE", "DecryptedJWE", "decrypt", "encrypt"]

# Header members the key management algorithm writes; a caller's header may not set them.
_GENERATED = ("epk", "iv", "tag")


@dataclass(frozen=True, slots=True)
class DecryptedJWE:
    """A decrypted JWE: its protected header and its plaintext."""

    header: dict[str, Any]
    plaintext: bytes


def encrypt(
    plaintext: bytes, key: JWK, alg: str, enc: str, header: Mapping[str, Any] | None = None
) -> str:
    """Encrypt `plaintext` to `key` and return the compact serialization.

    `alg` is the key management algorithm, `enc` the content encryption. The key's `kid` is added to
    the header unless `header` sets one. `header` may add members (`typ`, `cty`, `apu`/`apv` for
    ECDH-ES...) but not `alg` or `enc` with other values, nor the generated `epk`, `iv` or `tag`.
    """
    return _encrypt(plaintext, key, alg, enc, header)


def _encrypt(
    plaintext: bytes,
    key: JWK,
    alg: str,
    enc: str,
    header: Mapping[str, Any] | None,
    *,
    _cek: bytes | None = None,
    _iv: bytes | None = None,
    _epk: JWK | None = None,
    _wrap_iv: bytes | None = None,
) -> str:
    """`encrypt`; the `_` arguments replace random values, to reproduce published examples."""
    if not isinstance(plaintext, bytes):
        raise TypeError("plaintext must be bytes")
    for name, table in ((alg, JWE_KEY_ALGORITHMS), (enc, CONTENT_CIPHERS)):
        if name not in table:
            raise AlgorithmNotAllowed(_unsupported(name))
    key.check(alg, _key_management.OPERATIONS[alg][0], private=False)
    extra = dict(header or {})
    for name, value in (("alg", alg), ("enc", enc)):
        if extra.pop(name, value) != value:
            raise MalformedToken(f"header {name!r} conflicts with the {name} argument")
    for name in _GENERATED:
        if name in extra:
            raise MalformedToken(f"header {name!r} is set by the key management algorithm")
    _validate_header({**extra, "alg": alg, "enc": enc})
    wrapped = _key_management.wrap(
        alg, enc, key, extra, cek=_cek, ephemeral_key=_epk, wrap_iv=_wrap_iv
    )
    protected: dict[str, Any] = {"alg": alg}
    if key.kid is not None:
        protected["kid"] = key.kid
    protected.update(extra)
    protected.update(wrapped.header)
    protected["enc"] = enc
    header_segment = b64encode(dumps(protected))
    cipher = CONTENT_CIPHERS[enc]
    iv = _iv or secrets.token_bytes(cipher.iv_size)
    ciphertext, tag = cipher.encrypt(wrapped.cek, iv, plaintext, header_segment)
    segments = (wrapped.encrypted_key, iv, ciphertext, tag)
    return b".".join((header_segment, *map(b64encode, segments))).decode("ascii")


def decrypt(
    token: str | bytes,
    key: JWK | JWKSet,
    *,
    algorithms: Iterable[str],
    encryptions: Iterable[str],
    max_size: int = MAX_TOKEN_SIZE,
) -> DecryptedJWE:
    """Decrypt a compact JWE with `key` (or a key from the set).

    `algorithms` is the allow-list of key management algorithms, `encryptions` that of content
    encryption algorithms; both are required and non-empty. Returns the protected header and the
    plaintext, or raises a `JoseError` subclass.
    """
    allowed_algs = _allow_list(algorithms, JWE_KEY_ALGORITHMS, "algorithms")
    allowed_encs = _allow_list(encryptions, CONTENT_CIPHERS, "encryptions")
    data = _as_ascii(token, max_size)
    if data.lstrip()[:1] == b"{":
        raise MalformedToken("only the JWE compact serialization is supported, not JSON")
    parts = data.split(b".")
    if len(parts) != 5:
        raise MalformedToken("a compact JWE has exactly five segments")
    header_segment = parts[0]
    header = loads_object(b64decode(header_segment, "header"), "header")
    alg, enc = _validate_header(header)
    if alg not in allowed_algs:
        raise AlgorithmNotAllowed(_refusal(alg, JWE_KEY_ALGORITHMS, "key management algorithm"))
    if enc not in allowed_encs:
        raise AlgorithmNotAllowed(_refusal(enc, CONTENT_CIPHERS, "content encryption"))
    encrypted_key, iv, ciphertext, tag = (
        b64decode(segment, what)
        for segment, what in zip(
            parts[1:], ("encrypted key", "iv", "ciphertext", "tag"), strict=True
        )
    )
    cipher = CONTENT_CIPHERS[enc]
    for candidate in _recipient_keys(key, header.get("kid"), alg, enc):
        try:
            cek = _key_management.unwrap(alg, enc, candidate, header, encrypted_key)
            plaintext = cipher.decrypt(cek, iv, ciphertext, tag, header_segment)
        except DecryptionFailed:
            continue
        return DecryptedJWE(header, plaintext)
    raise DecryptionFailed()


def _recipient_keys(key: JWK | JWKSet, kid: object, alg: str, enc: str) -> list[JWK]:
    keys = candidate_keys(key, kid, alg, _key_management.OPERATIONS[alg][1], private=True)
    if alg != "dir":
        return keys
    if isinstance(key, JWK) or kid is not None:
        for candidate in keys:
            _key_management.check_direct_key(candidate, enc)
        return keys
    usable = [candidate for candidate in keys if _fits_direct(candidate, enc)]
    if not usable:
        raise KeyNotFound(f"no key in the set can be used with dir and {enc}")
    return usable


def _fits_direct(key: JWK, enc: str) -> bool:
    try:
        _key_management.check_direct_key(key, enc)
    except InvalidKey:
        return False
    return True


def _validate_header(header: Mapping[str, Any]) -> tuple[str, str]:
    """Check the header members this library reads; return `(alg, enc)`."""
    alg, enc = header.get("alg"), header.get("enc")
    if not isinstance(alg, str):
        raise MalformedToken("header 'alg' must be a string")
    if not isinstance(enc, str):
        raise MalformedToken("header 'enc' must be a string")
    for name in ("kid", "typ", "cty"):
        if name in header and not isinstance(header[name], str):
            raise MalformedToken(f"header {name!r} must be a string")
    if "zip" in header:
        raise AlgorithmNotAllowed("compressed JWE content ('zip') is not supported")
    if "crit" in header:
        # RFC 7516 §4.1.13: unknown critical extensions must be rejected; none is understood.
        raise MalformedToken("critical header parameters ('crit') are not understood")
    return alg, enc


def _allow_list(
    values: Iterable[str], supported: Mapping[str, object], what: str
) -> frozenset[str]:
    if isinstance(values, str):
        raise AlgorithmNotAllowed(f"{what} must be a list of names, not a string")
    names = frozenset(values)
    if not names:
        raise AlgorithmNotAllowed(f"an explicit, non-empty {what} allow-list is required")
    for name in names:
        if name not in supported:
            raise AlgorithmNotAllowed(_unsupported(name))
    return names


def _refusal(name: str, supported: Mapping[str, object], what: str) -> str:
    if name in supported:
        return f"{what} {_shown(name)} is not allowed"
    return _unsupported(name)


def _unsupported(name: str) -> str:
    if name == "RSA1_5":
        return "RSA1_5 is not supported: its padding is a decryption oracle (use RSA-OAEP-256)"
    if name.startswith("PBES2-"):
        return f"{_shown(name)} is not supported: password-based key management is not offered"
    return f"unsupported JWE algorithm {_shown(name)}"


def _shown(name: str) -> str:
    # Names come from the token: quoted, escaped and bounded before they reach a message or a log.
    return repr(name[:40] + "..." if len(name) > 40 else name)
