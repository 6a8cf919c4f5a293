"""Reading our own tokens and writing token segments in tests, one way everywhere.

`claims_of` reads a JWT through `authgate.jose.jwt.peek`, the public strict reader of an
unverified JWT; `header_of` reads the protected header of a compact JWS or JWE with the public
strict decoders (`authgate.jose.encoding`). Neither verifies anything: tests use them to look at
tokens that another test step verifies, or that the test issued itself. `b64url` writes the
canonical unpadded base64url (RFC 7515 §2) that forged segments need.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from authgate.jose import jwt
from authgate.jose.encoding import b64url_decode, json_object


def b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def header_of(token: str) -> dict[str, Any]:
    """The protected header of a compact JWS or JWE, decoded strictly, NOT verified."""
    return json_object(b64url_decode(token.split(".", maxsplit=1)[0], "header"), "header")


def claims_of(token: str) -> dict[str, Any]:
    """The claims of a compact JWT, decoded strictly (`jwt.peek`), NOT verified."""
    return jwt.peek(token).claims


def b64url_bytes(data: bytes) -> bytes:
    """Unpadded base64url as bytes (for segments joined as bytes)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def compact_json(value: Any) -> bytes:
    """JSON as authgate writes headers and claims: compact UTF-8, no NaN."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
