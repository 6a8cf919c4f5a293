"""JSON responses of the OAuth endpoints and the rendering of OAuth errors (RFC 6749 §5.1, §5.2).

Token, introspection and revocation answers carry `Cache-Control: no-store` (RFC 6749 §5.1, RFC
7662 §2.2 via RFC 9700). A 401 `invalid_client` carries a `WWW-Authenticate: Basic` challenge
(RFC 6749 §5.2; RFC 9110 §15.5.2 requires a challenge with every 401), and a 503
`temporarily_unavailable` a `Retry-After` (RFC 9110 §10.2.3), so clients back off and come back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
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


def json_response(
    data: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """`data` as compact JSON with the given headers."""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(
        body, status_code=status, headers=dict(headers or NO_STORE), media_type="application/json"
    )


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
