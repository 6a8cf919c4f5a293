"""Strict base64url (RFC 7515 §2, RFC 4648 §5) and the JWK Base64urlUInt form (RFC 7518 §2).

Decoding accepts exactly the canonical, unpadded encoding: no `=`, no characters outside the
URL-safe alphabet (no whitespace, no `+` or `/`), no length of 1 mod 4, and zero unused bits in the
last character. Anything else raises `MalformedToken`, so that one value has exactly one encoding.
"""

from __future__ import annotations

import binascii

from authgate.jose.errors import MalformedToken

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
# '-' and '_' become the standard alphabet's '+' and '/'. '+', '/' and '=' are legal in standard
# base64 but foreign to base64url: they become '*', which the strict decoder refuses.
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/***")
# RFC 4648 §3.5: a final group of 2 (or 3) characters leaves 4 (or 2) unused low bits in its last
# character, and those bits must be zero; otherwise several strings decode to the same bytes.
_CANONICAL_LAST: tuple[frozenset[int], ...] = (
    frozenset(),
    frozenset(),
    frozenset(c for i, c in enumerate(_ALPHABET) if i & 0x0F == 0),
    frozenset(c for i, c in enumerate(_ALPHABET) if i & 0x03 == 0),
)
_PAD = (b"", b"", b"==", b"=")


def b64encode(data: bytes) -> bytes:
    """Encode without padding."""
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=")


def b64decode(data: bytes | str, what: str = "value") -> bytes:
    """Decode strictly; raise `MalformedToken` on anything but canonical unpadded base64url."""
    if type(data) is not bytes:
        data = _as_bytes(data, what)
    rem = len(data) & 3
    if rem:
        if rem == 1 or data[-1] not in _CANONICAL_LAST[rem]:
            raise MalformedToken(f"{what} is not base64url")
        data = data.translate(_TO_STANDARD) + _PAD[rem]
    else:
        data = data.translate(_TO_STANDARD)
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except binascii.Error:
        raise MalformedToken(f"{what} is not base64url") from None


def _as_bytes(data: object, what: str) -> bytes:
    if isinstance(data, str):
        try:
            return data.encode("ascii")
        except UnicodeEncodeError:
            raise MalformedToken(f"{what} is not base64url") from None
    if isinstance(data, bytes):
        return bytes(data)
    raise MalformedToken(f"{what} must be a base64url string")


def b64decode_uint(data: object, what: str, *, minimal: bool = False) -> int:
    """Decode a JWK Base64urlUInt (RFC 7518 §2): a non-empty big-endian unsigned integer.

    With `minimal`, a leading zero octet is refused: RFC 7518 §2 asks for the minimum number of
    octets (zero itself is one zero octet).
    """
    if not isinstance(data, str) or not data:
        raise MalformedToken(f"{what} must be a non-empty base64url string")
    raw = b64decode(data, what)
    if minimal and len(raw) > 1 and raw[0] == 0:
        raise MalformedToken(f"{what} has a leading zero octet (RFC 7518 §2: minimum octets)")
    return int.from_bytes(raw, "big")


def uint_b64encode(value: int, length: int | None = None) -> str:
    """Encode an unsigned integer in the minimal (or the given fixed) number of octets."""
    size = length if length is not None else max(1, (value.bit_length() + 7) // 8)
    return b64encode(value.to_bytes(size, "big")).decode("ascii")
