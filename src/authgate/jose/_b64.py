"""Strict base64url (RFC 7515 §2, RFC 4648 §5): no padding, no foreign characters, canonical bits."""

from __future__ import annotations

import base64
import binascii
import re

from authgate.jose.errors import MalformedToken

_ALPHABET = re.compile(rb"[A-Za-z0-9_-]*")
_CHAR_VALUE = {c: i for i, c in enumerate(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")}
_PAD = (b"", b"", b"==", b"=")


def b64encode(data: bytes) -> bytes:
    """Encode without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def b64decode(data: bytes | str, what: str = "value") -> bytes:
    """Decode strictly; raise `MalformedToken` on anything but canonical unpadded base64url."""
    if isinstance(data, str):
        try:
            data = data.encode("ascii")
        except UnicodeEncodeError:
            raise MalformedToken(f"{what} is not base64url") from None
    if _ALPHABET.fullmatch(data) is None:
        raise MalformedToken(f"{what} is not base64url")
    rem = len(data) % 4
    if rem:
        if rem == 1:
            raise MalformedToken(f"{what} is not base64url")
        # The unused low bits of the last character must be zero (RFC 4648 §3.5): otherwise
        # several encodings decode to one value and a token could be altered without detection.
        mask = 0x0F if rem == 2 else 0x03
        if _CHAR_VALUE[data[-1]] & mask:
            raise MalformedToken(f"{what} is not base64url")
    try:
        return base64.urlsafe_b64decode(data + _PAD[rem])
    except (binascii.Error, ValueError):  # pragma: no cover - excluded by the checks above
        raise MalformedToken(f"{what} is not base64url") from None


def b64decode_uint(data: object, what: str) -> int:
    """Decode a JWK Base64urlUInt (RFC 7518 §2): a non-empty big-endian unsigned integer."""
    if not isinstance(data, str) or not data:
        raise MalformedToken(f"{what} must be a non-empty base64url string")
    return int.from_bytes(b64decode(data, what), "big")


def uint_b64encode(value: int, length: int | None = None) -> str:
    """Encode an unsigned integer in the minimal (or the given fixed) number of octets."""
    size = length if length is not None else max(1, (value.bit_length() + 7) // 8)
    return b64encode(value.to_bytes(size, "big")).decode("ascii")
