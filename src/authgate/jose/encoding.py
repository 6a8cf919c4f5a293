"""The strict decoders `authgate.jose` reads tokens and keys with, public for callers that read
JOSE-related input themselves (a JWKS or metadata document over HTTP, a JSON argument, a segment).

- `b64url_decode`: canonical unpadded base64url only (RFC 7515 §2): no `=`, nothing outside the
  URL-safe alphabet, no length of 1 mod 4, zero unused bits; every value has exactly one encoding.
- `json_object`: a UTF-8 JSON object without duplicate member names, also escaped spellings and
  nested ones (RFC 7515 §5.2, RFC 8725 §3.10), without NaN/Infinity, lone surrogates or integers
  beyond Python's digit limit, with bounded nesting.

Both raise `MalformedToken` naming `what`, never echoing the input.
"""

from __future__ import annotations

from typing import Any

from authgate.jose._b64 import b64decode
from authgate.jose._json import loads_object

__all__ = ["b64url_decode", "json_object"]


def b64url_decode(data: str | bytes, what: str = "value") -> bytes:
    """Decode canonical unpadded base64url, or raise `MalformedToken`."""
    return b64decode(data, what)


def json_object(data: bytes, what: str = "value") -> dict[str, Any]:
    """Parse `data` as a strict UTF-8 JSON object, or raise `MalformedToken`."""
    return loads_object(data, what)
