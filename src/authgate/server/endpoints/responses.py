"""JSON responses of the OAuth endpoints and the rendering of OAuth errors (RFC 6749 §5.1, §5.2).

Token, introspection and revocation answers carry `Cache-Control: no-store` (RFC 6749 §5.1, RFC
7662 §2.2 via RFC 9700). A 401 `invalid_client` carries a `WWW-Authenticate: Basic` challenge
(RFC 6749 §5.2; RFC 9110 §15.5.2 requires a challenge with every 401), and a 503
`temporarily_unavailable` a `Retry-After` (RFC 9110 §10.2.3), so clients back off and come back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

from starlette.responses import Response

from authgate.limits import Refusal
from authgate.oauth.errors import OAuthError, UseDPoPNonce

__all__ = [
    "NO_STORE",
    "RETRY_AFTER",
    "LimitRefused",
    "json_response",
    "limited_response",
    "oauth_error_response",
]

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# Seconds a client is asked to wait after a 503 (a stalled or unreachable database, no signing key):
# long enough not to pile retries onto a struggling database, short enough for a user waiting.
RETRY_AFTER = 5


# Built once (`json.dumps` with options builds an encoder per call); the same output.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
# `JSONEncoder.encode` builds its C encoder on every call: built once here, with the same options
# (without the circular-reference bookkeeping: these bodies are the server's own dicts).
_C_ENCODER = (
    None
    if c_make_encoder is None
    else c_make_encoder(
        None, _ENCODER.default, encode_basestring, None, ":", ",", False, False, True
    )
)
# The fields of the common answer (`NO_STORE` and JSON) as Starlette would encode them.
_NO_STORE_FIELDS = [
    (name.lower().encode("latin-1"), v.encode("latin-1")) for name, v in NO_STORE.items()
]
_JSON_TYPE = (b"content-type", b"application/json")


class _JsonResponse(Response):
    """A JSON body with its header fields already encoded (the token endpoint's answer skips
    Starlette's per-response header building)."""

    media_type = "application/json"

    def __init__(self, body: bytes, status: int, raw_headers: list[tuple[bytes, bytes]]) -> None:
        self.status_code = status
        self.background = None
        self.body = body
        self.raw_headers = raw_headers


def json_response(
    data: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """`data` as compact JSON with the given headers (`NO_STORE` when none are given)."""
    if _C_ENCODER is not None and type(data) is dict:
        body = "".join(_C_ENCODER(data, 0)).encode("utf-8")
    else:
        body = _ENCODER.encode(data).encode("utf-8")
    if headers is None:
        length = (b"content-length", str(len(body)).encode("latin-1"))
        return _JsonResponse(body, status, [*_NO_STORE_FIELDS, length, _JSON_TYPE])
    return Response(body, status_code=status, headers=dict(headers), media_type="application/json")


def limited_response(answer: Refusal) -> Response:
    """A request refused by a rate limit on an OAuth endpoint: 429 (or 503 when a fail-closed
    limit could not be checked) with the RFC 6749 §5.2 body, `Retry-After` and the RateLimit
    fields (`authgate.limits.refusal`)."""
    return json_response(
        answer.error.to_dict(), answer.status, {**NO_STORE, **dict(answer.headers)}
    )


class LimitRefused(OAuthError):
    """A request a rate limit or a lockout refused, raised where the answer cannot be returned
    (client authentication); rendered by `oauth_error_response` as `limited_response`."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.error.description, debug="rate limit")
        self.refusal = refusal
        self.error = refusal.error.error  # type: ignore[misc]
        self.status_code = refusal.status  # type: ignore[misc]


def oauth_error_response(error: OAuthError, realm: str) -> Response:
    """The RFC 6749 §5.2 error body with its status and headers."""
    if isinstance(error, LimitRefused):
        return limited_response(error.refusal)
    headers = dict(NO_STORE)
    if error.status_code == 401:
        headers["WWW-Authenticate"] = f'Basic realm="{realm}", charset="UTF-8"'
    if error.status_code == 405:
        headers["Allow"] = "POST"
    if error.status_code == 503:
        headers["Retry-After"] = str(RETRY_AFTER)
    if isinstance(error, UseDPoPNonce):  # RFC 9449 §8: the nonce to use
        headers["DPoP-Nonce"] = error.nonce
    return json_response(error.to_dict(), error.status_code, headers)
