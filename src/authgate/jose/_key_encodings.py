"""Recognizing an asymmetric key behind the bytes offered as an HMAC or AES secret.

The RS256-to-HS256 "key confusion" attack (RFC 8725 §2.1, CVE-2015-9235, CVE-2022-29217) needs a
verifier whose HMAC secret is the victim's public key, in whatever encoding the operator copied it:
a check of a few fixed prefixes is bypassed by a byte-order mark, a JSON array, an escaped member
name or a base64 layer. `encodes_asymmetric_key` decodes the candidate the ways public material is
stored, with `cryptography`'s loaders doing every key parsing, and fails closed when its bounded
budget runs out.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

__all__ = ["MAX_SECRET_BYTES", "encodes_asymmetric_key"]

# No HMAC or AES secret needs more; bigger candidates are refused unread, so inspection is bounded.
MAX_SECRET_BYTES = 8192
# The smallest key encoding is a 44-byte Ed25519/X25519 SubjectPublicKeyInfo: shorter candidates
# (for example every 32-byte HS256 secret) cannot hold one and are not decoded at all.
_MIN_KEY_BYTES = 40
_MIN_BASE64_CHARS = 4 * _MIN_KEY_BYTES // 3
_MAX_CANDIDATES = 64  # distinct byte strings decoded from one secret before failing closed

_TEXT_CODECS = ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
_STRIP = " \t\r\n\v\f\x00\ufeff"  # whitespace, NUL padding and byte-order marks
_WHITESPACE = b" \t\r\n\v\f"
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_PEM_ARMOUR = re.compile(r"-----BEGIN [^\r\n]{1,80}-----")
_TO_STANDARD = str.maketrans("-_", "+/")
_SSH_PRIVATE_MAGIC = b"openssh-key-v1\x00"
_SSH_KEY_TYPES = (b"ssh-", b"ecdsa-", b"sk-")
# JSON objects that are JWKs (RFC 7517 §4.1), or their key members without `kty`.
_JWK_MEMBERS = (frozenset({"kty"}), frozenset({"n", "e"}), frozenset({"crv", "x"}))

_Loader = Callable[[bytes], object]
_DER_LOADERS: tuple[_Loader, ...] = (
    serialization.load_der_public_key,  # SubjectPublicKeyInfo and PKCS#1 RSAPublicKey
    lambda data: serialization.load_der_private_key(data, password=None),
    x509.load_der_x509_certificate,
    x509.load_der_x509_csr,
    pkcs7.load_der_pkcs7_certificates,
    lambda data: pkcs12.load_key_and_certificates(data, password=None),
)
_PEM_LOADERS: tuple[_Loader, ...] = (
    serialization.load_pem_public_key,
    lambda data: serialization.load_pem_private_key(data, password=None),
    lambda data: serialization.load_ssh_private_key(data, password=None),
    x509.load_pem_x509_certificates,
    x509.load_pem_x509_csr,
    pkcs7.load_pem_pkcs7_certificates,
)


def encodes_asymmetric_key(data: bytes) -> bool:
    """True when `data` is, or may be, an asymmetric key (public or private) in some encoding.

    The candidate is decoded the ways an operator might have stored public material, and every
    result is decoded again (so base64 of a PEM, a JWK in a JSON string, hex of DER are found):

    - bytes: DER (SubjectPublicKeyInfo, PKCS#1, PKCS#8 also encrypted, X.509 certificate, CSR,
      PKCS#7, PKCS#12) as is, with surrounding whitespace, NUL padding or a UTF-8 BOM removed, or
      cut after its first DER element; the SSH wire format (an OpenSSH key line's base64 body);
      an OpenSSH private key body;
    - text, read as UTF-8, UTF-16 or UTF-32 (either byte order, with or without a BOM): any PEM
      block (loaded with `cryptography`; a PEM armour line of any label counts even when it does
      not load); the base64 (standard or URL-safe, padded or not, in lines or not) or hex of the
      whole text, of its base64-only lines (a PEM body whose armour is missing or damaged, an
      RFC 4716 SSH2 key) and of each word (an OpenSSH line with options and a comment); JSON with
      any escaping, searched for an object holding `kty`, `n` and `e`, or `crv` and `x` (a JWK, a
      JWK array, a JWK set, a JWK under another member), its strings decoded again.

    It fails closed: `data` longer than `MAX_SECRET_BYTES`, more than `_MAX_CANDIDATES` distinct
    decodings, or JSON nested deeper than the parser follows count as a key. A DER or SSH key
    cannot arise from random bytes by chance (a whole structure must parse and a point lie on its
    curve), so random secrets, passphrases and hex or base64 secrets are not refused. Raw key
    bytes (a bare RSA modulus, an EC point, an Ed25519 public key) look like random bytes and are
    not recognized.
    """
    if len(data) > MAX_SECRET_BYTES:
        return True
    seen: set[bytes] = set()
    pending = [data]
    while pending:
        blob = pending.pop()
        if len(blob) < _MIN_KEY_BYTES or blob in seen:
            continue
        if len(seen) == _MAX_CANDIDATES:
            return True
        seen.add(blob)
        if _binary_key(blob):
            return True
        texts = {text for codec in _TEXT_CODECS if (text := _decode(blob, codec))}
        for text in texts:
            if _text_key(text, pending):
                return True
    return False


def _decode(blob: bytes, codec: str) -> str:
    try:
        return blob.decode(codec).strip(_STRIP)
    except UnicodeDecodeError:
        return ""


def _binary_key(blob: bytes) -> bool:
    trimmed = blob.strip(_WHITESPACE).removeprefix(b"\xef\xbb\xbf").lstrip(_WHITESPACE)
    unpadded = trimmed.strip(b"\x00")  # not for the SSH forms, which start with zero bytes
    for der in {blob, trimmed, unpadded, _first_der_element(unpadded)}:
        if der[:1] == b"\x30" and _loads(_DER_LOADERS, der):  # 0x30: a DER SEQUENCE
            return True
    # Both as given and trimmed: a key's own last bytes may be whitespace (about 2 % of EC
    # points end in one), so trimming alone would cut them off and let the key through.
    for candidate in (blob, trimmed):
        if candidate.startswith(_SSH_PRIVATE_MAGIC):
            armoured = _armour("OPENSSH PRIVATE KEY", candidate)
            loader = (lambda d: serialization.load_ssh_private_key(d, password=None),)
            if _loads(loader, armoured):
                return True
        elif _ssh_wire_key(candidate):
            return True
    return False


def _first_der_element(der: bytes) -> bytes:
    """`der` cut after the element its first tag and length describe (X.690 §8.1.3)."""
    if len(der) < 2 or der[1] == 0x80:  # indefinite lengths are not DER
        return der
    if der[1] < 0x80:
        return der[: 2 + der[1]]
    size = der[1] & 0x7F
    if size > 4:
        return der
    return der[: 2 + size + int.from_bytes(der[2 : 2 + size], "big")]


def _ssh_wire_key(blob: bytes) -> bool:
    """The SSH wire form of a public key or certificate (RFC 4253 §6.6): a named type, then data."""
    size = int.from_bytes(blob[:4], "big")
    name = blob[4 : 4 + size]
    # Key type names (RFC 4250 §4.6, RFC 5656 §6, OpenSSH's sk- types); the wire form is too simple
    # to tell from other data without one.
    if not 7 <= size <= 64 or len(name) != size or not name.startswith(_SSH_KEY_TYPES):
        return False
    line = name + b" " + binascii.b2a_base64(blob, newline=False)
    return _loads((serialization.load_ssh_public_identity,), line)


def _armour(label: str, body: bytes) -> bytes:
    text = binascii.b2a_base64(body, newline=False)
    lines = b"\n".join(text[i : i + 64] for i in range(0, len(text), 64))
    return b"-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label.encode(), lines, label.encode())


def _loads(loaders: tuple[_Loader, ...], data: bytes) -> bool:
    for load in loaders:
        try:
            load(data)
        except ValueError:  # not this structure
            continue
        except (TypeError, UnsupportedAlgorithm):  # encrypted, or a key of a type not supported
            return True
        return True
    return False


def _text_key(text: str, pending: list[bytes]) -> bool:
    """Check one reading of a candidate; queue what it decodes to in `pending`."""
    # Any PEM block: loaded by `cryptography`, or (fail closed) armour whatever its label.
    if "-----" in text and (
        _loads(_PEM_LOADERS, text.encode("utf-8", "surrogatepass")) or _PEM_ARMOUR.search(text)
    ):
        return True
    words = text.split()
    if any((raw := _from_base64(word)) is not None and _binary_key(raw) for word in words):
        return True
    if text[:1] in ("{", "[", '"') and _json_key(text, pending):
        return True
    compact = "".join(words)
    # Only the lines that are base64: a PEM body without (or with damaged) armour, an RFC 4716 key.
    lines = "".join(line for line in map(str.strip, text.splitlines()) if _BASE64.fullmatch(line))
    decoded = (_from_base64(compact), _from_base64(lines), _from_hex(compact.replace(":", "")))
    pending.extend(raw for raw in decoded if raw is not None)
    return False


def _from_base64(text: str) -> bytes | None:
    if len(text) < _MIN_BASE64_CHARS or not _BASE64.fullmatch(text):
        return None
    body = text.rstrip("=").translate(_TO_STANDARD)
    if len(body) % 4 == 1:
        return None
    try:
        return binascii.a2b_base64(body + "=" * (-len(body) % 4))
    except binascii.Error:
        return None


def _from_hex(text: str) -> bytes | None:
    if len(text) < 2 * _MIN_KEY_BYTES or not _HEX.fullmatch(text):
        return None
    return bytes.fromhex(text)


def _json_key(text: str, pending: list[bytes]) -> bool:
    try:
        document = json.loads(text)
    except RecursionError:  # deeper than the parser follows: it could hide a JWK
        return True
    except ValueError:
        return False
    for value in _walk(document):
        if isinstance(value, dict):
            if any(members <= value.keys() for members in _JWK_MEMBERS):
                return True
        elif isinstance(value, str):
            pending.append(value.encode("utf-8", "surrogatepass"))
    return False


def _walk(document: Any) -> Iterator[Any]:
    """Every value inside a parsed JSON document (iteratively: its depth is not bounded here)."""
    stack = [document]
    while stack:
        value = stack.pop()
        yield value
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
